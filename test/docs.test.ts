// The documentation stays complete and true to the code: docs/configuration.md's
// example holds every setting at its default and names every environment variable the
// daemon reads (and the configuration's error code); docs/metrics.md lists exactly the
// metrics of our own, and no page names a metric the daemon lacks; every relative link and
// anchor in README.md and docs/ resolves; and no tracked text file (this one included)
// names a document that is not in the repository. Each check is also run once against a
// planted mistake.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ENV_OVERRIDE_NAMES, loadConfig, validateConfig } from '../daemon/config/load.js'
import { PROJECT_ROOT } from '../daemon/paths.js'
import { allMetrics } from './fixtures/all-metrics.js'

const read = (file: string): string => readFileSync(join(PROJECT_ROOT, file), 'utf8')
const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).split('\n').filter(f => f !== '')
const pages = tracked.filter(f => f === 'README.md' || (f.startsWith('docs/') && f.endsWith('.md')))

/** Dotted paths of an object's leaves (arrays and null are leaves). */
export function leafPaths (value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix]
  const entries = Object.entries(value)
  if (entries.length === 0) return [prefix]
  return entries.flatMap(([k, v]) => leafPaths(v, prefix === '' ? k : `${prefix}.${k}`))
}

/** The YAML example of docs/configuration.md. */
function exampleOf (page: string): unknown {
  return parseYaml(/```yaml\n([\s\S]*?)```/.exec(page)?.[1] ?? '')
}

/** Settings of the defaults the example lacks. */
function missingSettings (example: unknown): string[] {
  const shown = new Set(leafPaths(example))
  return leafPaths(validateConfig({})).filter(p => !shown.has(p))
}

const finnhubdNames = (files: readonly string[]): string[] => [...files.map(read).join('\n').matchAll(/\bFINNHUBD_[A-Z0-9_]+\b/g)].map(m => m[0])

/**
 * The names docs/configuration.md must hold: the environment overrides, every FINNHUBD_*
 * the daemon's sources name (error codes aside, but for those of daemon/config/: the
 * configuration's own error).
 */
function envNames (): string[] {
  const sources = tracked.filter(f => f.startsWith('daemon/') && f.endsWith('.ts'))
  const named = finnhubdNames(sources).filter(n => !n.startsWith('FINNHUBD_ERR_'))
  const ofConfig = finnhubdNames(sources.filter(f => f.startsWith('daemon/config/')))
  return [...new Set([...ENV_OVERRIDE_NAMES, ...named, ...ofConfig])].sort()
}

/** GitHub's anchor of a heading. */
export function slugOf (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-')
}

/** The anchors of a page's headings; a repeated heading gets GitHub's -1, -2, … */
export function anchorsOf (markdown: string): Set<string> {
  const out = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const m = /^#{1,6} (.*)$/.exec(line)
    if (fenced || m === null) continue
    const slug = slugOf(m[1] as string)
    let anchor = slug
    for (let n = 1; out.has(anchor); n++) anchor = `${slug}-${n}`
    out.add(anchor)
  }
  return out
}

/** Relative links of a page that do not resolve: a missing file, or an anchor no heading has. */
export function brokenLinks (file: string, markdown: string, exists: (path: string) => boolean, anchors: (path: string) => Set<string>): string[] {
  const out: string[] = []
  const prose = markdown.replace(/```[\s\S]*?```/g, '')
  for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1] as string
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
    const [path, anchor] = target.split('#') as [string, string | undefined]
    const resolved = path === '' ? file : join(dirname(file), path)
    if (!exists(resolved)) { out.push(`${file}: ${target} (no such file)`); continue }
    if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) out.push(`${file}: ${target} (no such heading)`)
  }
  return out
}

const onDisk = (path: string): boolean => existsSync(join(PROJECT_ROOT, path))
const anchorsOnDisk = (path: string): Set<string> => anchorsOf(read(path))

/** Names of markdown documents a text mentions that the repository does not hold. */
export function absentDocuments (file: string, text: string, present: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/(?<![\w./${}-])((?:[\w.-]+\/)*\w[\w.-]*\.md)\b/g)) {
    const name = m[1] as string
    const base = name.split('/').pop() as string
    const here = relative(PROJECT_ROOT, join(PROJECT_ROOT, dirname(file), name))
    if (present.has(name) || present.has(here) || [...present].some(p => p.endsWith(`/${name}`) || p === base || p.endsWith(`/${base}`))) continue
    out.push(`${file}: ${name}`)
  }
  return out
}

t.test('docs/configuration.md: its example holds every setting at its default', async t => {
  const example = exampleOf(read('docs/configuration.md'))
  t.same(validateConfig(example), loadConfig().config, 'every value in the example is the default')
  t.same(missingSettings(example), [], 'every setting is in the example')
  t.ok(leafPaths(validateConfig({})).length > 80, 'and there are many')
  const { kafka, ...withoutKafka } = example as { kafka: Record<string, unknown> }
  t.ok(missingSettings(withoutKafka).includes('kafka.topic'), 'a setting left out is found')
  const { lingerMs: _, ...kafkaWithoutLinger } = kafka
  t.same(missingSettings({ ...withoutKafka, kafka: kafkaWithoutLinger }), ['kafka.lingerMs'])
})

