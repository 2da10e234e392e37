// Property-based tests of configuration loading on hostile files (issue 16): arbitrary
// text, bytes and JSON values written to a config file and loaded the way the CLI
// loads them, structure-aware mutations of a valid config (unknown keys at every
// depth, __proto__ and constructor keys, wrong types, out-of-range numbers, huge
// arrays, nesting 100,000 deep), YAML alias bombs, BOMs, invalid UTF-8, duplicate keys
// and empty files; and arbitrary env-file lines. Either a valid, frozen config or a
// FinnhubdError FINNHUBD_ERR_CONFIG that names the file (and the key path or line
// where there is one): never another exception, a stack overflow or a hang. Fixed
// seeds, bounded runs (FINNHUBD_FUZZ_RUNS multiplies them).
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ENV_OVERRIDE_NAMES, loadConfig } from '../../daemon/config/load.js'
import { readEnvFile } from '../../daemon/config/env-file.js'
import { configSchema } from '../../daemon/config/schema.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { holds, runs } from '../fixtures/fuzz.js'

const SEED = 160603

const dir = mkdtempSync(join(tmpdir(), 'finnhubd-config-property-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
let fileCounter = 0

/** Writes the content to a fresh file and loads it as the CLI does (no environment). */
function load (content: string | Buffer, ext: string): { file: string, result: { ok: true } | { ok: false, err: FinnhubdError } } {
  const file = join(dir, `c${fileCounter++}${ext}`)
  writeFileSync(file, content)
  const started = Date.now()
  const timed = <T>(value: T): T => {
    const ms = Date.now() - started
    if (ms > 3_000) throw new Error(`loading took ${ms} ms`)
    return value
  }
  try {
    const { config } = loadConfig({ file, env: {} })
    if (!Object.isFrozen(config) || !Object.isFrozen(config.kafka) || !Object.isFrozen(config.finnhub.symbols) || !Object.isFrozen(config.http.console)) {
      throw new Error('the config is not deeply frozen')
    }
    return timed({ file, result: { ok: true } })
  } catch (err) {
    if (!(err instanceof FinnhubdError) || err.code !== 'FINNHUBD_ERR_CONFIG') {
      throw new Error(`loading threw ${err instanceof Error ? `${err.constructor.name}: ${err.message.slice(0, 300)}` : String(err)}`)
    }
    if (!err.message.includes(file)) throw new Error(`the error does not name the file: ${err.message.slice(0, 300)}`)
    return timed({ file, result: { ok: false, err } })
  }
}

// ---- arbitrary files ---------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map(c => String.fromCharCode(c))
const yamlSnippet = fc.constantFrom(
  '', '\n', '# only a comment\n', '~', 'null', '[]', '{}', '- a\n- b\n', '42', '"text"', 'kafka:', 'kafka: ~', 'kafka: []', 'kafka: 5',
  'kafka:\n  topic: a\n  topic: b\n', 'a: &x 1\nb: *x\n', 'b: *undefined\n', 'kafka: &k {topic: t}\ncassandra: *k\n',
  '%YAML 1.1\n---\nkafka: !!binary aGVsbG8=\n', '%YAML 1.1\n---\nroles: !!set {ingest: null}\n', 'x: !!js/function "() => 1"\n',
  'roles: !custom [ingest]\n', '<<: {kafka: {topic: t}}\n', '%YAML 1.1\n---\nbase: &b {topic: t}\nkafka:\n  <<: *b\n',
  '---\nkafka: {}\n---\ncassandra: {}\n', 'kafka: {topic: "\\ud800"}\n', '"\\u0000": 1\n', 'kafka:\n\ttopic: t\n', '? [a, b]\n: c\n',
  '__proto__: {polluted: true}\n', 'constructor: {prototype: {x: 1}}\n', 'kafka:\n  __proto__: {topic: t}\n', 'finnhub:\n  constructor: 1\n',
  'cassandra: {port: .nan}\n', 'cassandra: {port: .inf}\n', 'cassandra: {port: 0x4a52}\n', 'cassandra: {port: 9042.0}\n', 'cassandra: {port: "9042"}\n',
  'kafka: {lingerMs: 1e400}\n', 'kafka: {lingerMs: -0}\n', 'workers: {poolSize: 99999999999999999999}\n', 'logLevel: [info]\n', 'roles: ingest\n'
)
const yamlText = fc.oneof(
  yamlSnippet,
  fc.array(yamlSnippet, { maxLength: 4 }).map(parts => parts.join('\n')),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.tuple(fc.string({ maxLength: 20 }), loneSurrogate).map(([s, l]) => `kafka:\n  topic: ${s}${l}\n`),
  fc.jsonValue({ maxDepth: 4 }).map(v => JSON.stringify(v)),
  fc.jsonValue({ maxDepth: 4 }).map(v => JSON.stringify({ kafka: v, cassandra: { port: v } }))
)
/** Nesting thousands of levels deep, as text, in both syntaxes, at the top and under a known key. */
const deepText = fc.tuple(fc.integer({ min: 100, max: 100_000 }), fc.constantFrom('[', '{"a":', '- '), fc.constantFrom('', 'kafka: ', '{"kafka":', 'finnhub:\n  symbols: ')).map(([n, open, prefix]) => {
  if (open === '- ') return prefix + Array.from({ length: Math.min(n, 3_000) }, (_, i) => `${' '.repeat(2 * i)}- `).join('\n') + 'x\n'
  const close = open === '[' ? ']' : '}'
  return prefix + open.repeat(n) + '1' + close.repeat(n) + (prefix.startsWith('{') ? '}' : '')
})

const fileContent: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 6, arbitrary: yamlText },
  { weight: 1, arbitrary: deepText },
  { weight: 1, arbitrary: yamlText.map(s => `\ufeff${s}`) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map(b => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.tuple(yamlText, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([s, b]) => Buffer.concat([Buffer.from(s), Buffer.from([0xff, 0xfe, ...b])])) }
)
const extension = fc.constantFrom('.yaml', '.yml', '.json', '.JSON', '', '.conf')

t.test(`arbitrary config file text and bytes: a frozen config or FINNHUBD_ERR_CONFIG naming the file (${runs(700)} files)`, async t => {
  holds(t, fc.property(fileContent, extension, (content, ext) => { load(content, ext) }), { seed: SEED, numRuns: runs(700) })
})

t.test(`nesting up to 100,000 deep, top level or under a known key: an error, no stack overflow (${runs(40)} files)`, async t => {
  holds(t, fc.property(deepText, fc.constantFrom('.yaml', '.json'), (content, ext) => { load(content, ext) }), { seed: SEED + 1, numRuns: runs(40) })
})

// ---- structure-aware mutations of a valid config -----------------------------

const VALID = {
  roles: ['ingest', 'process'],
  logLevel: 'debug',
  finnhub: { token: 'tok', symbols: ['AAPL', 'BINANCE:BTCUSDT'], rest: { requestsPerWindow: 10 }, discovery: { enabled: false, exchanges: [{ market: 'crypto', exchange: 'BINANCE' }] } },
  kafka: { bootstrapServers: ['127.0.0.1:19092'], topic: 'finnhub.trades', lingerMs: 5, compression: 'lz4', groupInstanceId: null },
  cassandra: { contactPoints: ['127.0.0.1'], port: 19042, username: null, password: null },
  workers: { poolSize: 2, batchSize: 100 },
  candles: { flushIntervalMs: 100 },
  shutdown: { drainTimeoutMs: 1000 },
  http: { enabled: true, port: 0, console: { enabled: true, token: null } }
}
type Node = Record<string, unknown>

/** Every object in the valid config, by key path ([] is the top level). */
function sections (value: unknown, path: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return []
  const out: string[][] = Array.isArray(value) ? [] : [path]
  for (const [k, v] of Object.entries(value)) out.push(...sections(v, [...path, k]))
  return out
}
/** Every scalar leaf in the valid config, by key path. */
function leaves (value: unknown, path: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return [path]
  return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]))
}
const SECTIONS = sections(VALID)
const LEAVES = leaves(VALID).filter(p => p.length > 0)
const at = (root: unknown, path: readonly string[]): unknown => path.reduce<unknown>((node, k) => (node as Node)[k], root)

