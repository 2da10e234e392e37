// The daemon around the ingest role: metrics in the registry, one shutdown owner,
// `finnhubd ingest` through the CLI, and the signal handling.
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import { main } from '../../daemon/cli.js'
import { startDaemon } from '../../daemon/daemon.js'
import { firstStopSignal as processSignals } from '../../daemon/signals.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { metricSum } from '../../tools/verify/prom-text.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, readTopic, uniqueName, waitFor } from '../fixtures/kafka.js'

t.setTimeout(120_000)

const { kafkaBootstrap } = testEndpoints()

async function simulator (t: Test): Promise<FinnhubSimulator> {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 2000, seed: 5 })
  await sim.start()
  t.teardown(() => sim.close())
  return sim
}

t.test('the registry exports the ingest metrics; stop drains and says so', async t => {
  const sim = await simulator(t)
  const topic = uniqueName('finnhubd-daemon-test')
  await createTopic(kafkaBootstrap, topic)
  const config = validateConfig({
    finnhub: { url: sim.url, token: 'tok', symbols: ['AAPL', 'MSFT'] },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, statsIntervalMs: 100 }
  })
  const lines: Array<Record<string, unknown>> = []
  let stop!: (reason: string) => void
  const daemon = await startDaemon({
    config,
    roles: ['ingest'],
    log: createLogger({ level: 'info', write: l => lines.push(JSON.parse(l) as Record<string, unknown>) }),
    stopSignal: new Promise(resolve => { stop = resolve })
  })
  const ingest = daemon.ingest
  if (ingest === null) throw new Error('no ingest role')
  t.ok(await waitFor(() => ingest.counters.delivered > 200), 'trades flow')
  sim.sendRaw('{"type":"trade","data":[{"s":"AAPL","p":-1,"t":1,"v":1}]}')
  sim.sendRaw('not json')
  t.ok(await waitFor(() => ingest.counters.malformed.invalid_json === 1 && ingest.counters.tradesRejected.bad_price === 1))
  const text = await daemon.registry.metrics()
  t.ok(metricSum(text, 'finnhubd_trades_received_total') > 200, 'received trades')
  t.ok(metricSum(text, 'finnhubd_kafka_produced_total') > 200, 'produced records')
  t.ok(metricSum(text, 'finnhubd_kafka_delivered_total') > 0, 'acknowledged records')
  t.equal(metricSum(text, 'finnhubd_ws_connected'), 1)
  t.equal(metricSum(text, 'finnhubd_ws_malformed_frames_total', { reason: 'invalid_json' }), 1)
  t.equal(metricSum(text, 'finnhubd_trades_rejected_total', { reason: 'bad_price' }), 1)
  t.equal(metricSum(text, 'finnhubd_kafka_dropped_total', { reason: 'queue_full' }), 0)
  t.ok(metricSum(text, 'finnhubd_ws_frames_total', { kind: 'trade' }) > 0)
  t.match(text, /finnhubd_process_resident_memory_bytes/, 'process metrics too')
  t.ok(metricSum(text, 'finnhubd_kafka_in_flight') >= 0)

  sim.pause()
  // Frames still in the socket when the client closes are never read (Finnhub has no
  // replay): let what was sent arrive first, then stop.
  t.ok(await waitFor(() => ingest.counters.tradesReceived === sim.stats().tradesSent), 'everything sent was received')
  stop('test')
  await daemon.stopped
  await daemon.stop('again')
  t.ok(lines.some(l => l['msg'] === 'stopping' && l['reason'] === 'test'))
  const stopped = lines.find(l => l['msg'] === 'ingest stopped')
  t.ok(stopped, 'the drain is logged')
  const sent = sim.stats().tradesSent
  t.equal(ingest.counters.delivered, sent, 'every trade sent was acknowledged before the stop completed')
  t.equal((await readTopic(kafkaBootstrap, topic, { expect: sent })).length, sent)
})

t.test('`finnhubd ingest` runs until its stop signal and exits 0', async t => {
  const sim = await simulator(t)
  const topic = uniqueName('finnhubd-cli-test')
  await createTopic(kafkaBootstrap, topic)
  const out: string[] = []
  let stop!: (reason: string) => void
  const running = main(['ingest'], {
    env: { FINNHUB_URL: sim.url, FINNHUB_TOKEN: 'tok', FINNHUB_SYMBOLS: 'AAPL', KAFKA_BOOTSTRAP_SERVERS: kafkaBootstrap, KAFKA_TOPIC: topic, FINNHUBD_LOG_LEVEL: 'warn' },
    out: l => out.push(l),
    err: l => out.push(l),
    signals: async () => await new Promise(resolve => { stop = resolve })
  })
  t.ok(await waitFor(() => sim.stats().tradesSent > 100 && stop !== undefined), 'the CLI ingests')
  stop('SIGTERM')
  t.equal(await running, 0)
  const file = join(t.testdir({ 'c.yaml': 'kafka:\n  connectTimeoutMs: 2000\n' }), 'c.yaml')
  const bad = await main(['--config', file, 'ingest'], { env: { KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1', FINNHUBD_LOG_LEVEL: 'fatal' }, out: () => {}, err: l => out.push(l) })
  t.equal(bad, 1, 'an unreachable Kafka is a clean failure')
  t.match(out.join('\n'), /cannot reach Kafka at 127\.0\.0\.1:1 .*npm run stack -- up.*FINNHUBD_ERR_KAFKA_UNREACHABLE/)
})

t.test('the first SIGTERM asks for a drain; a second one exits at once', async t => {
  const lines: string[] = []
  const exits: number[] = []
  const signals = new EventEmitter()
  const signalled = processSignals(createLogger({ level: 'info', write: l => lines.push(l) }), code => exits.push(code), signals)
  signals.emit('SIGTERM', 'SIGTERM')
  t.equal(await signalled, 'SIGTERM')
  t.same(exits, [])
  signals.emit('SIGINT', 'SIGINT')
  t.same(exits, [130])
  t.match(lines.join(), /a second signal while stopping/)
})