t.test('docs/configuration.md names every environment variable the daemon reads', async t => {
  const page = read('docs/configuration.md')
  const names = envNames()
  t.ok(names.includes('KAFKA_BOOTSTRAP_SERVERS') && names.includes('FINNHUBD_CONFIG') && names.includes('FINNHUBD_DEBUG') && names.includes('FINNHUBD_ERR_CONFIG'), names.join(', '))
  for (const name of names) t.match(page, new RegExp(`\\b${name}\\b`), `${name} is documented`)
  t.notMatch(page, /\bFINNHUBD_NOT_A_VARIABLE\b/, 'the check can fail')
})

/** Metric names a page mentions that are not known: neither registered nor prom-client's (a histogram's series allowed). */
export function unknownMetrics (page: string, known: ReadonlySet<string>): string[] {
  const named = [...page.matchAll(/\bfinnhubd_[a-z0-9_]*[a-z0-9]\b/g)].map(m => m[0])
  return [...new Set(named.filter(n => !known.has(n) && !known.has(n.replace(/_(bucket|sum|count)$/, ''))))].sort()
}

t.test('docs/metrics.md lists exactly the metrics of our own', async t => {
  const { own, standard, http } = await allMetrics()
  const documented = (page: string): string[] => [...new Set([...page.matchAll(/^\| `(finnhubd_[a-z0-9_]+)` \|/gm)].map(m => m[1] as string))].sort()
  const page = read('docs/metrics.md')
  t.ok(own.length >= 25)
  t.same(documented(page), [...own].sort(), 'docs/metrics.md\'s table documents every metric of our own, and no other')
  const planted = page.replace(/^\| `finnhubd_[a-z0-9_]+` \|.*\n/m, '') + '| `finnhubd_made_up_total` | counter | nothing |\n'
  t.not(documented(planted).join(), [...own].sort().join(), 'a missing or a made-up metric is found')

  t.ok(http.includes('finnhubd_http_errors_total') && http.includes('finnhubd_console_topic_reads_total'), 'the HTTP server\'s metrics')
  t.same(documented(read('docs/operations.md')), [...http].sort(), 'docs/operations.md\'s table documents the HTTP server\'s metrics, and no other')
  const registered = [...new Set([...own, ...http])].sort()
  for (const name of registered) t.match(page, new RegExp(`\\b${name}\\b`), `docs/metrics.md names ${name}`)
  const known = new Set([...registered, ...standard])
  for (const file of pages) t.same(unknownMetrics(read(file), known), [], `${file} names no metric the daemon lacks`)
  t.same(unknownMetrics('see `finnhubd_` and finnhubd_trades_received_total, finnhubd_stage_latency_seconds_bucket, finnhubd_tardes_received_total', known),
    ['finnhubd_tardes_received_total'], 'a misspelt metric is found')
})

// The planted pages' names are built, not written out: this file is itself one the last check reads.
const PLANTED_PAGE = 'docs/x' + '.md'
const MISSING_PAGE = 'missing-page' + '.md'

t.test('every relative link and anchor of README.md and docs/ resolves', async t => {
  t.ok(pages.length >= 10, `${pages.length} pages`)
  for (const page of pages) t.same(brokenLinks(page, read(page), onDisk, anchorsOnDisk), [], page)
  const x = PLANTED_PAGE
  t.same(brokenLinks(x, '[a](../README.md#layout) [b](metrics.md#metrics) [c](#here)\n## Here\n', p => p === x || onDisk(p), p => p === x ? new Set(['here']) : anchorsOnDisk(p)), [])
  t.same(brokenLinks(x, '[a](README.md) [b](metrics.md#no-such) [c](https://x.test/y.md) [d](../systemd/none.service)', onDisk, anchorsOnDisk),
    [`${x}: README.md (no such file)`, `${x}: metrics.md#no-such (no such heading)`, `${x}: ../systemd/none.service (no such file)`], 'a missing file or heading is found')
  t.same(slugOf('Faults: `npm run chaos`'), 'faults-npm-run-chaos')
  t.same(slugOf('The web console and `finnhubd tail`'), 'the-web-console-and-finnhubd-tail')
  t.same([...anchorsOf('# A\n## Run it\n```sh\n# not a heading\n```\n## Run it\n')], ['a', 'run-it', 'run-it-1'], 'a repeated heading gets -1; a fenced comment is no heading')
})

/** A file's text, or null when it is binary (a NUL among its first bytes). */
function textOf (file: string): string | null {
  const bytes = readFileSync(join(PROJECT_ROOT, file))
  return bytes.subarray(0, 8000).includes(0) ? null : bytes.toString('utf8')
}

t.test('no tracked file names a document that is not in the repository', async t => {
  const present = new Set(tracked)
  // Every text file but the lock file (whose package metadata names the packages' own documents).
  const texts = tracked.filter(f => f !== 'package-lock.json' && onDisk(f))
    .flatMap(f => { const text = textOf(f); return text === null ? [] : [{ f, text }] })
  t.ok(texts.length > 150, `${texts.length} text files`)
  t.ok(texts.some(x => x.f === 'test/docs.test.ts') && texts.some(x => x.f === '.gitignore'), 'this file and files of any extension are read')
  t.same(texts.flatMap(({ f, text }) => absentDocuments(f, text, present)), [])
  t.same(absentDocuments('daemon/x.ts', `// the protocol: see ${MISSING_PAGE} and docs/metrics.md`, present), [`daemon/x.ts: ${MISSING_PAGE}`], 'the check can fail')
})
