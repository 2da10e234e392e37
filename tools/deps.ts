// The import graph of the tree, and the three rules its layout keeps:
//   1. no import cycles, type-only imports included;
//   2. no upward edges: a module imports only from its own layer or the ones below
//      (core → base → adapters → roles → the daemon → the command line), two roles
//      never import each other, and nothing of the product imports a tool;
//   3. daemon/core/ imports nothing outside itself but Node's pure built-ins and the
//      Avro codec library (no fs, no config, no zod).
// `npm run deps` prints the graph's cycles and offending edges and exits 1 when there
// are any; test/deps.test.ts runs the same check on every test run.
//
// Imports are read with TypeScript's own pre-processor (static, dynamic and type-only
// imports and re-exports alike), so what counts is what the compiler sees.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, posix, relative, sep } from 'node:path'
import ts from 'typescript'

/** The product's layers, lowest first; a module may import its own layer and below. */
export const LAYERS = ['core', 'base', 'adapters', 'roles', 'daemon', 'cli', 'tools'] as const
export type Layer = typeof LAYERS[number]

/** Node built-ins with no I/O: what daemon/core/ may import, besides itself. */
export const CORE_BUILTINS = new Set(['node:buffer', 'node:crypto', 'node:util', 'node:string_decoder'])
/** Libraries daemon/core/ may import: the Avro codec of the data contract, pure code. */
export const CORE_PACKAGES = new Set(['avsc'])

const SOURCE_DIRS = ['daemon', 'workers', 'tools', 'stack', 'bench']

/** The layer of a source file (a path relative to the root, with `/`), or null when outside the graph. */
export function layerOf (file: string): Layer | null {
  if (file.startsWith('tools/') || file.startsWith('stack/') || file.startsWith('bench/') ||
    file.startsWith('daemon/simulator/') || file === 'daemon/demo.ts') return 'tools'
  if (file.startsWith('daemon/core/')) return 'core'
  if (file.startsWith('workers/')) return 'adapters'
  if (!file.startsWith('daemon/')) return null
  const rest = file.slice('daemon/'.length)
  const top = rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : rest.replace(/\.ts$/, '')
  if (['config', 'metrics', 'errors', 'paths', 'log', 'wait', 'args', 'node-flags', 'status-line', 'readiness'].includes(top)) return 'base'
  if (['finnhub', 'kafka', 'cassandra', 'systemd'].includes(top)) return 'adapters'
  if (['ingest', 'process', 'overload', 'http', 'console', 'tail'].includes(top)) return 'roles'
  if (['daemon', 'signals'].includes(top)) return 'daemon'
  if (top === 'cli') return 'cli'
  return 'roles'
}

/**
 * Which unit of the roles layer a file belongs to: two different ones must not import
 * each other. The web console is part of the HTTP surface (http.ts serves it; the
 * console imports nothing of http.ts).
 */
function roleUnit (file: string): string {
  const rest = file.slice('daemon/'.length)
  const unit = rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : rest.replace(/\.ts$/, '')
  return unit === 'console' ? 'http' : unit
}

export interface Edge { from: string, to: string }

export interface Graph {
  files: string[]
  /** Edges between source files of the tree. */
  edges: Edge[]
  /** Imports of packages and built-ins, by importing file. */
  external: Map<string, string[]>
}

function listSources (root: string, dir: string, out: string[]): void {
  let names: string[]
  try { names = readdirSync(join(root, dir)) } catch { return }
  for (const name of names) {
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) listSources(root, path, out)
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path.split(sep).join('/'))
  }
}

/** Reads every .ts file under the source folders of `root` and resolves their relative imports. */
export function readGraph (root: string): Graph {
  const files: string[] = []
  for (const dir of SOURCE_DIRS) listSources(root, dir, files)
  files.sort()
  const known = new Set(files)
  const edges: Edge[] = []
  const external = new Map<string, string[]>()
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true)
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) {
        external.set(file, [...(external.get(file) ?? []), fileName])
        continue
      }
      const target = posix.normalize(posix.join(posix.dirname(file), fileName)).replace(/\.(m?js)$/, '.ts')
      if (known.has(target)) edges.push({ from: file, to: target })
    }
  }
  return { files, edges, external }
}

