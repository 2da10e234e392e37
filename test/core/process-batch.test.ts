// The worker's job, run on the main thread: packed values → rows, poison, candle partials.
import t from 'tap'
import { join } from 'node:path'
import { aggregateCandle } from '../../daemon/core/candle.js'
import { singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { encodeBatch, foldPartials, packValues, processBatch, transferablesOf, withoutRefused, writerSchemasFor } from '../../daemon/core/process-batch.js'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { toTradeRow } from '../../daemon/core/transform.js'
import { RowView, uuidString } from '../../daemon/core/cql-rows.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'

const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), [42]))
const single = new TradeEncoder(type, { kind: 'single-object' })
const confluent = new TradeEncoder(type, { kind: 'confluent', schemaId: 42 })
const m = Date.UTC(2024, 4, 1, 12, 30)
/** A process time just after the trades: records are checked against it (ingest_ts no later than now + skew). */
const PT = m + 120_000
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
  const out = processBatch(decoder, packed, PT, () => 5n)
  t.same(out.rows, [toTradeRow(trades[0]!, PT), toTradeRow(trades[1]!, PT), toTradeRow(trades[2]!, PT)])
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
  const out = processBatch(decoder, packValues(trades.map(x => single.encode(x))), PT)
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

t.test('valid Avro that is not a valid trade is poison (invalid_trade, the field named); nothing of it becomes a row or a candle', async t => {
  const good = tr('AAPL', m + 1, 10, 1)
  const bad: Array<[Partial<TradeRecord>, string]> = [
    [{ t: 9e15 }, 't'], // outside Date's range: threw RangeError in the worker before
    [{ s: 'A'.repeat(70_000) }, 's'], // made the driver throw while encoding the partition key
    [{ p: Number.NaN }, 'p'], [{ p: Infinity }, 'p'], [{ p: 0 }, 'p'], [{ p: -1 }, 'p'],
    [{ v: -0.5 }, 'v'], [{ v: Number.NaN }, 'v'],
    [{ s: '' }, 's'], [{ s: 'AAPL\u0000' }, 's'], [{ s: 'AA\nPL' }, 's'],
    [{ ingest_ts: -5 }, 'ingest_ts'], [{ ingest_ts: PT + 10 * 86_400_000 }, 'ingest_ts'],
    [{ t: good.ingest_ts + 2 * 86_400_000, ingest_ts: good.ingest_ts }, 't'],
    [{ ordinal: -1 }, 'ordinal'],
    [{ c: Array.from({ length: 65 }, () => '1') }, 'c'], [{ c: ['x'.repeat(17)] }, 'c'], [{ c: ['a\u0007'] }, 'c']
  ]
  const records = [good, ...bad.map(([patch]) => ({ ...good, ...patch })), good]
  const out = processBatch(decoder, packValues(records.map(x => single.encode(x))), PT)
  t.same(out.rowRecord, [0, records.length - 1], 'only the good records are rows')
  t.same(out.poison.map(p => p.index), bad.map((_, i) => i + 1))
  out.poison.forEach((p, i) => {
    t.equal(p.reason, 'invalid_trade')
    t.match(p.detail, new RegExp(`^field ${bad[i]![1]}: `), `record ${i + 1} names field ${bad[i]![1]}`)
    t.ok(p.detail.length < 400, 'the detail stays short')
  })
  t.equal(out.partials.length, 1)
  t.equal(out.partials[0]?.acc.trade_count, 1, 'the two good records are one trade (same id): one fold')
})

t.test('a record whose processing throws is poison (internal); the batch goes on', async t => {
  const good = tr('AAPL', m + 1, 10, 1)
  const values = [good, good, good].map(x => single.encode(x))
  let calls = 0
  const throwing = new Proxy(decoder, {
    get (target, prop) {
      if (prop !== 'decode') return Reflect.get(target, prop)
      return (value: Buffer | null) => {
        if (++calls === 2) throw new TypeError('boom in the decoder')
        return target.decode(value)
      }
    }
  })
  const out = processBatch(throwing, packValues(values), PT)
  t.same(out.rowRecord, [0, 2])
  t.same(out.poison.map(p => [p.index, p.reason]), [[1, 'internal']])
  t.match(out.poison[0]?.detail, /boom in the decoder/)
})

