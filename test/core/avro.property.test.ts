// Property-based tests of the worker's decode path on hostile topic records (issue 16):
// arbitrary values in every field of the Trade record, encoded with the real schema in
// both framings, and byte mutations of valid records — truncation, bit flips, byte
// overwrites, zig-zag varints (string lengths, union indexes, array block counts) that
// are huge, negative or unterminated, trailing bytes, wrong magic, fingerprint or
// schema id. processBatch answers every record with exactly one row or one poison
// entry (never `internal`, never a throw); every row is a valid trade with a real day
// and a UUID; good records always come out as rows; candle partials point at rows
// that exist and hold finite sums. Fixed seeds, bounded runs (FINNHUBD_FUZZ_RUNS
// multiplies them).
import t from 'tap'
import fc from 'fast-check'
import { join } from 'node:path'
import { POISON_REASONS, singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { packValues, processBatch, writerSchemasFor } from '../../daemon/core/process-batch.js'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { checkDecodedTrade, MAX_FUTURE_SKEW_MS, MAX_PRICE, MAX_VOLUME, MIN_TRADE_TS } from '../../daemon/core/validate.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'
import { holds, runs } from '../fixtures/fuzz.js'

const SEED = 160602

const SCHEMA_ID = 42
const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const fingerprint = singleObjectFingerprint(type)
const decoder = new TradeDecoder(type, writerSchemasFor(type, fingerprint.toString('hex'), [SCHEMA_ID]))
const encoders = [new TradeEncoder(type, { kind: 'single-object' }), new TradeEncoder(type, { kind: 'confluent', schemaId: SCHEMA_ID })]
const fieldTypes = (type as unknown as { fields: Array<{ name: string, type: { toBuffer: (v: unknown) => Buffer } }> }).fields
const PT = Date.UTC(2026, 11, 1, 12)

// ---- generators --------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map(c => String.fromCharCode(c))
const anyString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '\u0000', 'AAPL\u0000', 'AAPL', 'X'.repeat(65), '\u2028', loneSurrogate.toString()) },
  { weight: 1, arbitrary: loneSurrogate },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 200_000 }).map(n => 'z'.repeat(n)) }
)
const anyDouble = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308))
/** Longs across the safe range, Date's edge (±8.64e15) and just beyond it. */
const anyLong = fc.oneof(
  fc.maxSafeInteger(),
  fc.integer({ min: MIN_TRADE_TS - 1000, max: PT + 2 * MAX_FUTURE_SKEW_MS }),
  fc.constantFrom(0, -1, 9e15, -9e15, 8.64e15, 8.64e15 + 1, -8.64e15 - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, MIN_TRADE_TS, PT)
)
const anyConditions = fc.oneof(
  fc.constant(null),
  fc.array(anyString, { maxLength: 8 }),
  fc.integer({ min: 60, max: 3_000 }).map(n => Array.from({ length: n }, (_, i) => String(i % 100)))
)
const anyOrdinal = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, 1, -1, 1_000_000, 1_000_001))
const anyTrade: fc.Arbitrary<TradeRecord> = fc.record({ s: anyString, p: anyDouble, t: anyLong, v: anyDouble, c: anyConditions, ingest_ts: anyLong, ordinal: anyOrdinal })

/** Trades the validator accepts at process time PT; they must always become rows. */
const goodTrade: fc.Arbitrary<TradeRecord> = fc.record({
  s: fc.constantFrom('AAPL', 'BINANCE:BTCUSDT', 'OANDA:EUR_USD', 'BRK.B', 'X'.repeat(64)),
  p: fc.oneof(fc.double({ min: 1e-8, max: 1e7, noNaN: true }), fc.double({ min: 5e-324, max: MAX_PRICE, noNaN: true }), fc.constantFrom(5e-324, 1, 187.12, MAX_PRICE)),
  v: fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double({ min: 0, max: MAX_VOLUME, noNaN: true }), fc.constantFrom(0, -0, 5e-324, MAX_VOLUME)),
  // eslint-disable-next-line no-control-regex -- condition codes with control characters are not valid trades
  c: fc.oneof(fc.constant(null), fc.array(fc.string({ unit: 'grapheme-ascii', maxLength: 16 }).filter(s => !/[\x00-\x1f\x7f]/.test(s)), { maxLength: 6 })),
  ordinal: fc.integer({ min: 0, max: 1_000_000 }),
  ingest: fc.integer({ min: MIN_TRADE_TS, max: PT + MAX_FUTURE_SKEW_MS }),
  lag: fc.integer({ min: -MAX_FUTURE_SKEW_MS, max: 86_400_000 * 30 })
}).map(({ ingest, lag, ...rest }) => ({ ...rest, ingest_ts: ingest, t: Math.max(MIN_TRADE_TS, ingest - lag) }))

