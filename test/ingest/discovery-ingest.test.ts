// Symbol discovery inside the ingest role, on real components: the simulator's REST
// API and WebSocket, the local Kafka. The socket subscribes exactly the static symbols
// plus the discovered ones; later results and reloads are applied as diffs on the
// live socket; the static symbols stream while discovery is still failing.
import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { startIngest, type Ingest } from '../../daemon/ingest.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, readTopic, uniqueName, waitFor } from '../fixtures/kafka.js'

t.setTimeout(240_000)

const { kafkaBootstrap } = testEndpoints()
const TOKEN = 'discovery-token'

interface Harness { sim: FinnhubSimulator, ingest: Ingest, config: Config, topic: string, logs: Array<Record<string, unknown>> }

async function harness (t: Test, discovery: Record<string, unknown>, symbols: string[] = ['AAPL'], rest: Record<string, unknown> = {}): Promise<Harness> {
  const sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: 400, seed: 11 })
  await sim.start()
  const topic = uniqueName('finnhubd-discovery-test')
  await createTopic(kafkaBootstrap, topic)
  const config = validateConfig({
    stateDir: t.testdir({}),
    finnhub: {
      url: sim.url,
      token: TOKEN,
      symbols,
      reconnectInitialDelayMs: 50,
      reconnectMaxDelayMs: 500,
      rest: { url: sim.restUrl, requestsPerWindow: 100, windowMs: 1000, retryInitialDelayMs: 20, retryMaxDelayMs: 200, ...rest },
      discovery: { enabled: true, failureRetryMs: 1000, ...discovery }
    },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, lingerMs: 2, statsIntervalMs: 100 }
  })
  const logs: Array<Record<string, unknown>> = []
  const log = createLogger({ level: 'info', write: line => logs.push(JSON.parse(line) as Record<string, unknown>), limitIntervalMs: 0 })
  const ingest = await startIngest(config, { log, registry: new Registry() })
  t.teardown(async () => {
    await ingest.stop(Date.now() + 5_000)
    await sim.close()
  })
  return { sim, ingest, config, topic, logs }
}

const subscribed = (sim: FinnhubSimulator): string => JSON.stringify(sim.subscriptions())

t.test('the socket subscribes exactly the static plus the discovered symbols, and their trades reach Kafka', async t => {
  const { sim, ingest, topic } = await harness(t, { include: ['USDT$'], exclude: ['DOGE'], maxSymbols: 4 })
  const expected = ['AAPL', 'BINANCE:ADAUSDT', 'BINANCE:AVAXUSDT', 'BINANCE:BNBUSDT']
  t.ok(await waitFor(() => subscribed(sim) === JSON.stringify([expected]), 20_000), `subscribed ${subscribed(sim)}`)
  t.equal(sim.stats().connections.total, 1, 'one connection: discovery changed the subscription in place')
  t.equal(ingest.counters.subscribedSymbols, 4)
  t.equal(ingest.counters.discovery.symbols, 3)
  t.same([...ingest.client.symbols].sort(), expected)
  t.ok(await waitFor(() => ingest.counters.delivered > 400, 30_000))
  const messages = await readTopic(kafkaBootstrap, topic, { expect: 400, settleMs: 200 })
  const seen = new Set(messages.map(m => String(m.key)))
  for (const s of expected) t.ok(seen.has(s), `${s} trades are in the topic`)
  t.equal(seen.size, 4, 'and no other symbol')
})

t.test('a later result and a reload are applied live as subscribe/unsubscribe diffs', async t => {
  const { sim, ingest, config, logs } = await harness(t, { include: ['USDT$'], maxSymbols: 3 }, ['AAPL'])
  t.ok(await waitFor(() => subscribed(sim) === JSON.stringify([['AAPL', 'BINANCE:ADAUSDT', 'BINANCE:AVAXUSDT']]), 20_000), subscribed(sim))
  // ADA is delisted; SIGHUP with the same file runs discovery again.
  sim.setQuote('BINANCE:ADAUSDT', 0)
  const unsubscribes = sim.stats().unsubscribeCount
  ingest.applyConfig(config)
  t.ok(await waitFor(() => subscribed(sim) === JSON.stringify([['AAPL', 'BINANCE:AVAXUSDT', 'BINANCE:BNBUSDT']]), 20_000), `after the re-run: ${subscribed(sim)}`)
  t.equal(sim.stats().unsubscribeCount, unsubscribes + 1, 'one unsubscribe')
  t.ok(logs.some(l => l['msg'] === 'subscriptions changed by symbol discovery' && JSON.stringify(l['unsubscribed']) === '["BINANCE:ADAUSDT"]'))

  // A reload that raises the cap and adds a static symbol.
  const raised = validateConfig({ ...structuredClone(config), finnhub: { ...structuredClone(config.finnhub), symbols: ['AAPL', 'MSFT'], discovery: { ...config.finnhub.discovery, maxSymbols: 5 } } })
  ingest.applyConfig(raised)
  t.ok(await waitFor(() => subscribed(sim) === JSON.stringify([['AAPL', 'BINANCE:AVAXUSDT', 'BINANCE:BNBUSDT', 'BINANCE:BTCUSDT', 'MSFT']]), 20_000), `after the reload: ${subscribed(sim)}`)

  // Discovery turned off: only the static symbols stay.
  const off = validateConfig({ ...structuredClone(config), finnhub: { ...structuredClone(config.finnhub), symbols: ['AAPL', 'MSFT'], discovery: { ...config.finnhub.discovery, enabled: false } } })
  ingest.applyConfig(off)
  t.equal(ingest.discovery, null)
  t.ok(await waitFor(() => subscribed(sim) === JSON.stringify([['AAPL', 'MSFT']]), 10_000), `discovery off: ${subscribed(sim)}`)
  t.equal(sim.stats().connections.total, 1, 'all on the one connection')
})

t.test('discovery never holds back the static symbols: they stream while the REST API fails', async t => {
  const { sim, ingest } = await harness(t, { include: ['^BINANCE:ETHUSDT$'], maxSymbols: 5 }, ['AAPL'], { maxAttempts: 2 })
  sim.failRestFor(500, 60_000)
  t.ok(await waitFor(() => ingest.counters.delivered > 200, 30_000), 'static trades delivered')
  t.equal(ingest.counters.discovery.runs.ok, 0, 'while discovery has not succeeded')
  t.ok(await waitFor(() => ingest.counters.discovery.runs.failed >= 1, 20_000), 'discovery failed meanwhile')
  t.same(sim.subscriptions(), [['AAPL']])
  sim.failRestFor(500, 0)
  t.ok(await waitFor(() => subscribed(sim) === JSON.stringify([['AAPL', 'BINANCE:ETHUSDT']]), 20_000), 'the next try, after failureRetryMs, subscribes the discovered symbol')
})
