// The layout's rules (tools/deps.ts) hold on the tree as it is: no import cycles, no
// upward edges, a pure daemon/core/; and the rules themselves catch what they should.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { cycles, layerOf, readGraph, report, violations } from '../tools/deps.js'
import { PROJECT_ROOT } from '../daemon/paths.js'

t.test('the tree has no cycles, no upward edges, and a pure core', async t => {
  const r = report(PROJECT_ROOT)
  t.ok(r.ok, r.text)
  t.equal(r.cycles, 0)
  t.equal(r.violations, 0)
})

t.test('layers', async t => {
  t.equal(layerOf('daemon/core/frame.ts'), 'core')
  t.equal(layerOf('daemon/config/load.ts'), 'base')
  t.equal(layerOf('daemon/kafka/consumer.ts'), 'adapters')
  t.equal(layerOf('workers/decode-batch.ts'), 'adapters')
  t.equal(layerOf('daemon/process.ts'), 'roles')
  t.equal(layerOf('daemon/daemon.ts'), 'daemon')
  t.equal(layerOf('daemon/cli.ts'), 'cli')
  t.equal(layerOf('tools/bench/run.ts'), 'tools')
  t.equal(layerOf('test/deps.test.ts'), null)
})

t.test('a planted cycle, an upward edge, a role importing a role and an impure core are all found', async t => {
  const root = t.testdir({})
  const put = (file: string, text: string): void => {
    mkdirSync(join(root, file, '..'), { recursive: true })
    writeFileSync(join(root, file), text)
  }
  put('daemon/core/a.ts', "import { b } from './b.js'\nimport { readFileSync } from 'node:fs'\nexport const a = 1\n")
  put('daemon/core/b.ts', "import type { a } from './a.js'\nimport { x } from '../config/x.js'\nexport const b = 2\n")
  put('daemon/config/x.ts', "export const x = await import('../kafka/k.js')\n")
  put('daemon/kafka/k.ts', "export { p } from '../process.js'\n")
  put('daemon/process.ts', "import { i } from './ingest.js'\nexport const p = 1\n")
  put('daemon/ingest.ts', "import { run } from '../tools/bench/run.js'\nexport const i = 1\n")
  put('tools/bench/run.ts', 'export const run = 1\n')
  const graph = readGraph(root)
  t.same(cycles(graph), [['daemon/core/a.ts', 'daemon/core/b.ts']], 'type-only imports count')
  const found = violations(graph).map(v => `${v.from} → ${v.to}`).sort()
  t.same(found, [
    'daemon/config/x.ts → daemon/kafka/k.ts',
    'daemon/core/a.ts → node:fs',
    'daemon/core/b.ts → daemon/config/x.ts',
    'daemon/ingest.ts → tools/bench/run.ts',
    'daemon/kafka/k.ts → daemon/process.ts',
    'daemon/process.ts → daemon/ingest.ts'
  ])
})

t.test('the product build compiles none of the tools', async t => {
  // What an installed daemon (npm run build, then npm prune --omit=dev) holds.
  const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const files = execFileSync(process.execPath, [tsc, '-p', join(PROJECT_ROOT, 'tsconfig.json'), '--listFilesOnly'], { encoding: 'utf8' })
    .split('\n').filter(f => f.startsWith(PROJECT_ROOT) && !f.includes('/node_modules/')).map(f => f.slice(PROJECT_ROOT.length + 1))
  t.ok(files.includes('daemon/cli.ts'))
  t.ok(files.includes('workers/decode-batch.ts'))
  t.same(files.filter(f => !f.startsWith('daemon/') && !f.startsWith('workers/')), [], 'only daemon/ and workers/')
})