t.test('the valid config is valid (the base the mutations start from)', async t => {
  t.ok(configSchema.safeParse(VALID).success)
  t.ok(load(JSON.stringify(VALID), '.json').result.ok)
})

const junkValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, -0, 1.5, 1e21, 1e308, 65536, 2 ** 53, -(2 ** 31), '', 'NaN', 'Infinity', '-0', '1e3', ' 5', '0x10', '٣', [], {}, [null], [[]], { a: 1 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.integer({ min: 100, max: 5_000 }).map(n => Array.from({ length: n }, (_, i) => `S${i}`)),
  fc.jsonValue({ maxDepth: 3 })
)
const knownKeys = new Set(leaves(configSchema.parse({})).flatMap(p => p).concat(SECTIONS.flat()))
const unknownKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'lingrMs', 'Topic', 'kafka.topic', '', ' ', '0', '\u0000', '\ud800', 'ключ'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 })
).filter(k => !knownKeys.has(k))

type ConfigMutation = { kind: 'unknown', section: string[], key: string, value: unknown } | { kind: 'wrong', leaf: string[], value: unknown }
const configMutation: fc.Arbitrary<ConfigMutation> = fc.oneof(
  fc.tuple(fc.constantFrom(...SECTIONS), unknownKey, junkValue).map(([section, key, value]) => ({ kind: 'unknown' as const, section, key, value })),
  fc.tuple(fc.constantFrom(...LEAVES), junkValue).map(([leaf, value]) => ({ kind: 'wrong' as const, leaf, value }))
)