t.test('foldPartials leaves out the skipped rows (rows Cassandra refused)', async t => {
  const rows = [tr('AAPL', m + 1, 10, 1), tr('AAPL', m + 2, 20, 1), tr('AAPL', m + 3, 30, 1)].map(x => toTradeRow(x, PT))
  const all = foldPartials(rows)
  const some = foldPartials(rows, new Set([1]))
  t.equal(all[0]?.acc.trade_count, 3)
  t.same(some[0]?.rows, [0, 2])
  t.equal(some[0]?.acc.trade_count, 2)
  t.equal(some[0]?.acc.high, 30)
  t.equal(some[0]?.acc.volume, 2)
  t.same(foldPartials(rows, new Set([0, 1, 2])), [], 'nothing left, no partial')
})

t.test('withoutRefused: refused rows leave the candles and become poison of their own records', async t => {
  const trades = [tr('AAPL', m + 1, 10, 1), tr('AAPL', m + 2, 20, 1), tr('AAPL', m + 3, 30, 1), tr('MSFT', m + 4, 40, 1)]
  const records = [single.encode(trades[0]!), Buffer.from('junk'), ...trades.slice(1).map(x => single.encode(x))]
  const out = processBatch(decoder, packValues(records), PT)
  t.same(withoutRefused(out, []), { partials: out.partials, poison: [] }, 'nothing refused: unchanged')
  const { partials, poison } = withoutRefused(out, [{ index: 1, error: 'Cassandra refused the request: x'.repeat(40) }, { index: 3, error: 'no' }])
  t.same(poison.map(p => [p.index, p.reason]), [[2, 'cassandra_rejected'], [4, 'cassandra_rejected']], 'the records of the refused rows, by their index in the batch')
  t.ok((poison[0]?.detail.length ?? 0) <= 500, 'the detail is bounded')
  const aapl = partials.find(p => p.symbol === 'AAPL')
  t.same(aapl?.rows, [0, 2])
  t.equal(aapl?.acc.trade_count, 2)
  t.equal(aapl?.acc.high, 30)
  t.same([...(aapl?.price ?? [])], [10, 30], 'the parallel arrays follow')
  t.equal(aapl?.ids.length, 32)
  t.equal(uuidString(aapl!.ids, 16), out.rows[2]!.trade_id, 'ids are the rows\' ids, as bytes')
  t.equal(aapl?.acc.close_id, out.rows[2]!.trade_id)
  t.notOk(partials.some(p => p.symbol === 'MSFT'), 'a minute left with no stored trade has no partial')
})

t.test('the worker\'s result moves: every buffer listed once, the rows intact on the other side, nothing cloned row by row', async t => {
  const trades = [tr('AAPL', m + 1, 10, 1), tr('AAPL', m + 2, 20, 1), tr('MSFT', m + 70_000, 40, 2)]
  const decoded = processBatch(decoder, packValues(trades.map(x => single.encode(x))), PT)
  const batch = encodeBatch(decoded, process.hrtime.bigint())
  const list = transferablesOf(batch)
  t.equal(new Set(list).size, list.length, 'no buffer twice (a transfer list with a duplicate throws)')
  const moved = structuredClone(batch, { transfer: list })
  t.equal(batch.rows.bytes.byteLength, 0, 'the rows\' buffer is detached on this side: moved, not copied')
  const view = new RowView(moved.rows)
  t.same(Array.from({ length: view.count }, (_, i) => view.row(i)), decoded.rows)
  t.same([...moved.rowRecord], decoded.rowRecord)
  t.same(moved.partials.map(p => [p.symbol, p.acc.trade_count, [...p.price]]), [['AAPL', 2, [10, 20]], ['MSFT', 1, [40]]])
  t.ok(batch.decodeNs >= 0)
})
