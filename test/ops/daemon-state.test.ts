// The daemon's state machine (daemon/daemon.ts) against in-process fakes of its two
// roles: no Kafka, no Cassandra, no Finnhub. What the states allow (a reload only
// when running, one asked for meanwhile coalesced; a stop asked for while starting
// run right after the start), what a signal does in each state, the order of the
// drain, the exit codes, and what a failed start leaves behind. The same paths on the
// real stack are in test/ops/daemon-signals.test.ts and test/ops/forced-exit.test.ts.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { Daemon, EXIT_BUDGET, EXIT_SECOND_SIGNAL, EXIT_START_FAILED, startDaemon, type DaemonOptions, type RoleStarters } from '../../daemon/daemon.js'
import type { Ingest } from '../../daemon/ingest.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import type { ProcessRole } from '../../daemon/process.js'

type Line = Record<string, unknown>

interface Gate { promise: Promise<void>, open: () => void }
function gate (): Gate {
  let open!: () => void
  const promise = new Promise<void>(resolve => { open = resolve })
  return { promise, open }
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

interface Fakes {
  calls: string[]
  lines: Line[]
  exits: number[]
  signals: EventEmitter
  /** What the fake roles report and how long their steps take; change before the step. */
  ctl: {
    processStarted: Gate | null
    ingestStart: () => Promise<void>
    drain: () => Promise<{ drained: boolean, unread: number }>
    inFlight: number
    applied: Config[]
  }
  opts: (extra?: Partial<DaemonOptions>) => DaemonOptions
}

function fakes (config: Config = validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] } })): Fakes {
  const calls: string[] = []
  const lines: Line[] = []
  const exits: number[] = []
  const signals = new EventEmitter()
  const ctl: Fakes['ctl'] = {
    processStarted: null,
    ingestStart: async () => {},
    drain: async () => ({ drained: true, unread: 0 }),
    inFlight: 0,
    applied: []
  }
  const starters: RoleStarters = {
    process: async () => {
      calls.push('process.start')
      await ctl.processStarted?.promise
      const role = {
        consumer: { connected: true, brokers: null, inFlightBatches: 0 },
        // One Cassandra host, up, in the configured data center: writes at the default level are possible.
        cassandra: { hosts: new Map([['127.0.0.1:9042', { address: '127.0.0.1:9042', isUp: () => true, datacenter: 'datacenter1', rack: 'rack1' }]]) },
        counters: createProcessCounters(),
        applyConfig: (next: Config) => { ctl.applied.push(next); calls.push('process.applyConfig') },
        drainToEnd: async () => { calls.push('process.drainToEnd'); return await ctl.drain() },
        stop: async () => { calls.push('process.stop'); return { abandonedBatches: 0 } }
      }
      role.counters.cassandraUp = 1
      return role as unknown as ProcessRole
    },
    ingest: async () => {
      calls.push('ingest.start')
      await ctl.ingestStart()
      const role = {
        client: { connected: true, state: 'open', symbols: ['AAPL'] },
        producer: { connected: true, brokers: null, get inFlight () { return ctl.inFlight }, flush: async () => {} },
        counters: createIngestCounters(),
        discovery: null,
        applyConfig: () => { calls.push('ingest.applyConfig'); return { added: [], removed: [], reconnected: false } },
        stop: async () => { calls.push('ingest.stop') }
      }
      return role as unknown as Ingest
    }
  }
  return {
    calls,
    lines,
    exits,
    signals,
    ctl,
    opts: extra => ({
      config,
      roles: ['ingest', 'process'],
      log: createLogger({ level: 'info', write: l => lines.push(JSON.parse(l) as Line) }),
      signals,
      exit: code => { exits.push(code) },
      starters,
      ...extra
    })
  }
}

const msgs = (lines: Line[]): string[] => lines.map(l => String(l['msg']))

