// The daemon as the one owner of its signals, in-process (a stand-in emitter takes
// the process's place, so the test runner's own signals are never touched), on the
// real stack and the real simulator: SIGHUP reloads (valid, invalid, restart-only,
// a storm), SIGTERM drains everything received into Cassandra and resolves 0, a
// second signal forces the exit, and a stop budget that runs out is reported.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { startDaemon, EXIT_BUDGET, EXIT_SECOND_SIGNAL } from '../../daemon/daemon.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { cassandraClient, expectedTradeIds, pipelineConfig, readTrades } from '../fixtures/pipeline.js'
import { waitFor } from '../fixtures/kafka.js'
import { produceValues, encodeTrades, syntheticTrades } from '../fixtures/pipeline.js'

t.setTimeout(240_000)

type Line = Record<string, unknown>

function capture (): { lines: Line[], log: ReturnType<typeof createLogger> } {
  const lines: Line[] = []
  return { lines, log: createLogger({ level: 'info', write: l => lines.push(JSON.parse(l) as Line) }) }
}

function withOverrides (config: Config, patch: Record<string, Record<string, unknown> | string>): Config {
  const raw = JSON.parse(JSON.stringify(config)) as Record<string, unknown>
  for (const [k, v] of Object.entries(patch)) raw[k] = typeof v === 'string' ? v : { ...(raw[k] as object), ...v }
  return validateConfig(raw)
}

t.test('SIGHUP reloads; SIGTERM stores every received trade and resolves 0; a second signal forces the exit', async t => {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 1500, seed: 11, keepSent: true })
  await sim.start()
  t.teardown(() => sim.close())
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: ['AAPL', 'MSFT'] } })
  const { lines, log } = capture()
  const signals = new EventEmitter()
  const exits: number[] = []
  let fileConfig: Config | Error = config
  const daemon = await startDaemon({
    config,
    roles: ['ingest', 'process'],
    log,
    signals,
    reload: () => { if (fileConfig instanceof Error) throw fileConfig; return fileConfig },
    exit: code => exits.push(code)
  })
  t.ok(await waitFor(() => daemon.process !== null && daemon.process.counters.rowsWritten > 500, 60_000), 'trades flow into Cassandra')
  t.same(sim.subscriptions(), [['AAPL', 'MSFT']])
  const metrics = await daemon.registry.metrics()
  t.match(metrics, /^finnhubd_worker_threads 1$/m, 'the worker pool is exported')
  t.match(metrics, /^finnhubd_worker_pool_utilization [\d.e-]+$/m)
  t.match(metrics, /^finnhubd_kafka_producer_queue_messages \d+$/m, 'and the producer queue')
  t.match(metrics, /^finnhubd_config_reloads_total\{result="applied"\} 0$/m)
  t.match(daemon.readiness(), { ready: true, checks: { finnhub: { ok: true }, kafka_producer: { ok: true }, kafka_consumer: { ok: true }, cassandra: { ok: true } } })

  // A valid change: symbols as a diff on the live socket, the log level, a batch size.
  fileConfig = withOverrides(config, { logLevel: 'debug', finnhub: { symbols: ['AAPL', 'TSLA'] }, workers: { batchSize: 200 } })
  signals.emit('SIGHUP', 'SIGHUP')
  t.ok(await waitFor(() => lines.some(l => l['msg'] === 'configuration reloaded')), 'reloaded')
  t.ok(await waitFor(() => JSON.stringify(sim.subscriptions()) === '[["AAPL","TSLA"]]'), 'MSFT unsubscribed, TSLA subscribed on the same connection')
  t.equal(sim.stats().connections.total, 1, 'no reconnect for a symbol change')
  t.equal(daemon.log.level, 'debug')
  t.equal(daemon.config.workers.batchSize, 200)
  t.match(lines.find(l => l['msg'] === 'configuration reloaded'), { subscribed: ['TSLA'], unsubscribed: ['MSFT'] })
  t.ok(await waitFor(() => lines.some(l => l['level'] === 'debug')), 'debug lines appear')

  // An invalid file: the old configuration stays, the reason is logged.
  fileConfig = new FinnhubdError('FINNHUBD_ERR_CONFIG', 'invalid configuration (f.yaml):\n  - workers.batchSize: Too small: expected number to be >0, got -1')
  const refused = await daemon.reload()
  t.match(refused, { ok: false, error: /workers\.batchSize/ })
  t.match(lines.find(l => l['msg'] === 'reload refused: the config file is invalid; still running on the previous configuration'), { reason: /workers\.batchSize/ })
  t.equal(daemon.config.workers.batchSize, 200, 'still the previous configuration')

  // A restart-only change is named, not applied.
  const lingerFile = withOverrides(daemon.config, { kafka: { lingerMs: 40 } })
  fileConfig = lingerFile
  const partial = await daemon.reload()
  t.same(partial, { ok: true, applied: [], needRestart: ['kafka.lingerMs'] })
  t.match(lines.find(l => /take effect only after a restart/.test(String(l['msg']))), { needRestart: [{ key: 'kafka.lingerMs', from: config.kafka.lingerMs, to: 40 }] })
  t.equal(daemon.config.kafka.lingerMs, config.kafka.lingerMs)

  // A storm: reloads queue up into at most one more run; nothing dies.
  fileConfig = withOverrides(lingerFile, { logLevel: 'info' })
  for (let i = 0; i < 50; i++) signals.emit('SIGHUP', 'SIGHUP')
  t.ok(await waitFor(() => daemon.log.level === 'info'), 'the storm ends with the last file applied')
  const afterStorm = await daemon.reload()
  t.same(afterStorm, { ok: true, applied: [], needRestart: ['kafka.lingerMs'] })
  t.same(exits, [], 'no reload ever exits')

  // SIGTERM under load, then a second signal while draining.
  signals.emit('SIGTERM', 'SIGTERM')
  signals.emit('SIGINT', 'SIGINT')
  t.same(exits, [EXIT_SECOND_SIGNAL], 'the second signal forces the exit')
  t.match(lines.find(l => /a second SIGINT while stopping: exiting now/.test(String(l['msg']))), { exitCode: 130, unacknowledgedTrades: Number, batchesInFlight: Number })
  t.equal(await daemon.stopped, 0, 'the drain itself (the exit is a stand-in here) completes with 0')
  const rejected = await daemon.reload()
  t.match(rejected, { ok: false, error: 'the daemon is stopped' }, 'no reload once stopped')

  const received = daemon.ingest?.counters.tradesReceived ?? 0
  const sent = sim.sent().filter(s => s.s === 'AAPL' || s.s === 'MSFT' || s.s === 'TSLA')
  const expected = expectedTradeIds(sent)
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const stored = await readTrades(client, config, ['AAPL', 'MSFT', 'TSLA'], sent.map(s => s.t))
  const ids = new Set(stored.map(s => s.trade_id))
  t.ok(received > 1000, `trades were flowing at the signal (${received} received)`)
  t.equal(ids.size, received, 'every trade received before SIGTERM is in Cassandra after it')
  t.equal(stored.length, ids.size, 'once each')
  t.equal([...ids].filter(id => !expected.has(id)).length, 0, 'and each is a trade the simulator sent')
})

