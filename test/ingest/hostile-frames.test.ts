// The Finnhub client against the real simulator's socket, with frames nobody here
// wrote: a deeply nested frame used to crash the daemon (its log detail overflowed
// the stack inside the `ws` message handler), and nothing about one frame may ever
// reach the socket's emitter.
import t, { type Test } from 'tap'
import { validateConfig } from '../../daemon/config/load.js'
import { FinnhubClient } from '../../daemon/finnhub/client.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'

async function started (t: Test, onTrades: (n: number) => void): Promise<{ sim: FinnhubSimulator, client: FinnhubClient, counters: ReturnType<typeof createIngestCounters>, lines: string[] }> {
  const sim = new FinnhubSimulator({ token: 'good', ratePerSec: 100 })
  await sim.start()
  const counters = createIngestCounters()
  const lines: string[] = []
  const client = new FinnhubClient({
    finnhub: validateConfig({ finnhub: { url: sim.url, token: 'good', symbols: ['AAPL'] } }).finnhub,
    log: createLogger({ level: 'info', write: l => lines.push(l) }),
    counters,
    onTrades: batch => { onTrades(batch.length) }
  })
  t.teardown(async () => { client.close(); await sim.close() })
  client.start()
  t.ok(await waitFor(() => client.connected, 10_000), 'connected')
  return { sim, client, counters, lines }
}

t.test('regression: 100,000-level nested frames are dropped and counted; the connection and the stream go on', async t => {
  let trades = 0
  const { sim, client, counters, lines } = await started(t, n => { trades += n })
  const depth = 100_000
  sim.sendMalformed([
    '['.repeat(depth) + ']'.repeat(depth),
    `{"type":"trade","data":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    `{"type":"error","msg":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    `{"type":"trade","data":[{"s":"AAPL","p":${'['.repeat(depth)}${']'.repeat(depth)},"t":1,"v":1}]}`
  ])
  t.ok(await waitFor(() => counters.malformed.not_an_object === 1 && counters.tradesRejected.not_an_object >= 1 && counters.framesError === 1 && counters.tradesRejected.bad_price >= 1, 10_000),
    'each is classified and counted')
  const before = trades
  t.ok(await waitFor(() => trades > before + 10, 10_000), 'trades keep flowing on the same connection')
  t.equal(counters.reconnects.closed + counters.reconnects.error, 0, 'never disconnected')
  t.ok(client.connected)
  t.ok(lines.every(l => l.length < 2_000), 'every log line stays short')
})

t.test('an exception while handling a frame drops that frame with reason internal; it never reaches the socket', async t => {
  let calls = 0
  let trades = 0
  const { client, counters, lines } = await started(t, n => {
    if (++calls === 3) throw new TypeError('a bug downstream of the frame parser')
    trades += n
  })
  t.ok(await waitFor(() => counters.malformed.internal === 1 && trades > 20, 10_000), 'counted as internal, and the stream goes on')
  t.ok(client.connected, 'still connected')
  const line = lines.find(l => l.includes('"frame-internal"') || l.includes('could not be handled'))
  t.ok(line, 'logged')
  t.match(line, /a bug downstream of the frame parser/)
})