t.test('starting → running → stopping → stopped: the drain in order, exit 0, signals released', async t => {
  const f = fakes()
  f.ctl.processStarted = gate()
  const starting = startDaemon(f.opts())
  await tick()
  t.same(f.calls, ['process.start'], 'the processor starts first, the ingest only once it is up')
  f.ctl.processStarted.open()
  const daemon = await starting
  t.equal(daemon.state, 'running')
  t.same(daemon.readiness().checks['daemon'], { ok: true, detail: 'running' })
  t.equal(daemon.readiness().ready, true)
  t.equal(await daemon.stop('test'), 0)
  t.equal(daemon.state, 'stopped')
  t.same(f.calls, ['process.start', 'ingest.start', 'ingest.stop', 'process.drainToEnd', 'process.stop'],
    'the socket closes and the producer flushes first, then the topic is stored to its end, then the processor stops')
  t.same(daemon.readiness().checks['daemon'], { ok: false, detail: 'stopped' })
  t.equal(await daemon.stop('again'), 0, 'a second stop returns the same code')
  t.equal(f.calls.filter(c => c === 'process.stop').length, 1, 'and stops nothing twice')
  t.equal(await daemon.stopped, 0)
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) t.equal(f.signals.listenerCount(s), 0, `${s} released`)
  t.same(f.exits, [], 'a drained stop never forces the exit')
})

t.test('while starting: not ready, a reload is refused, a SIGTERM stops right after the start', async t => {
  const f = fakes()
  f.ctl.processStarted = gate()
  const starting = startDaemon(f.opts({ reload: () => { throw new Error('must not be called') } }))
  await tick()
  t.equal(f.signals.listenerCount('SIGTERM'), 1, 'the signals are the daemon\'s from the first moment')
  f.signals.emit('SIGHUP', 'SIGHUP')
  f.signals.emit('SIGTERM', 'SIGTERM')
  await tick()
  t.same(f.calls, ['process.start'], 'nothing stops while the start is under way')
  f.ctl.processStarted.open()
  const daemon = await starting
  t.equal(await daemon.stopped, 0)
  t.match(f.lines.find(l => l['msg'] === 'SIGHUP ignored: the daemon is not running'), { state: 'starting' })
  t.match(f.lines.find(l => l['msg'] === 'stopping'), { reason: 'SIGTERM' })
  t.same(f.calls.slice(-3), ['ingest.stop', 'process.drainToEnd', 'process.stop'])
  t.same(f.exits, [])
})

t.test('two signals while starting force exit 130 before the start finishes', async t => {
  const f = fakes()
  f.ctl.processStarted = gate()
  const starting = startDaemon(f.opts())
  await tick()
  f.signals.emit('SIGINT', 'SIGINT')
  f.signals.emit('SIGINT', 'SIGINT')
  f.signals.emit('SIGTERM', 'SIGTERM')
  t.same(f.exits, [EXIT_SECOND_SIGNAL], 'forced once, however many signals follow')
  t.match(f.lines.find(l => /a second SIGINT while stopping: exiting before the daemon finished starting/.test(String(l['msg']))), { exitCode: 130 })
  f.ctl.processStarted.open()
  await (await starting).stopped
})

t.test('a second signal while draining forces 130 and names what is abandoned', async t => {
  const f = fakes()
  const daemon = await startDaemon(f.opts())
  const drain = gate()
  f.ctl.drain = async () => { await drain.promise; return { drained: true, unread: 0 } }
  f.signals.emit('SIGTERM', 'SIGTERM')
  await tick()
  f.ctl.inFlight = 7
  t.equal(daemon.state, 'stopping')
  t.equal(daemon.readiness().ready, false, 'not ready while stopping')
  f.signals.emit('SIGTERM', 'SIGTERM')
  t.same(f.exits, [EXIT_SECOND_SIGNAL])
  t.match(f.lines.find(l => /a second SIGTERM while stopping: exiting now without finishing the drain/.test(String(l['msg']))),
    { exitCode: 130, phase: 'storing what the producer flushed', unacknowledgedTrades: 7, batchesInFlight: 0 })
  f.ctl.inFlight = 0
  drain.open()
  t.equal(await daemon.stopped, 0)
})