/** The body offset of each field of a trade's encoding (after the header). */
function fieldOffsets (trade: TradeRecord): number[] {
  const offsets: number[] = []
  let at = 0
  for (const field of fieldTypes) {
    offsets.push(at)
    at += field.type.toBuffer((trade as unknown as Record<string, unknown>)[field.name]).length
  }
  offsets.push(at)
  return offsets
}

function zigzag (n: bigint): number[] {
  let v = n >= 0n ? n * 2n : -n * 2n - 1n
  const out: number[] = []
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n }
  out.push(Number(v))
  return out
}
/** Varints that lie: huge, negative, past 64 bits, unterminated. */
const evilVarint: fc.Arbitrary<number[]> = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(zigzag),
  fc.constantFrom(2n ** 31n, 2n ** 32n, 2n ** 53n, 10n ** 8n, 2n ** 62n, -1n, -(2n ** 31n), 1_000_000n).map(zigzag),
  fc.constant<number[]>([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
  fc.integer({ min: 1, max: 20 }).map(n => Array(n).fill(0x80) as number[])
)

type Mutation =
  | { kind: 'truncate', at: number }
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'overwrite', at: number, byte: number }
  | { kind: 'append', bytes: Uint8Array }
  | { kind: 'varint', field: number, bytes: number[] }
  | { kind: 'block', count: number[], size: number[] | null, rest: Uint8Array }
  | { kind: 'header', which: 'magic' | 'fingerprint' | 'schemaId' | 'unknownFirst', bytes: Uint8Array }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map(at => ({ kind: 'truncate' as const, at })),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([at, bit]) => ({ kind: 'flip' as const, at, bit })),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => ({ kind: 'overwrite' as const, at, byte })),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map(bytes => ({ kind: 'append' as const, bytes })),
  fc.tuple(fc.integer({ min: 0, max: 6 }), evilVarint).map(([field, bytes]) => ({ kind: 'varint' as const, field, bytes })),
  fc.tuple(evilVarint, fc.option(evilVarint, { nil: null }), fc.uint8Array({ maxLength: 12 })).map(([count, size, rest]) => ({ kind: 'block' as const, count, size, rest })),
  fc.tuple(fc.constantFrom('magic' as const, 'fingerprint' as const, 'schemaId' as const, 'unknownFirst' as const), fc.uint8Array({ minLength: 8, maxLength: 8 }))
    .map(([which, bytes]) => ({ kind: 'header' as const, which, bytes }))
)

/** A valid record with one mutation applied (which may, by chance, leave it valid). */
function mutate (trade: TradeRecord, framing: number, m: Mutation): Buffer {
  const record = encoders[framing]!.encode(trade)
  const header = framing === 0 ? 10 : 5
  const offsets = fieldOffsets(trade).map(o => o + header)
  switch (m.kind) {
    case 'truncate': return record.subarray(0, m.at % record.length)
    case 'flip': { const b = Buffer.from(record); const i = m.at % b.length; b[i] = (b[i] as number) ^ (1 << m.bit); return b }
    case 'overwrite': { const b = Buffer.from(record); b[m.at % b.length] = m.byte; return b }
    case 'append': return Buffer.concat([record, m.bytes])
    case 'varint': {
      // Replace the field's leading varint (a string's length, the union index, a long or int) with the lie.
      const start = offsets[m.field] as number
      let end = start
      if (m.field === 1 || m.field === 3) end = start // doubles have no varint: insert before them
      else { while (((record[end] as number) & 0x80) !== 0 && end < record.length) end++; end++ }
      return Buffer.concat([record.subarray(0, start), Buffer.from(m.bytes), record.subarray(end)])
    }
    case 'block': {
      // `c` as the array branch with a lying block count (and, for a negative count, a size).
      const start = offsets[4] as number
      const end = offsets[5] as number
      return Buffer.concat([record.subarray(0, start), Buffer.from([0x02, ...m.count, ...(m.size ?? [])]), m.rest, record.subarray(end)])
    }
    case 'header': {
      const b = Buffer.from(record)
      if (m.which === 'magic') b[framing === 0 ? 1 : 0] = m.bytes[0] === 0x01 ? 0x02 : (m.bytes[0] as number)
      else if (m.which === 'fingerprint' && framing === 0) Buffer.from(m.bytes).copy(b, 2)
      else if (m.which === 'schemaId' && framing === 1) b.writeUInt32BE((m.bytes[0] as number) === SCHEMA_ID ? 7 : m.bytes[0] as number, 1)
      else b[0] = 0x01 + ((m.bytes[0] as number) % 0xc0)
      return b
    }
  }
}