t.test('a stop budget that runs out: exit code 3 and a line saying what was left', async t => {
  const config = await pipelineConfig({ shutdown: { drainTimeoutMs: 1500 } })
  const { lines, log } = capture()
  const daemon = await startDaemon({ config, roles: ['process'], log })
  t.teardown(() => daemon.stop('teardown'))
  // Cassandra refuses every write from now on (the table is gone): batches stay in flight.
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  await client.execute(`DROP TABLE ${config.cassandra.keyspace}.${config.cassandra.tradesTable}`)
  await produceValues(config.kafka.bootstrapServers.join(','), config.kafka.topic, encodeTrades(syntheticTrades(200)))
  t.ok(await waitFor(() => (daemon.process?.consumer.inFlightBatches ?? 0) > 0, 30_000), 'a batch is stuck on its writes')
  const code = await daemon.stop('test')
  t.equal(code, EXIT_BUDGET)
  t.match(lines.find(l => /stopped with work left over/.test(String(l['msg']))), { abandonedBatches: Number })
  t.ok(((lines.find(l => /stopped with work left over/.test(String(l['msg']))) ?? {})['abandonedBatches'] as number) > 0)
})

t.test('a SIGTERM that arrives while the daemon starts stops it right after the start', async t => {
  const config = await pipelineConfig()
  const signals = new EventEmitter()
  const { lines, log } = capture()
  const starting = startDaemon({ config, roles: ['process'], log, signals })
  signals.emit('SIGTERM', 'SIGTERM')
  const daemon = await starting
  t.equal(await daemon.stopped, 0)
  t.match(lines.find(l => l['msg'] === 'stopping'), { reason: 'SIGTERM' })
  t.equal(signals.listenerCount('SIGTERM'), 0, 'signal handlers are released once stopped')
  t.equal(signals.listenerCount('SIGHUP'), 0)
})

t.test('SIGHUP without a config file to reload is logged and changes nothing', async t => {
  const config = await pipelineConfig()
  const signals = new EventEmitter()
  const { lines, log } = capture()
  const daemon = await startDaemon({ config, roles: ['process'], log, signals })
  signals.emit('SIGHUP', 'SIGHUP')
  t.ok(await waitFor(() => lines.some(l => /started without a config file to reload/.test(String(l['msg'])))))
  t.equal(await daemon.stop('test'), 0)
})