t.test('a signal after a stop asked for by the API is the second one', async t => {
  const f = fakes()
  const daemon = await startDaemon(f.opts())
  const drain = gate()
  f.ctl.drain = async () => { await drain.promise; return { drained: true, unread: 0 } }
  const stopping = daemon.stop('api')
  await tick()
  f.signals.emit('SIGINT', 'SIGINT')
  t.same(f.exits, [EXIT_SECOND_SIGNAL])
  drain.open()
  t.equal(await stopping, 0)
})

t.test('the stop budget: work left over is exit 3 and says what', async t => {
  const f = fakes()
  const daemon = await startDaemon(f.opts())
  f.ctl.drain = async () => ({ drained: false, unread: 5 })
  t.equal(await daemon.stop('test'), EXIT_BUDGET)
  t.match(f.lines.find(l => /stopped with work left over/.test(String(l['msg']))), { unread: 5, unacknowledgedTrades: 0, abandonedBatches: 0 })
  t.ok(msgs(f.lines).some(m => /the stop budget ran out before every produced trade was stored/.test(m)))
})

t.test('reload: running → reloading → running; one asked for meanwhile runs once more after', async t => {
  const base = validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] } })
  const f = fakes(base)
  let reads = 0
  const sizes = [101, 102, 102]
  const daemon = await startDaemon(f.opts({ reload: () => validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] }, logLevel: 'debug', workers: { batchSize: sizes[reads++] } }) }))
  const first = daemon.reload()
  t.equal(daemon.state, 'reloading')
  t.equal(daemon.readiness().ready, true, 'still ready while reloading')
  const second = daemon.reload()
  const third = daemon.reload()
  const results = await Promise.all([first, second, third])
  t.equal(reads, 2, 'three reloads asked for at once read the file twice: the one under way and one more after it')
  t.equal(daemon.state, 'running')
  for (const r of results) t.match(r, { ok: true, needRestart: [] })
  t.same(results[1], results[0], 'each caller gets the result of the last one')
  t.same(results[0].applied, ['workers.batchSize'], 'the last read changed the batch size (the first one the log level too)')
  t.equal(daemon.config.workers.batchSize, 102, 'the last one read is in force')
  t.equal(daemon.log.level, 'debug')
  t.same(f.ctl.applied.map(c => c.workers.batchSize), [101, 102], 'the processor is told of each')
  const again = await daemon.reload()
  t.same(again, { ok: true, applied: [], needRestart: [] }, 'the same file again: unchanged')
  const metrics = await daemon.registry.getSingleMetricAsString('finnhubd_config_reloads_total')
  t.match(metrics, /result="applied"} 2/)
  t.match(metrics, /result="unchanged"} 1/)
  t.equal(await daemon.stop('test'), 0)
  t.match(await daemon.reload(), { ok: false, error: 'the daemon is stopped' }, 'refused once stopped')
})

t.test('an invalid file is refused and the old configuration stays in force; a restart-only change is named', async t => {
  const base = validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] } })
  const f = fakes(base)
  let next: () => Config = () => { throw new FinnhubdError('FINNHUBD_ERR_CONFIG', 'kafka.topic: expected a string') }
  const daemon = await startDaemon(f.opts({ reload: () => next() }))
  f.signals.emit('SIGHUP', 'SIGHUP')
  await tick(); await tick()
  t.equal(daemon.state, 'running')
  t.equal(daemon.config, base, 'the same configuration object in force')
  t.match(f.lines.find(l => /reload refused: the config file is invalid/.test(String(l['msg']))), { reason: 'kafka.topic: expected a string' })
  t.match(await daemon.registry.getSingleMetricAsString('finnhubd_config_reloads_total'), /result="failed"} 1/)
  next = () => validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] }, kafka: { topic: 'other.trades' } })
  const r = await daemon.reload()
  t.same(r, { ok: true, applied: [], needRestart: ['kafka.topic'] })
  t.equal(daemon.config.kafka.topic, base.kafka.topic, 'a restart-only setting keeps its old value until the restart')
  t.ok(msgs(f.lines).some(m => /take effect only after a restart/.test(m)))
  await daemon.stop('test')
})

