// docs/data.md is a contract another implementation can be written from, so its recipes
// are re-implemented here from the page's words alone — the trade id with node:crypto's
// SHA-1 and the page's rule for numbers as text, the Parsing Canonical Form and the
// CRC-64-AVRO fingerprint from the Avro specification, the candle fold from its list of
// semantics — and checked against the daemon's own functions, over random trades and
// on the page's worked examples, which are read from the page (the blocks and the table
// after each `<!-- data-contract: … -->` marker). The page's Python recipe is run too,
// where python3 is installed.
import t from 'tap'
import fc from 'fast-check'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { aggregateCandle, type Candle, type CandleInput } from '../../daemon/core/candle.js'
import { toTradeRow, tradeId, tradeIdName, utcDay } from '../../daemon/core/transform.js'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'
import { loadTradeType, PROJECT_ROOT, SCHEMAS_DIR } from '../../daemon/paths.js'
import { holds, runs } from '../fixtures/fuzz.js'

const SEED = 260601
const page = readFileSync(join(PROJECT_ROOT, 'docs/data.md'), 'utf8')
const schemaText = readFileSync(join(SCHEMAS_DIR, 'trade.avsc'), 'utf8')
const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))

type IdFields = Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c' | 'ordinal'>

// ---- reading the page --------------------------------------------------------

/** The text after a `<!-- data-contract: name -->` marker, up to the next blank line after its content. */
function afterMarker (name: string): string {
  const at = page.indexOf(`<!-- data-contract: ${name} -->\n`)
  if (at < 0) throw new Error(`docs/data.md has no data-contract marker "${name}"`)
  return page.slice(at).split('\n').slice(1).join('\n')
}

/** The fenced block right after a marker. */
function blockAfter (name: string): string {
  const m = /^```[a-z]*\n([\s\S]*?)\n```/.exec(afterMarker(name))
  if (m === null) throw new Error(`no fenced block after the marker "${name}"`)
  return m[1] as string
}

/** The body rows of the table right after a marker, as cells with their backquotes removed. */
function tableAfter (name: string): string[][] {
  const lines = afterMarker(name).split('\n')
  const end = lines.findIndex(l => !l.startsWith('|'))
  return lines.slice(2, end < 0 ? lines.length : end)
    .map(l => l.split('|').slice(1, -1).map(c => c.trim().replace(/^`([\s\S]*)`$/, '$1')))
}

/** Hex bytes at the start of each line of a block (the rest of a line is commentary). */
function hexBytes (block: string): string {
  return block.split('\n').map(l => /^((?:[0-9a-f]{2} )*[0-9a-f]{2})(?: |$)/.exec(l)?.[1] ?? '').join('').replace(/ /g, '')
}

// ---- the trade id, from the page's recipe --------------------------------------

/** A double as the page's "Numbers as text" writes it. */
function numberAsText (x: number): string {
  if (x === 0) return '0'
  // toExponential() without an argument gives the shortest digits that read back as x.
  const [mantissa, exp] = x.toExponential().split('e') as [string, string]
  const negative = mantissa.startsWith('-')
  const d = mantissa.replace(/^-/, '').replace('.', '')
  const k = d.length
  const n = Number(exp) + 1
  let text: string
  if (k <= n && n <= 21) text = d + '0'.repeat(n - k)
  else if (n > 0 && n <= 21) text = `${d.slice(0, n)}.${d.slice(n)}`
  else if (n > -6 && n <= 0) text = `0.${'0'.repeat(-n)}${d}`
  else {
    const e = n - 1
    text = `${k === 1 ? d : `${d[0] as string}.${d.slice(1)}`}e${e >= 0 ? '+' : '-'}${Math.abs(e)}`
  }
  return (negative ? '-' : '') + text
}

const NAMESPACE = 'a4b7b3e2-5d1c-4f0e-9c6a-2f8e1d3b7c90'

function nameOf (trade: IdFields): string {
  const codes = trade.c === null ? '\u0000' : trade.c.join('\u001e')
  return [trade.s, numberAsText(trade.p), String(trade.t), numberAsText(trade.v), codes, String(trade.ordinal)].join('\u001f')
}