function applyMutation (m: ConfigMutation): Node {
  const copy = structuredClone(VALID) as unknown as Node
  const path = m.kind === 'unknown' ? m.section : m.leaf.slice(0, -1)
  const key = m.kind === 'unknown' ? m.key : m.leaf[m.leaf.length - 1] as string
  // defineProperty: an own "__proto__" key, as JSON.parse and the YAML parser make it, not a prototype change.
  Object.defineProperty(at(copy, path), key, { value: m.value, enumerable: true, writable: true, configurable: true })
  return copy
}

t.test(`mutations of a valid config: unknown keys at every depth name their key path; wrong types name the leaf (${runs(600)} files)`, async t => {
  holds(t, fc.property(configMutation, fc.constantFrom('.json', '.yaml'), (m, ext) => {
    const { result } = load(JSON.stringify(applyMutation(m)), ext)
    if (m.kind === 'unknown') {
      const keyPath = [...m.section, m.key].join('.')
      if (result.ok) throw new Error(`unknown key ${JSON.stringify(keyPath)} was accepted`)
      if (!result.err.message.includes(`"${keyPath}"`)) throw new Error(`the error does not name "${keyPath}": ${result.err.message.slice(0, 400)}`)
      return
    }
    const original = at(VALID, m.leaf)
    const wrongType = m.value !== null && (typeof m.value !== typeof original || Array.isArray(m.value)) && !(original === null && typeof m.value === 'string')
    if (wrongType) {
      if (result.ok) throw new Error(`${m.leaf.join('.')} = ${JSON.stringify(m.value)?.slice(0, 60)} was accepted`)
      if (!result.err.message.includes(`${m.leaf.join('.')}`)) throw new Error(`the error does not name ${m.leaf.join('.')}: ${result.err.message.slice(0, 400)}`)
    }
  }), { seed: SEED + 2, numRuns: runs(600) })
})

// ---- YAML alias bombs --------------------------------------------------------

t.test('a "billion laughs" alias bomb is refused fast by the YAML parser\'s alias limit', async t => {
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i)
    levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${prev}`).join(',')}]`)
  }
  for (const bomb of [levels.join('\n') + '\n', `kafka:\n  topic: t\nbomb:\n${levels.map(l => `  ${l}`).join('\n')}\n`]) {
    const started = Date.now()
    const { result, file } = load(bomb, '.yaml')
    t.notOk(result.ok, 'refused')
    if (!result.ok) t.match(result.err.message, new RegExp(`config file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid YAML: .*alias`))
    t.ok(Date.now() - started < 1000, `in ${Date.now() - started} ms`)
  }
  // A few aliases, as an operator might use them, still work.
  t.ok(load('base: &b "127.0.0.1"\n', '.yaml').result.ok === false, 'an unknown top-level key is still an error, alias or not')
  const ok = load('kafka:\n  bootstrapServers: &servers ["127.0.0.1:19092"]\n  topic: &t finnhub.trades\n  deadLetterTopic: dlq\n', '.yaml')
  t.ok(ok.result.ok, 'anchors and aliases within the limit are fine')
})

// ---- env files ---------------------------------------------------------------

const envName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ENV_OVERRIDE_NAMES, 'FINNHUBD_CONFIG', 'CASSANDRA_RACK', 'GRAFANA_ADMIN_USER', 'FINNHUBD_STACK_DIR') },
  { weight: 2, arbitrary: fc.constantFrom('FINNHUB_TOKNE', 'SPARK_MASTER', 'A(B', '[x', '*', '+', '\\', 'A.B', '$HOME', 'Ä', 'a b', '(?<x>', ')', '{2}', 'X'.repeat(5_000)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 12 }).filter(s => !/[=\n\r#]/.test(s)) }
)
const envValue = fc.oneof(fc.constantFrom('', 'x', '"quoted"', "'single'", '"multi\nline"', '`back`', '"unterminated', 'a#b', ' # c', '$' + '{HOME}'), fc.string({ unit: 'binary', maxLength: 20 }).map(s => s.replace(/[\r\n]/g, '')))
const envLine = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('', 'export ', '  ', 'export  ', '\t'), envName, fc.constantFrom('=', ' = ', '= '), envValue).map(([pre, name, eq, value]) => `${pre}${name}${eq}${value}`) },
  { weight: 1, arbitrary: fc.constantFrom('', '# comment', '   ', '=nothing', 'NOEQUALS', '\ufeffFINNHUB_TOKEN=x') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }
)
const envText = fc.tuple(fc.array(envLine, { maxLength: 12 }), fc.constantFrom('\n', '\r\n')).map(([lines, eol]) => lines.join(eol) + eol)

