// Candle aggregation: OHLCV, VWAP, the total order that picks open and close.
import t from 'tap'
import { accOf, aggregateCandle, foldTrade, mergeAcc, minuteOf, toCandle, type CandleAcc } from '../../daemon/core/candle.js'

const m = Date.UTC(2024, 4, 1, 12, 30)

t.test('OHLCV and VWAP of one minute', async t => {
  const rows = [
    { trade_ts: m + 5000, trade_id: 'b', price: 10, volume: 2 },
    { trade_ts: m + 1000, trade_id: 'z', price: 11, volume: 1 },
    { trade_ts: m + 59_999, trade_id: 'a', price: 9, volume: 3 },
    { trade_ts: m + 30_000, trade_id: 'c', price: 12, volume: 0 }
  ]
  t.same(aggregateCandle(rows), {
    minute: m, open: 11, high: 12, low: 9, close: 9, volume: 6, notional: 10 * 2 + 11 + 27, vwap: (20 + 11 + 27) / 6, trade_count: 4, open_ts: m + 1000, close_ts: m + 59_999
  })
  t.same(aggregateCandle([...rows].reverse()), aggregateCandle(rows), 'order of rows does not matter')
})

t.test('ties in one millisecond are broken by trade_id, the same way every time', async t => {
  const rows = [
    { trade_ts: m, trade_id: 'b', price: 2, volume: 1 },
    { trade_ts: m, trade_id: 'a', price: 1, volume: 1 },
    { trade_ts: m, trade_id: 'c', price: 3, volume: 1 }
  ]
  const c = aggregateCandle(rows)
  t.equal(c?.open, 1)
  t.equal(c?.close, 3)
  t.same(aggregateCandle([rows[2]!, rows[0]!, rows[1]!]), c)
})

t.test('no volume: vwap is null; no rows: no candle; minutes floor', async t => {
  t.equal(aggregateCandle([{ trade_ts: m, trade_id: 'a', price: 5, volume: 0 }])?.vwap, null)
  t.equal(aggregateCandle([]), null)
  t.equal(minuteOf(m + 59_999), m)
  t.equal(minuteOf(m + 60_000), m + 60_000)
})

t.test('merging folds of disjoint sets equals folding their union, in any split', async t => {
  const rows = Array.from({ length: 50 }, (_, i) => ({ trade_ts: m + (i * 7919) % 60_000, trade_id: `id${(i * 31) % 50}`, price: 100 + ((i * 13) % 17), volume: (i % 5) * 0.5 }))
  const whole = aggregateCandle(rows)!
  for (const split of [1, 17, 49]) {
    let left: CandleAcc | null = null
    let right: CandleAcc | null = null
    rows.forEach((r, i) => { if (i < split) left = foldTrade(left, r); else right = foldTrade(right, r) })
    const merged = toCandle(m, mergeAcc(right!, left!))
    t.same({ ...merged, volume: 0, notional: 0, vwap: 0 }, { ...whole, volume: 0, notional: 0, vwap: 0 }, `split at ${split}`)
    t.ok(Math.abs(merged.notional - whole.notional) < 1e-9 * whole.notional, 'sums agree up to rounding')
  }
  t.same(accOf(rows[0]!).trade_count, 1)
})