function idOf (trade: IdFields): string {
  const hash = createHash('sha1').update(Buffer.from(NAMESPACE.replace(/-/g, ''), 'hex')).update(nameOf(trade), 'utf8').digest()
  const b = hash.subarray(0, 16)
  b[6] = ((b[6] as number) & 0x0f) | 0x50
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  const hex = b.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

// ---- random trades as the schema allows them -------------------------------------

/** No control character (U+0000–U+001F, U+007F): the schema's rule for condition codes. */
const printable = (text: string): boolean => [...text].every(ch => (ch.codePointAt(0) as number) > 0x1f && ch !== '\u007f')
const symbol = fc.oneof(
  fc.constantFrom('AAPL', 'BINANCE:BTCUSDT', 'OANDA:EUR_USD', 'BRK.B', '^GSPC', 'X'.repeat(64)),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9:._/^=-]{0,63}$/)
)
const price = fc.oneof(
  fc.constantFrom(0.1, 1e-7, 123456.789, 187.12, 7296.89, 0.0000123, 0.000001, 1.5e-9, 1e9, 5e-324, 0.30000000000000004, 100),
  fc.double({ min: Number.MIN_VALUE, max: 1e9, noNaN: true }),
  fc.integer({ min: 1, max: 1_000_000_000 }).map(n => n / 1000)
)
const volume = fc.oneof(
  fc.constantFrom(0, -0, 1, 100, 0.011467, 1e-8, 1e15, 123456789012345, 5e-324),
  fc.double({ min: 0, max: 1e15, noNaN: true }),
  fc.integer({ min: 0, max: 1_000_000 }).map(n => n / 100)
)
const tradeTs = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) })
const code = fc.oneof(fc.constantFrom('', '1', '12', '@', 'T', 'I', 'é', '∆', '漢字'), fc.string({ unit: 'grapheme', maxLength: 4 }).filter(printable))
const conditions = fc.oneof(fc.constant(null), fc.constant<string[]>([]), fc.array(code, { minLength: 1, maxLength: 6 }))
const ordinal = fc.oneof(fc.constantFrom(0, 1, 2, 1_000_000), fc.integer({ min: 0, max: 1_000_000 }))
const trade: fc.Arbitrary<IdFields> = fc.record({ s: symbol, p: price, t: tradeTs, v: volume, c: conditions, ordinal })

// ---- the tests ---------------------------------------------------------------

t.test('the trade id made from the page\'s recipe is the daemon\'s, for any trade', async t => {
  holds(t, fc.property(trade, tr => {
    const id = idOf(tr)
    return id === tradeId(tr) && nameOf(tr) === tradeIdName(tr) &&
      id === toTradeRow({ ...tr, ingest_ts: tr.t, ordinal: tr.ordinal }, tr.t).trade_id &&
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)
  }), { seed: SEED, numRuns: runs(3000) })
  holds(t, fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), x => numberAsText(x) === String(x)), { seed: SEED, numRuns: runs(3000) })
  t.equal(numberAsText(1e21), '1e+21')
  t.equal(numberAsText(-0), '0')
  t.not(idOf({ s: 'A', p: 1, t: 946684800000, v: 1, c: null, ordinal: 0 }), idOf({ s: 'A', p: 1, t: 946684800000, v: 1, c: [], ordinal: 0 }), 'null and [] differ, as the page says')
  t.equal(idOf({ s: 'A', p: 1, t: 946684800000, v: 1, c: [], ordinal: 0 }), idOf({ s: 'A', p: 1, t: 946684800000, v: 1, c: [''], ordinal: 0 }), '[] and [""] are one name')
  t.not(idOf({ s: 'A', p: 1, t: 946684800000, v: 1, c: null, ordinal: 0 }), tradeId({ s: 'A', p: 1, t: 946684800000, v: 1, c: null, ordinal: 1 }), 'the check can fail')
})

const examples = tableAfter('trade-ids').map(([trade, name, id]) => ({
  trade: JSON.parse(trade as string) as IdFields,
  name: JSON.parse(name as string) as string,
  id: id as string
}))

t.test('the page\'s worked trade ids are the daemon\'s', async t => {
  t.ok(examples.length >= 3, `${examples.length} examples`)
  t.ok(examples.some(e => e.trade.ordinal > 0) && examples.some(e => e.trade.c === null) && examples.some(e => e.trade.v === 0), 'an ordinal, a null c and a price update among them')
  for (const e of examples) {
    t.equal(tradeIdName(e.trade), e.name, `${e.id}: the name`)
    t.equal(tradeId(e.trade), e.id, `${e.id}: the daemon's id`)
    t.equal(idOf(e.trade), e.id, `${e.id}: the recipe's id`)
  }
})