t.test(`arbitrary env-file lines: a set of string values, or FINNHUBD_ERR_CONFIG naming the file and each bad name's line (${runs(800)} files)`, async t => {
  holds(t, fc.property(envText, text => {
    const file = join(dir, `e${fileCounter++}.env`)
    writeFileSync(file, text)
    const started = Date.now()
    try {
      const { values } = readEnvFile(file, ENV_OVERRIDE_NAMES)
      for (const [k, v] of Object.entries(values)) if (typeof v !== 'string') throw new Error(`${k} is not a string`)
    } catch (err) {
      if (!(err instanceof FinnhubdError) || err.code !== 'FINNHUBD_ERR_CONFIG') throw new Error(`readEnvFile threw ${String(err).slice(0, 300)}`)
      const lines = text.split(/\r\n|\n|\r/)
      for (const line of err.message.split('\n').filter(l => l.includes('unknown variable'))) {
        const m = /^\s*(.*):(\d+): unknown variable /.exec(line)
        if (m === null || m[1] !== file) throw new Error(`does not name the file and a line: ${line.slice(0, 200)}`)
        const n = Number(m[2])
        if (!(n >= 1 && n <= lines.length && (lines[n - 1] as string).includes('='))) throw new Error(`line ${n} is not an assignment: ${line.slice(0, 200)}`)
      }
    }
    if (Date.now() - started > 2_000) throw new Error(`took ${Date.now() - started} ms`)
  }), { seed: SEED + 3, numRuns: runs(800) })
})

// Regression cases the properties found (see the fix comments in daemon/config/).
t.test('regression: a config value nested 100,000 lists deep is a config error, not a RangeError', async t => {
  const { result } = load(`kafka: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`.replace('kafka: ', '{"kafka":') + '}', '.json')
  t.notOk(result.ok)
  if (!result.ok) t.match(result.err.message, /kafka: .*expected object/)
})

t.test('regression: an unknown env-file name with regular-expression characters, or after "export  ", is named with its line', async t => {
  const file = join(dir, 'regex.env')
  writeFileSync(file, 'KAFKA_TOPIC=t\nA(B=1\nexport  SPARK_MASTER=local\n')
  try {
    readEnvFile(file, ENV_OVERRIDE_NAMES)
    t.fail('expected an error')
  } catch (err) {
    t.ok(err instanceof FinnhubdError && err.code === 'FINNHUBD_ERR_CONFIG', String(err))
    t.match((err as Error).message, `${file}:2: unknown variable A(B`)
    t.match((err as Error).message, `${file}:3: unknown variable  SPARK_MASTER`)
  }
})

t.test('regression: YAML nested 100,000 deep is refused before parsing, even when the stack is already deep (it was a fatal V8 out-of-memory crash)', async t => {
  const text = `kafka: ${'['.repeat(100_000)}1\n`
  // The crash depended on how deep the stack was when the parser overflowed it: try several depths.
  const at = (frames: number): FinnhubdError | string => {
    if (frames > 0) return at(frames - 1)
    const { result } = load(text, '.yaml')
    return result.ok ? 'accepted' : result.err
  }
  for (const frames of [0, 700, 1_400, 2_100, 2_800]) {
    const err = at(frames)
    t.match(typeof err === 'string' ? err : err.message, /brackets nest more than 64 levels deep at line 1/, `${frames} frames deep`)
  }
  t.match((load(Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}- `).join('\n') + 'x\n', '.yaml').result as { err: Error }).err.message, /indented or nested more than 256 columns/)
})

t.test('regression: a line without "=" joins the next name (Node\'s parser): the name is shown escaped, at its line', async t => {
  const file = join(dir, 'joined.env')
  writeFileSync(file, 'KAFKA_TOPIC=t\nNOEQUALS\nFINNHUB_TOKEN=x\n')
  try {
    readEnvFile(file, ENV_OVERRIDE_NAMES)
    t.fail('expected an error')
  } catch (err) {
    t.ok(err instanceof FinnhubdError && err.code === 'FINNHUBD_ERR_CONFIG')
    t.match((err as Error).message, `${file}:3: unknown variable "NOEQUALS\\nFINNHUB_TOKEN"`)
  }
})