type Item = { value: Buffer | null, good: boolean }
const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(goodTrade, fc.integer({ min: 0, max: 1 })).map(([tr, f]) => ({ value: encoders[f]!.encode(tr), good: true })) },
  {
    weight: 3,
    arbitrary: fc.tuple(anyTrade, fc.integer({ min: 0, max: 1 })).map(([tr, f]) => {
      try {
        return { value: encoders[f]!.encode(tr), good: false }
      } catch {
        return { value: null, good: false } // not encodable (avsc refuses it): the producer could not have written it
      }
    })
  },
  { weight: 4, arbitrary: fc.tuple(goodTrade, fc.integer({ min: 0, max: 1 }), mutation).map(([tr, f, m]) => ({ value: mutate(tr, f, m), good: false })) },
  { weight: 1, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(new Uint8Array(0))).map(b => ({ value: Buffer.from(b), good: false })) },
  { weight: 1, arbitrary: fc.constant({ value: null, good: false }) }
)

// ---- the property ------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function checkBatch (items: readonly Item[]): void {
  let out: ReturnType<typeof processBatch>
  try {
    out = processBatch(decoder, packValues(items.map(i => i.value)), PT)
  } catch (err) {
    throw new Error(`processBatch threw: ${String(err)}`)
  }
  const answered = new Array<number>(items.length).fill(0)
  for (const i of out.rowRecord) answered[i] = (answered[i] as number) + 1
  for (const p of out.poison) {
    answered[p.index] = (answered[p.index] as number) + 1
    if (!POISON_REASONS.includes(p.reason)) throw new Error(`record ${p.index}: reason ${p.reason} is not a poison reason`)
    if (p.reason === 'internal') throw new Error(`record ${p.index}: processing threw (${p.detail})`)
    if (typeof p.detail !== 'string' || p.detail.length > 400) throw new Error(`record ${p.index}: detail of ${p.detail.length} characters`)
  }
  answered.forEach((n, i) => { if (n !== 1) throw new Error(`record ${i} answered ${n} times`) })
  if (out.rows.length !== out.rowRecord.length) throw new Error('rows and rowRecord differ in length')
  out.rows.forEach((row, r) => {
    const index = out.rowRecord[r] as number
    const decoded = decoder.decode(items[index]!.value)
    if (!decoded.ok) throw new Error(`row ${r} from record ${index}, which does not decode`)
    const problem = checkDecodedTrade(decoded.trade, PT)
    if (problem !== null) throw new Error(`row ${r}: the validator refuses its record (${problem.field}: ${problem.detail})`)
    if (!(Number.isFinite(row.price) && row.price > 0)) throw new Error(`row ${r}: price ${row.price}`)
    if (!(Number.isFinite(row.volume) && row.volume >= 0)) throw new Error(`row ${r}: volume ${row.volume}`)
    if (!/^\d{4}-\d{2}-\d{2}$/.test(row.day) || new Date(row.trade_ts).toISOString().slice(0, 10) !== row.day) throw new Error(`row ${r}: day ${row.day} for ${row.trade_ts}`)
    if (!UUID.test(row.trade_id)) throw new Error(`row ${r}: trade_id ${row.trade_id}`)
  })
  items.forEach((it, i) => { if (it.good && !out.rowRecord.includes(i)) throw new Error(`good record ${i} is poison: ${JSON.stringify(out.poison.find(p => p.index === i))}`) })
  for (const partial of out.partials) {
    for (const r of partial.rows) if (!Number.isInteger(r) || r < 0 || r >= out.rows.length) throw new Error(`partial points at row ${r} of ${out.rows.length}`)
    for (const [k, v] of Object.entries(partial.acc)) if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`partial ${partial.symbol}@${partial.minute}: ${k} is ${v}`)
  }
}