t.test('a reload whose new credentials do not connect is refused with the reason; the running clients keep the old ones', async t => {
  const base = validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] }, cassandra: { username: 'finnhubd', password: 'old-password-1' } })
  const f = fakes(base)
  const probed: Array<{ password: string | null, changed: readonly string[] }> = []
  let refuse = true
  const next = validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] }, cassandra: { username: 'finnhubd', password: 'new-password-2' }, logLevel: 'debug' })
  const daemon = await startDaemon(f.opts({
    reload: () => next,
    probeConnections: async (c, changed) => {
      probed.push({ password: c.cassandra.password, changed })
      if (refuse) throw new FinnhubdError('FINNHUBD_ERR_CASSANDRA_AUTH', 'Cassandra at 127.0.0.1:19042 refused the credentials of user "finnhubd"')
    }
  }))
  const refused = await daemon.reload()
  t.match(refused, { ok: false, applied: [], error: /refused the credentials/ })
  t.same(probed, [{ password: 'new-password-2', changed: ['cassandra.password'] }], 'the new settings were probed, only the connection keys named')
  t.equal(daemon.config, base, 'nothing applied, not even the hot log level')
  t.same(f.ctl.applied, [], 'the roles were not touched')
  const line = f.lines.find(l => /reload refused: the new connection settings do not connect/.test(String(l['msg'])))
  t.match(line, { changed: ['cassandra.password'], code: 'FINNHUBD_ERR_CASSANDRA_AUTH' })
  t.notOk(JSON.stringify(f.lines).includes('new-password-2') || JSON.stringify(f.lines).includes('old-password-1'), 'no password in any line')
  t.match(await daemon.registry.getSingleMetricAsString('finnhubd_config_reloads_total'), /result="failed"} 1/)
  refuse = false
  const accepted = await daemon.reload()
  t.same(accepted, { ok: true, applied: ['logLevel'], needRestart: ['cassandra.password'] }, 'credentials that connect are taken at the next restart')
  t.equal(daemon.config.cassandra.password, 'old-password-1', 'the running clients keep the old ones')
  await daemon.stop('test')
})

t.test('a stop during a reload wins: the reload applies nothing, the daemon stops', async t => {
  const f = fakes()
  let reads = 0
  const daemon = await startDaemon(f.opts({ reload: () => { reads++; return validateConfig({ finnhub: { token: 't', symbols: ['AAPL'] }, logLevel: 'debug' }) } }))
  const reloading = daemon.reload()
  const stopping = daemon.stop('test')
  t.match(await reloading, { ok: false, error: /^the daemon is stopp(ing|ed)$/ })
  t.equal(await stopping, 0)
  t.equal(reads, 0, 'the file was not applied after the stop began')
  t.equal(daemon.state, 'stopped')
})

t.test('a failed start closes what started, releases the signals, and a stop asked for meanwhile gets 1', async t => {
  const f = fakes()
  const refused = gate()
  f.ctl.ingestStart = async () => { await refused.promise; throw new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE', 'no broker') }
  const daemon = new Daemon(f.opts())
  const starting = daemon.start()
  await tick()
  const stop = daemon.stop('test')
  f.signals.emit('SIGTERM', 'SIGTERM')
  refused.open()
  await t.rejects(starting, { code: 'FINNHUBD_ERR_KAFKA_UNREACHABLE' })
  t.equal(daemon.state, 'stopped')
  t.same(f.calls, ['process.start', 'ingest.start', 'process.stop'], 'the processor that did start is stopped again')
  t.equal(await stop, EXIT_START_FAILED)
  t.equal(await daemon.stopped, 1)
  t.same(f.exits, [EXIT_SECOND_SIGNAL], 'the SIGTERM after the API stop was the second one')
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) t.equal(f.signals.listenerCount(s), 0, `${s} released`)
  await t.rejects(daemon.start(), /start called twice/)
})
