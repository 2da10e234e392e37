// The worker's job, run on the main thread: packed values → rows, poison, candle partials.
import t from 'tap'
import { join } from 'node:path'
import { aggregateCandle } from '../../daemon/core/candle.js'
import { singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { packValues, processBatch, writerSchemasFor } from '../../daemon/core/process-batch.js'
import { loadTradeType, type TradeRecord } from '../../daemon/core/trade-schema.js'
import { toTradeRow } from '../../daemon/core/transform.js'
import { SCHEMAS_DIR } from '../../daemon/paths.js'

const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), [42]))
const single = new TradeEncoder(type, { kind: 'single-object' })
const confluent = new TradeEncoder(type, { kind: 'confluent', schemaId: 42 })
const m = Date.UTC(2024, 4, 1, 12, 30)
const tr = (s: string, t: number, p: number, v: number, ordinal = 0): TradeRecord => ({ s, p, t, v, c: null, ingest_ts: t + 3, ordinal })

t.test('both framings decode; poison is reported by index and reason; the good records around it go on', async t => {
  const trades = [tr('AAPL', m + 1, 10, 1), tr('AAPL', m + 2, 11, 2), tr('MSFT', m + 3, 50, 1)]
  const values = [single.encode(trades[0]!), Buffer.from([0x7b, 0x22]), null, confluent.encode(trades[1]!),
    new TradeEncoder(type, { kind: 'confluent', schemaId: 9 }).encode(trades[2]!), single.encode(trades[2]!)]
  // The values sit in one larger buffer, as Kafka messages may: packing copies them out.
  const big = Buffer.concat(values.map(v => v ?? Buffer.alloc(0)))
  let at = 0
  const slices = values.map(v => { if (v === null) return null; const s = big.subarray(at, at + v.length); at += v.length; return s })
  const packed = packValues(slices)
  t.same([...packed.lengths], values.map(v => v?.length ?? -1))
  const out = processBatch(decoder, packed, 1234, () => 5n)
  t.same(out.rows, [toTradeRow(trades[0]!, 1234), toTradeRow(trades[1]!, 1234), toTradeRow(trades[2]!, 1234)])
  t.same(out.rowRecord, [0, 3, 5])
  t.same(out.poison.map(p => [p.index, p.reason]), [[1, 'unknown_framing'], [2, 'empty'], [4, 'unknown_schema']])
  t.match(out.poison[2]?.detail, /unknown schema id 9/)
  t.equal(out.decodeNs, 0)
})

t.test('candle partials: one per (symbol, minute), equal to the aggregate, a re-sent trade folded once', async t => {
  const trades = [
    tr('AAPL', m + 5, 10, 1), tr('AAPL', m + 5, 10, 1, 1), tr('AAPL', m + 70_000, 12, 1),
    tr('AAPL', m + 9, 9, 3), tr('MSFT', m + 1, 50, 0), tr('AAPL', m + 5, 10, 1)
  ]
  const out = processBatch(decoder, packValues(trades.map(x => single.encode(x))), 1)
  t.equal(out.rows.length, 6, 'every record is a row (the re-sent one rewrites its row)')
  const byKey = new Map(out.partials.map(p => [`${p.symbol}@${p.minute}`, p]))
  t.same([...byKey.keys()].sort(), [`AAPL@${m}`, `AAPL@${m + 60_000}`, `MSFT@${m}`])
  const first = byKey.get(`AAPL@${m}`)!
  t.same(first.rows, [0, 1, 3], 'the re-sent trade (same id as row 0) is not folded again')
  const expected = aggregateCandle(first.rows.map(r => out.rows[r]!))!
  t.equal(first.acc.trade_count, 3)
  t.equal(first.acc.volume, expected.volume)
  t.equal(first.acc.open, expected.open)
  t.equal(first.acc.low, 9)
  t.equal(first.day, '2024-05-01')
})