const python = spawnSync('python3', ['--version'], { encoding: 'utf8' })
t.test('the page\'s Python recipe gives the daemon\'s ids', { skip: python.status === 0 ? false : 'python3 is not installed' }, async t => {
  const trades = [...examples.map(e => e.trade), ...fc.sample(trade, { seed: SEED, numRuns: runs(500) })]
  const driver = `${blockAfter('python')}

import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(trade_id(r["s"], r["p"], r["t"], r["v"], r["c"], r["ordinal"]))
`
  const out = spawnSync('python3', ['-c', driver], { input: trades.map(tr => JSON.stringify(tr)).join('\n') + '\n', encoding: 'utf8' })
  t.equal(out.status, 0, out.stderr)
  const ids = out.stdout.trim().split('\n')
  t.equal(ids.length, trades.length)
  const wrong = trades.filter((tr, i) => ids[i] !== tradeId(tr))
  t.same(wrong, [], `${trades.length} trades`)
})

// ---- the framing ---------------------------------------------------------------

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'])

/** The Avro specification's Parsing Canonical Form of a schema (JSON value), written from the specification. */
function canonical (schema: unknown, namespace: string): unknown {
  const full = (name: string, ns: string): string => name.includes('.') || ns === '' ? name : `${ns}.${name}`
  if (typeof schema === 'string') return PRIMITIVES.has(schema) ? schema : full(schema, namespace)
  if (Array.isArray(schema)) return schema.map(s => canonical(s, namespace))
  const s = schema as Record<string, unknown>
  const kind = s['type'] as string
  if (PRIMITIVES.has(kind)) return kind
  if (kind === 'array') return { type: 'array', items: canonical(s['items'], namespace) }
  if (kind === 'map') return { type: 'map', values: canonical(s['values'], namespace) }
  const name = full(s['name'] as string, typeof s['namespace'] === 'string' ? s['namespace'] : namespace)
  const inner = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : ''
  const out: Record<string, unknown> = { name, type: kind }
  if (kind === 'record') {
    out['fields'] = (s['fields'] as Array<Record<string, unknown>>).map(f => ({ name: f['name'], type: canonical(f['type'], inner) }))
  }
  if (kind === 'enum') out['symbols'] = s['symbols']
  if (kind === 'fixed') out['size'] = s['size']
  return out
}

/** CRC-64-AVRO, bit by bit as the specification describes it (no table). */
function rabin (bytes: Uint8Array): bigint {
  const EMPTY = 0xc15d213aa4d7a795n
  let fp = EMPTY
  for (const b of bytes) {
    fp ^= BigInt(b)
    for (let i = 0; i < 8; i++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n))
  }
  return fp
}

t.test('the page\'s single-object header is the encoder\'s, and the specification\'s', async t => {
  const form = JSON.stringify(canonical(JSON.parse(schemaText), ''))
  t.equal(blockAfter('canonical-form'), form, 'the page shows the Parsing Canonical Form of schemas/trade.avsc')
  const fp = rabin(Buffer.from(form, 'utf8'))
  const le = Buffer.alloc(8)
  le.writeBigUInt64LE(fp)
  const header = Buffer.concat([Buffer.from([0xc3, 0x01]), le])
  t.equal(hexBytes(blockAfter('single-object-header')), header.toString('hex'), 'the page\'s 10 bytes: C3 01 and the fingerprint, little-endian')
  t.ok(page.includes(`\`0x${fp.toString(16)}\``) && page.includes(`\`${BigInt.asIntN(64, fp)}\``), 'the page names the fingerprint as a number, unsigned and as a signed long')
  t.equal(singleObjectFingerprint(type).toString('hex'), le.toString('hex'), 'the daemon\'s fingerprint')
  const sample: TradeRecord = { s: 'AAPL', p: 1, t: 946684800000, v: 1, c: null, ingest_ts: 946684800000, ordinal: 0 }
  t.equal(new TradeEncoder(type, { kind: 'single-object' }).encode(sample).subarray(0, 10).toString('hex'), header.toString('hex'), 'the encoder\'s header')
  const confluent = new TradeEncoder(type, { kind: 'confluent', schemaId: 0x01020304 }).encode(sample)
  t.equal(confluent.subarray(0, 5).toString('hex'), '0001020304', 'Confluent: 0, then the id big-endian')
})

