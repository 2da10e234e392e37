// The recomputation the fault suite and the end-to-end tests check every candle table
// against: periods of each resolution folded from the stored trades, compared exactly
// (prices, times, counts) and to 1e-9 relative (sums), counted per resolution.
import t from 'tap'
import { aggregateCandle, minuteOf } from '../../daemon/core/candle.js'
import { periodStart, RESOLUTION_NAMES, RESOLUTIONS } from '../../daemon/core/candle-periods.js'
import { compareCandles, recomputeCandles, type StoredCandle, type StoredTrade } from '../../tools/verify/verify.js'
import { candlesExact, candleSummary, type CandleCheck } from '../../tools/chaos/verdict.js'

// Around midnight UTC at a year's turn: every resolution's periods of both days.
const D = Date.UTC(2025, 11, 31, 23, 50)
const trades: StoredTrade[] = Array.from({ length: 200 }, (_, i) => {
  const ts = D + i * 6_000 + (i % 3)
  return { symbol: i % 2 === 0 ? 'X:A' : 'X:B', day: new Date(ts).toISOString().slice(0, 10), trade_ts: ts, trade_id: `id-${String(199 - i).padStart(3, '0')}`, price: 100 + (i % 17), volume: i % 5 === 0 ? 0 : 0.5 * (i % 4), conditions: null, ingest_ts: ts, process_ts: ts }
})

t.test('each resolution: one candle per symbol and period, the fold of that period\'s trades', async t => {
  for (const name of RESOLUTION_NAMES) {
    const res = RESOLUTIONS[name]
    const got = recomputeCandles(trades, res)
    const periods = new Set(trades.map(tr => `${tr.symbol}@${periodStart(res, tr.trade_ts)}`))
    t.equal(got.length, periods.size, `${name}: ${periods.size} candles`)
    for (const c of got) {
      const of = trades.filter(tr => tr.symbol === c.symbol && periodStart(res, tr.trade_ts) === c.minute)
      const want = aggregateCandle(of)
      t.same({ ...c, symbol: undefined, minute: undefined }, { ...want, minute: undefined, symbol: undefined }, `${name} ${c.symbol}@${new Date(c.minute).toISOString()}`)
    }
  }
  t.same(recomputeCandles(trades).map(c => c.minute), recomputeCandles(trades, RESOLUTIONS['1m']).map(c => c.minute), 'one minute by default')
  t.ok(recomputeCandles(trades).every(c => c.minute === minuteOf(c.minute)))
  t.same(recomputeCandles(trades, RESOLUTIONS['1d']).map(c => new Date(c.minute).toISOString().slice(0, 10)), ['2025-12-31', '2026-01-01', '2025-12-31', '2026-01-01'], 'a day never spans two UTC days')
})

t.test('the comparison counts exact candles, names each difference, missing and extra rows', async t => {
  const res = RESOLUTIONS['5m']
  const want = recomputeCandles(trades, res)
  t.same(compareCandles(want, want), { exact: want.length, expected: want.length, extra: 0, problems: [] })
  const off: StoredCandle[] = want.map(c => ({ ...c }))
  off[0]!.close += 1
  off[1]!.volume *= 1 + 1e-12 // within 1e-9 relative: sums may differ in their last bits
  off[2]!.notional = Number.NaN
  const dropped = off.splice(3, 1)
  off.push({ ...want[0]!, minute: want[0]!.minute - res.ms })
  const c = compareCandles(off, want)
  t.equal(c.exact, want.length - 3, 'the close, the NaN sum and the missing row are not exact; the 1e-12 drift is')
  t.equal(c.extra, 1)
  t.match(c.problems.join('\n'), /close: stored/)
  t.match(c.problems.join('\n'), /notional: stored NaN/)
  t.match(c.problems.join('\n'), new RegExp(`missing candle ${dropped[0]!.symbol}`))
  t.match(c.problems.join('\n'), /extra candle/)
})

t.test('the verdict\'s summary per resolution, exact only when every resolution is', async t => {
  const ok = (resolution: CandleCheck['resolution'], n: number): CandleCheck => ({ resolution, exact: n, expected: n, extra: 0, problems: [] })
  const all = [ok('1m', 412), ok('5m', 90), ok('15m', 31), ok('1h', 9), ok('1d', 6)]
  t.equal(candleSummary(all), '1m 412/412, 5m 90/90, 15m 31/31, 1h 9/9, 1d 6/6')
  t.ok(candlesExact(all))
  t.notOk(candlesExact([]), 'nothing checked is no pass')
  const wrong = [...all.slice(0, 4), { resolution: '1d' as const, exact: 5, expected: 6, extra: 1, problems: ['X:A@… close'] }]
  t.notOk(candlesExact(wrong))
  t.equal(candleSummary(wrong).split(', ')[4], '1d 5/6 +1 extra')
})
