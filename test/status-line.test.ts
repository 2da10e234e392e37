// The demo's live line and the query verb's argument checks.
import t from 'tap'
import { createIngestCounters } from '../daemon/metrics/ingest.js'
import { createProcessCounters } from '../daemon/metrics/process.js'
import { formatStatus, sampleStatus, TrailingP99 } from '../daemon/status-line.js'
import { StageLatency } from '../daemon/metrics/latency.js'
import { candleInterval, defaultSince, parseSince, validateQuery } from '../daemon/cassandra/query.js'

t.test('rates over the interval, lag, p99 and new errors', async t => {
  const ingest = createIngestCounters()
  const proc = createProcessCounters()
  const a = sampleStatus(1000, ingest, proc)
  ingest.tradesReceived = 5000
  ingest.malformed.invalid_json = 2
  proc.rowsWritten = 4000
  proc.poison.unknown_framing = 1
  const b = sampleStatus(3000, ingest, proc)
  t.equal(formatStatus(a, b, 1234, 12.34), 'in 2,500/s  out 2,000/s  lag 1,234  p99 (last 10 s) 12.3 ms  errors +3  (stored 4,000 in all)')
  t.match(formatStatus(b, b, 0, NaN), /p99 \(last 10 s\) - /)
  t.same(sampleStatus(0, null, null), { at: 0, received: 0, stored: 0, errors: 0 })
})

t.test('the line\'s p99 is of the last 10 s only: a slow start leaves it once 10 s have passed', async t => {
  const latency = new StageLatency()
  const p99 = new TrailingP99(10_000)
  t.ok(Number.isNaN(p99.add(0, latency.snapshotOf('end_to_end'))), 'nothing before the first snapshot')
  latency.record('end_to_end', 1000, 100) // a slow start: 100 trades at 1 s
  t.ok(Math.abs(p99.add(5_000, latency.snapshotOf('end_to_end')) - 1000) < 10, 'the slow start while it is in the window')
  latency.record('end_to_end', 8, 500)
  const mixed = p99.add(10_000, latency.snapshotOf('end_to_end'))
  t.ok(mixed > 900, `still in the window at 10 s (${mixed} ms)`)
  latency.record('end_to_end', 8, 500)
  const later = p99.add(15_000, latency.snapshotOf('end_to_end'))
  t.ok(later < 10, `from the 5 s snapshot on: only the fast trades (${later} ms)`)
  t.ok(Number.isNaN(p99.add(30_000, latency.snapshotOf('end_to_end'))), 'nothing recorded in the last window: no figure')
  latency.destroy()
})

t.test('query arguments: symbol, limit and since are checked with a clear message', async t => {
  t.same(validateQuery('BINANCE:BTCUSDT', undefined), { symbol: 'BINANCE:BTCUSDT', limit: 20 })
  t.same(validateQuery('AAPL', '5'), { symbol: 'AAPL', limit: 5 })
  t.throws(() => validateQuery(undefined, undefined), { code: 'FINNHUBD_ERR_USAGE', message: /needs a symbol/ })
  t.throws(() => validateQuery('bad symbol!', undefined), { message: /got "bad symbol!"/ })
  t.throws(() => validateQuery('AAPL', '0'), { message: /--limit 0 must be a whole number/ })
  const now = Date.UTC(2024, 0, 2)
  t.equal(parseSince(undefined, now), now - 3_600_000, 'the last hour by default')
  t.equal(parseSince('15m', now), now - 900_000)
  t.equal(parseSince('2d', now), now - 172_800_000)
  t.equal(parseSince('2024-01-01T00:00:00Z', now), Date.UTC(2024, 0, 1))
  t.throws(() => parseSince('yesterday', now), { code: 'FINNHUBD_ERR_USAGE', message: /--since yesterday is neither/ })
})

t.test('query SYMBOL --candles [interval]: the interval after the symbol, 1m by default; anything else refused by name', async t => {
  t.equal(candleInterval(false, []), null, 'trades')
  t.equal(candleInterval(true, []), '1m')
  for (const i of ['1m', '5m', '15m', '1h', '1d']) t.equal(candleInterval(true, [i]), i)
  t.throws(() => candleInterval(true, ['1w']), { code: 'FINNHUBD_ERR_USAGE', message: /--candles "1w" is not an interval; use 1m, 5m, 15m, 1h or 1d/ })
  t.throws(() => candleInterval(true, ['1h', '1d']), { code: 'FINNHUBD_ERR_USAGE', message: /at most one interval/ })
  t.throws(() => candleInterval(false, ['MSFT']), { code: 'FINNHUBD_ERR_USAGE', message: /"MSFT" is one too many/ })
  t.equal(defaultSince(null), '1h')
  t.equal(defaultSince('1m'), '120m', 'two hours of 1m')
  t.equal(defaultSince('1h'), '7200m', 'five days of 1h')
})