/** Every cycle's members (strongly connected components of more than one file, or a file importing itself). */
export function cycles (graph: Graph): string[][] {
  const next = new Map<string, string[]>()
  for (const { from, to } of graph.edges) next.set(from, [...(next.get(from) ?? []), to])
  // Tarjan's algorithm, iterative.
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const out: string[][] = []
  let counter = 0
  for (const start of graph.files) {
    if (index.has(start)) continue
    const work: Array<{ node: string, i: number }> = [{ node: start, i: 0 }]
    index.set(start, counter); low.set(start, counter); counter++
    stack.push(start); onStack.add(start)
    while (work.length > 0) {
      const top = work[work.length - 1] as { node: string, i: number }
      const succ = next.get(top.node) ?? []
      if (top.i < succ.length) {
        const w = succ[top.i++] as string
        if (!index.has(w)) {
          index.set(w, counter); low.set(w, counter); counter++
          stack.push(w); onStack.add(w)
          work.push({ node: w, i: 0 })
        } else if (onStack.has(w)) {
          low.set(top.node, Math.min(low.get(top.node) as number, index.get(w) as number))
        }
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(top.node) as number))
      if (low.get(top.node) === index.get(top.node)) {
        const members: string[] = []
        let w: string
        do {
          w = stack.pop() as string
          onStack.delete(w)
          members.push(w)
        } while (w !== top.node)
        if (members.length > 1 || succ.includes(top.node)) out.push(members.sort())
      }
    }
  }
  return out
}

export interface Violation { from: string, to: string, why: string }

/** The edges that break rule 2 or 3. */
export function violations (graph: Graph): Violation[] {
  const out: Violation[] = []
  for (const { from, to } of graph.edges) {
    const a = layerOf(from)
    const b = layerOf(to)
    if (a === null || b === null) continue
    if (a === 'core' && b !== 'core') out.push({ from, to, why: 'daemon/core/ imports outside itself' })
    else if (LAYERS.indexOf(b) > LAYERS.indexOf(a)) out.push({ from, to, why: `upward: ${a} → ${b}` })
    else if (a === 'roles' && b === 'roles' && roleUnit(from) !== roleUnit(to)) out.push({ from, to, why: `a role imports another: ${roleUnit(from)} → ${roleUnit(to)}` })
  }
  for (const [file, specs] of graph.external) {
    if (layerOf(file) !== 'core') continue
    for (const spec of specs) {
      if (!CORE_BUILTINS.has(spec) && !CORE_PACKAGES.has(spec)) out.push({ from: file, to: spec, why: 'daemon/core/ imports a module with I/O or a package' })
    }
  }
  return out
}

export function report (root: string): { text: string, ok: boolean, cycles: number, violations: number } {
  const graph = readGraph(root)
  const found = cycles(graph)
  const bad = violations(graph)
  const lines = [`${graph.files.length} files, ${graph.edges.length} imports between them: ${found.length} cycles, ${bad.length} upward or forbidden edges`]
  for (const c of found) lines.push(`cycle: ${c.join(' ⇄ ')}`)
  for (const v of bad) lines.push(`${v.why}: ${v.from} → ${v.to}`)
  return { text: lines.join('\n'), ok: found.length === 0 && bad.length === 0, cycles: found.length, violations: bad.length }
}

/* c8 ignore start */
if (process.argv[1] !== undefined && relative(process.argv[1], new URL(import.meta.url).pathname) === '') {
  const root = process.argv[2] ?? process.cwd()
  const r = report(root)
  console.log(r.text)
  process.exitCode = r.ok ? 0 : 1
}
/* c8 ignore stop */