t.test(`a batch of good, arbitrary and mutated records: one row or one poison each, never a throw (${runs(400)} batches of up to 30)`, async t => {
  holds(t, fc.property(fc.array(item, { minLength: 1, maxLength: 30 }), items => { checkBatch(items) }), { seed: SEED, numRuns: runs(400) })
})

t.test(`every field arbitrary, alone in a batch (${runs(1500)} records)`, async t => {
  holds(t, fc.property(item, it => { checkBatch([it]) }), { seed: SEED + 1, numRuns: runs(1500) })
})

t.test(`decode alone never throws on arbitrary bytes, long ones included (${runs(800)} inputs)`, async t => {
  const prefixed = fc.tuple(fc.constantFrom([], [0xc3, 0x01, ...fingerprint], [0x00, 0, 0, 0, SCHEMA_ID], [0x00], [0xc3]), fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ minLength: 1_000, maxLength: 70_000 })))
    .map(([head, body]) => Buffer.concat([Buffer.from(head), body]))
  holds(t, fc.property(prefixed, bytes => {
    const started = process.hrtime.bigint()
    const result = decoder.decode(bytes)
    if (typeof result.ok !== 'boolean') throw new Error('no result')
    if (!result.ok && !POISON_REASONS.includes(result.reason)) throw new Error(`reason ${result.reason}`)
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    if (ms > 250) throw new Error(`decode of ${bytes.length} bytes took ${ms.toFixed(0)} ms`)
  }), { seed: SEED + 2, numRuns: runs(800) })
})

t.test('every truncation of valid records, both framings, is poison (truncated or invalid_body), never a row', async t => {
  const trades: TradeRecord[] = [
    { s: 'BINANCE:BTCUSDT', p: 7296.89, t: PT - 5, v: 0.011467, c: ['1', '12'], ingest_ts: PT, ordinal: 3 },
    { s: 'AAPL', p: 1, t: PT, v: 0, c: null, ingest_ts: PT, ordinal: 0 }
  ]
  let cuts = 0
  for (const trade of trades) {
    for (const encoder of encoders) {
      const record = encoder.encode(trade)
      const values = Array.from({ length: record.length }, (_, n) => record.subarray(0, n))
      const out = processBatch(decoder, packValues(values), PT)
      t.equal(out.rows.length, 0, `no prefix of ${record.length} bytes is a row`)
      t.ok(out.poison.every((p, i) => p.index === i && ['empty', 'truncated', 'invalid_body', 'unknown_framing'].includes(p.reason)), 'each prefix is poison')
      cuts += values.length
    }
  }
  t.ok(cuts > 100, `${cuts} truncations`)
})

// Regression case the properties found (see the fix comment in daemon/core/avro-codec.ts).
t.test('regression: a `c` block count of 100,000,000 in a 40-byte record is refused at once, not after minutes and a gigabyte', async t => {
  const good = encoders[1]!.encode({ s: 'AAPL', p: 1, t: PT, v: 1, c: ['a', 'b'], ingest_ts: PT, ordinal: 0 })
  const offsets = fieldOffsets({ s: 'AAPL', p: 1, t: PT, v: 1, c: ['a', 'b'], ingest_ts: PT, ordinal: 0 }).map(o => o + 5)
  for (const count of [10n ** 8n, 2n ** 31n, 2n ** 62n, -(10n ** 8n)]) {
    const lying = Buffer.concat([good.subarray(0, offsets[4]), Buffer.from([0x02, ...zigzag(count)]), good.subarray((offsets[4] as number) + 2)])
    const started = Date.now()
    const result = decoder.decode(lying)
    t.same([result.ok, result.ok ? null : result.reason], [false, 'invalid_body'], `count ${count}`)
    t.ok(Date.now() - started < 1000, `count ${count}: refused in ${Date.now() - started} ms`)
  }
  t.same(decoder.decode(good), { ok: true, trade: { s: 'AAPL', p: 1, t: PT, v: 1, c: ['a', 'b'], ingest_ts: PT, ordinal: 0 } }, 'the honest record still decodes')
})
