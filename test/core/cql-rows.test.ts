// Rows encoded in the worker must be byte for byte what cassandra-driver would send
// for the same values: every column is checked against the driver's own encoder, for
// arbitrary valid rows (property-based), and read back whole.
import t from 'tap'
import fc from 'fast-check'
import cassandra from 'cassandra-driver'
import { createRequire } from 'node:module'
import { encodeRows, RowEncoder, RowView, TRADE_COLUMNS, uuidBytes, uuidString } from '../../daemon/core/cql-rows.js'
import { toTradeRow, type TradeRow } from '../../daemon/core/transform.js'
import { holds, runs } from '../fixtures/fuzz.js'

const require = createRequire(import.meta.url)
const Encoder = require('cassandra-driver/lib/encoder.js') as new (version: number, options: object) => { encode: (value: unknown, type: { code: number, info?: unknown }) => Buffer | null }
const { dataTypes, LocalDate, Uuid } = cassandra.types
const encoder = new Encoder(4, {})

/** The driver's encoding of a row's values, in insert order, from the values as the daemon bound them before. */
function driverParams (row: TradeRow): Array<Buffer | null> {
  const types = [
    { code: dataTypes.text }, { code: dataTypes.date }, { code: dataTypes.timestamp }, { code: dataTypes.uuid },
    { code: dataTypes.double }, { code: dataTypes.double }, { code: dataTypes.list, info: { code: dataTypes.text } },
    { code: dataTypes.timestamp }, { code: dataTypes.timestamp }
  ]
  const values = [row.symbol, LocalDate.fromString(row.day), row.trade_ts, Uuid.fromString(row.trade_id), row.price, row.volume, row.conditions, row.ingest_ts, row.process_ts]
  return values.map((v, i) => encoder.encode(v, types[i] as { code: number }))
}

const m = Date.UTC(2024, 4, 1, 12, 30)
const trade = fc.record({
  s: fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme' }),
  p: fc.double({ min: 1e-9, max: 1e9, noNaN: true }),
  t: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.integer({ min: -8_640_000_000_000, max: -1 })),
  v: fc.double({ min: 0, max: 1e15, noNaN: true }),
  c: fc.option(fc.array(fc.string({ maxLength: 16, unit: 'grapheme' }), { maxLength: 8 }), { nil: null }),
  ingest_ts: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  ordinal: fc.nat(1000)
})

t.test('every column is what the driver would encode, for arbitrary rows; each row reads back whole', async t => {
  holds(t, fc.property(fc.array(trade, { minLength: 1, maxLength: 40 }), trades => {
    const rows = trades.map(tr => toTradeRow(tr, m))
    const view = new RowView(encodeRows(rows))
    if (view.count !== rows.length) throw new Error(`count ${view.count} of ${rows.length}`)
    rows.forEach((row, i) => {
      const mine = view.params(i)
      const theirs = driverParams(row)
      TRADE_COLUMNS.forEach((col, k) => {
        const a = mine[k] ?? null
        const b = theirs[k] ?? null
        if ((a === null) !== (b === null) || (a !== null && b !== null && !a.equals(b))) throw new Error(`row ${i} column ${col}: ${a?.toString('hex') ?? 'null'} vs the driver's ${b?.toString('hex') ?? 'null'}`)
      })
      const back = view.row(i)
      // An empty list is null in Cassandra, as the driver sends it.
      if (JSON.stringify(back) !== JSON.stringify({ ...row, conditions: row.conditions?.length === 0 ? null : row.conditions })) throw new Error(`row ${i} read back as ${JSON.stringify(back)}`)
      if (view.partition(i) !== `${row.symbol}\u0000${row.day}`) throw new Error(`row ${i} partition`)
      if (view.tradeTs(i) !== row.trade_ts || view.ingestTs(i) !== row.ingest_ts) throw new Error(`row ${i} times`)
    })
  }), { numRuns: runs(300), seed: 1702 })
})

t.test('the partitions of a batch are listed once each; the encoder grows past its first guess', async t => {
  const e = new RowEncoder(1)
  const rows = Array.from({ length: 300 }, (_, i) => toTradeRow({ s: i % 2 === 0 ? 'AAPL' : 'BINANCE:BTCUSDT', p: 1 + i, t: m + i * 3_600_000, v: 1, c: ['x'.repeat(i % 17)], ingest_ts: m, ordinal: 0 }, m))
  for (const row of rows) e.add(row)
  t.equal(e.count, 300)
  const view = new RowView(e.finish())
  t.equal(view.count, 300)
  t.same(view.row(299), rows[299])
  t.equal(new Set(view.partitions).size, view.partitions.length, 'no partition twice')
  t.equal(view.partitions.length, new Set(rows.map(r => `${r.symbol}\u0000${r.day}`)).size)
  t.ok(view.size(0) > 60 && view.size(1) > view.size(0), 'sizes follow the values')
  const empty = new RowView(encodeRows([]))
  t.equal(empty.count, 0)
})

t.test('UUIDs: bytes and back, and a malformed id is refused', async t => {
  const id = 'a4b7b3e2-5d1c-4f0e-9c6a-2f8e1d3b7c90'
  const b = new Uint8Array(20)
  t.equal(uuidBytes(id, b, 2), 18)
  t.equal(uuidString(b, 2), id)
  t.same(Buffer.from(b.subarray(2, 18)), Uuid.fromString(id).getBuffer())
  t.throws(() => uuidBytes('not-a-uuid', b, 0), /not a UUID/)
  t.throws(() => uuidBytes('g4b7b3e2-5d1c-4f0e-9c6a-2f8e1d3b7c90', b, 0), /not a UUID/)
  t.equal(uuidString(Uint8Array.from(Buffer.from('A4B7B3E25D1C4F0E9C6A2F8E1D3B7C90', 'hex')), 0), id, 'always lowercase')
})