t.test('the page\'s encoded record is the encoder\'s, and decodes to its trade', async t => {
  const m = /for the trade `(\{[^`]+\})`/.exec(page)
  t.ok(m, 'the page shows the trade it encodes')
  const record = JSON.parse(m?.[1] ?? '{}') as TradeRecord
  const hex = hexBytes(blockAfter('encoded-record'))
  t.ok(hex.length > 40, `${hex.length / 2} bytes`)
  const encoded = new TradeEncoder(type, { kind: 'single-object' }).encode(record)
  t.equal(hex, encoded.toString('hex'))
  const decoder = new TradeDecoder(type, { byFingerprint: new Map([[singleObjectFingerprint(type).toString('hex'), type]]), bySchemaId: new Map() })
  t.same(decoder.decode(Buffer.from(hex, 'hex')), { ok: true, trade: record })
  t.equal(examples.find(e => e.trade.s === record.s && e.trade.ordinal === record.ordinal && e.trade.p === record.p)?.id, tradeId(record), 'it is one of the worked trade ids')
})

// ---- Cassandra keys and candles ------------------------------------------------

t.test('day and minute are UTC, as the page says', async t => {
  holds(t, fc.property(tradeTs, ms => {
    const d = new Date(ms)
    return utcDay(ms) === `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}` &&
      aggregateCandle([{ trade_ts: ms, trade_id: NAMESPACE, price: 1, volume: 1 }])?.minute === Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes())
  }), { seed: SEED, numRuns: runs(500) })
})

/** The candle of a set of trades, as the page's list of semantics defines it. */
function candleOf (trades: readonly CandleInput[]): Omit<Candle, 'minute'> {
  const sorted = [...trades].sort((a, b) => a.trade_ts - b.trade_ts || (a.trade_id < b.trade_id ? -1 : a.trade_id > b.trade_id ? 1 : 0))
  const first = sorted[0] as CandleInput
  const last = sorted[sorted.length - 1] as CandleInput
  const volume = trades.reduce((sum, x) => sum + x.volume, 0)
  const notional = trades.reduce((sum, x) => sum + x.price * x.volume, 0)
  return {
    open: first.price,
    open_ts: first.trade_ts,
    close: last.price,
    close_ts: last.trade_ts,
    high: Math.max(...trades.map(x => x.price)),
    low: Math.min(...trades.map(x => x.price)),
    volume,
    notional,
    vwap: volume > 0 ? notional / volume : null,
    trade_count: trades.length
  }
}

const close = (a: number | null, b: number | null): boolean =>
  a === null || b === null ? a === b : Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b))

t.test('a candle is the page\'s aggregate of its trades, in any order they are folded', async t => {
  const minute = Date.UTC(2024, 4, 1, 12, 30)
  // Few distinct times and prices, so ties in one millisecond are common.
  const candleTrade = fc.record({
    trade_ts: fc.integer({ min: minute, max: minute + 3 }),
    trade_id: fc.uuid({ version: 5 }),
    price: fc.oneof(fc.constantFrom(1, 2, 0.1, 123456.789), fc.double({ min: 1e-7, max: 1e6, noNaN: true })),
    volume: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e6, noNaN: true }))
  })
  const trades = fc.uniqueArray(candleTrade, { minLength: 1, maxLength: 40, selector: x => x.trade_id })
  holds(t, fc.property(trades.chain(ts => fc.tuple(fc.constant(ts), fc.shuffledSubarray(ts, { minLength: ts.length }))), ([ts, shuffled]) => {
    const want = candleOf(ts)
    const got = aggregateCandle(shuffled)
    if (got === null) return false
    return got.minute === minute && got.open === want.open && got.open_ts === want.open_ts && got.close === want.close && got.close_ts === want.close_ts &&
      got.high === want.high && got.low === want.low && got.trade_count === want.trade_count &&
      close(got.volume, want.volume) && close(got.notional, want.notional) && close(got.vwap, want.vwap)
  }), { seed: SEED, numRuns: runs(1000) })
  holds(t, fc.property(fc.uuid(), fc.uuid(), (a, b) => Math.sign(a < b ? -1 : a > b ? 1 : 0) === Math.sign(Buffer.compare(Buffer.from(a.replace(/-/g, ''), 'hex'), Buffer.from(b.replace(/-/g, ''), 'hex')))),
    { seed: SEED, numRuns: runs(1000) })
  const update = aggregateCandle([{ trade_ts: minute, trade_id: NAMESPACE, price: 5, volume: 0 }])
  t.match(update, { open: 5, high: 5, low: 5, close: 5, volume: 0, notional: 0, vwap: null, trade_count: 1 }, 'a price update alone: a price, a count, no volume, no vwap')
})
