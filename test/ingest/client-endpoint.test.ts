// The Finnhub client's endpoint changes (what a reload of finnhub.url / finnhub.token
// does), against the real simulator: a corrected token connects at once instead of
// waiting out the 401 backoff, and a new URL moves the live connection.
import t from 'tap'
import { validateConfig } from '../../daemon/config/load.js'
import { FinnhubClient } from '../../daemon/finnhub/client.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'

t.test('a good token after a 401 connects at once; a new URL moves the connection', async t => {
  const a = new FinnhubSimulator({ token: 'good', ratePerSec: 200 })
  const b = new FinnhubSimulator({ token: 'good', ratePerSec: 200 })
  await a.start()
  await b.start()
  t.teardown(async () => { await a.close(); await b.close() })
  const counters = createIngestCounters()
  const lines: string[] = []
  let trades = 0
  const client = new FinnhubClient({
    // An hour of 401 backoff: only setEndpoint can end it within the test.
    finnhub: validateConfig({ finnhub: { url: a.url, token: 'bad', symbols: ['AAPL'], unauthorizedBackoffMs: 3_600_000 } }).finnhub,
    log: createLogger({ level: 'info', write: l => lines.push(l) }),
    counters,
    onTrades: batch => { trades += batch.length }
  })
  t.equal(client.setEndpoint(a.url, 'bad'), false, 'no change before the start')
  t.teardown(() => client.close())
  client.start()
  t.ok(await waitFor(() => counters.reconnects.unauthorized === 1 && client.state === 'waiting', 10_000), 'refused with 401, waiting out the backoff')
  t.match(lines.join('\n'), /Finnhub refused the API token/)

  t.equal(client.setEndpoint(a.url, 'good'), true)
  t.ok(await waitFor(() => client.connected, 10_000), 'connected with the good token at once')
  t.ok(await waitFor(() => trades > 0, 10_000), 'trades flow')
  t.notMatch(lines.join('\n'), /good/, 'the token is never logged')

  t.equal(client.setEndpoint(b.url, 'good'), true)
  t.ok(await waitFor(() => b.stats().connections.current === 1 && client.connected, 10_000), 'moved to the new URL')
  t.ok(await waitFor(() => a.stats().connections.current === 0, 10_000), 'and left the old one')
  t.equal(counters.reconnects.reload, 1, 'counted as a reload reconnect')
  t.same(b.subscriptions(), [['AAPL']], 'subscribed again on the new connection')
  t.equal(client.setEndpoint(b.url, 'good'), false, 'the same endpoint changes nothing')
})

t.test('a reload reconnect loses no trade the old connection was sent: it is closed, not cut', async t => {
  // The old server streams fast; the new one refuses the token, so every trade
  // received came from the old one and must equal what it sent.
  const a = new FinnhubSimulator({ token: 'good', ratePerSec: 20_000, maxTradesPerFrame: 40 })
  const b = new FinnhubSimulator({ token: 'other', ratePerSec: 200 })
  await a.start()
  await b.start()
  t.teardown(async () => { await a.close(); await b.close() })
  const counters = createIngestCounters()
  let trades = 0
  const client = new FinnhubClient({
    finnhub: validateConfig({ finnhub: { url: a.url, token: 'good', symbols: ['AAPL', 'MSFT', 'BINANCE:BTCUSDT'], unauthorizedBackoffMs: 3_600_000 } }).finnhub,
    log: createLogger({ level: 'error', write: () => {} }),
    counters,
    onTrades: batch => { trades += batch.length }
  })
  t.teardown(() => client.close())
  client.start()
  t.ok(await waitFor(() => trades > 5_000, 10_000), 'trades flow fast')
  t.equal(client.setEndpoint(b.url, 'good'), true)
  t.ok(await waitFor(() => a.stats().connections.current === 0 && counters.reconnects.unauthorized >= 1, 10_000), 'left the old server, refused by the new one')
  t.ok(a.stats().tradesSent > 5_000)
  t.equal(trades, a.stats().tradesSent, 'every trade the old server sent was received')
})
