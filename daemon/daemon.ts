// The long-running daemon: builds the metrics registry, starts the requested roles
// and the HTTP endpoint, tells systemd where it is, and is the one owner of the
// process's signals (worker threads never see them):
//   SIGHUP          reload the config file: validate it in full first; on success
//                   apply what can change live (symbols, log level, batch and commit
//                   settings, the Finnhub endpoint) and name what needs a restart;
//                   on failure keep running on the old config and say why.
//   SIGTERM/SIGINT  drain in order within shutdown.drainTimeoutMs: stop reading the
//                   socket, flush the producer, store what it produced, finish the
//                   in-flight batches, commit, close the pool and the clients.
//   a second one    exit at once (130), saying what was abandoned.
// Exit codes: 0 drained; 3 the stop budget ran out and work was abandoned; 70 an
// uncaught exception or unhandled rejection (installFatalHandler); 130 a second signal.
// Every forced exit (a second signal, the hard stop timer, a signal during the start,
// a fatal error) goes through hardExit: process.exit can hang for good in Node's
// teardown on a native close that never returns (see daemon/systemd/notify.ts).

import type { Registry } from 'prom-client'
import { describeChange, diffConfig, effectiveConfig } from './config/reload.js'
import type { Config } from './config/schema.js'
import { startHttp, type DaemonHttp } from './http.js'
import type { Readiness } from './readiness.js'
import { startIngest, type Ingest } from './ingest.js'
import { startShedding, type Shedder } from './overload.js'
import { kafkaCheck } from './kafka/admin.js'
import { createLogger, type Logger } from './log.js'
import { StageLatency } from './metrics/latency.js'
import { createRegistry } from './metrics/registry.js'
import { startProcess, type ProcessRole } from './process.js'
import { EXIT_SECOND_SIGNAL, handleSignals, type SignalSource } from './signals.js'
import { startStatusLine } from './status-line.js'
import { hardExit, type SystemdNotifier } from './systemd/notify.js'
import { waitUntil } from './wait.js'

export type Role = 'ingest' | 'process'

export const EXIT_OK = 0
export const EXIT_BUDGET = 3
export { EXIT_SECOND_SIGNAL }
/** EX_SOFTWARE (sysexits.h): an internal error, distinct from 1 (a configuration or dependency problem). */
export const EXIT_FATAL = 70
/** How long the fatal handler lets the producer deliver what it holds before it exits. */
export const FATAL_FLUSH_MS = 2_000
/** After the budget, closing the clients may take this long before the exit is forced. */
const CLOSE_GRACE_MS = 5_000
const STATUS_EVERY_MS = 5_000
const READY_WAIT_FOR_FINNHUB_MS = 15_000

export interface DaemonOptions {
  config: Config
  roles: readonly Role[]
  log?: Logger
  /** Resolves when the daemon should stop (tests and the demo). */
  stopSignal?: Promise<string>
  /** The process, in production: the daemon then owns SIGTERM, SIGINT and SIGHUP. */
  signals?: SignalSource
  /** Re-reads and validates the config file (SIGHUP); throws a FinnhubdError when it is invalid. */
  reload?: () => Config
  notifier?: SystemdNotifier
  /** Serve /healthz, /readyz and /metrics when config.http.enabled (the CLI turns this on). */
  http?: boolean
  exit?: (code: number) => void
}

export interface ReloadResult {
  ok: boolean
  applied: string[]
  needRestart: string[]
  error?: string
}

export interface RunningDaemon {
  ingest: Ingest | null
  process: ProcessRole | null
  latency: StageLatency
  registry: Registry
  log: Logger
  http: DaemonHttp | null
  /** The configuration in force (changes with each successful reload). */
  readonly config: Config
  readiness: () => Readiness
  /** What SIGHUP does; reloads run one at a time, a reload asked for meanwhile runs once after. */
  reload: () => Promise<ReloadResult>
  stop: (reason: string) => Promise<number>
  /** Resolves with the exit code once the daemon stopped. */
  stopped: Promise<number>
}

export async function startDaemon (opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.log ?? createLogger({ level: opts.config.logLevel })
  const exit = opts.exit ?? hardExit
  const notifier = opts.notifier ?? null
  let current = opts.config
  let state: 'starting' | 'running' | 'stopping' | 'stopped' = 'starting'
  const reloads = { applied: 0, unchanged: 0, failed: 0 }

  const startedAt = Date.now()
  const latency = new StageLatency()
  const registry = createRegistry(latency, reloads)

  // Signals are ours from the first moment: a SIGTERM during start must not kill the
  // process half-connected (it stops right after the start).
  let stopRequested: string | null = null
  let stop: (reason: string) => Promise<number> = async reason => { stopRequested ??= reason; return await stopped }
  let reload: () => Promise<ReloadResult> = async () => ({ ok: false, applied: [], needRestart: [], error: 'the daemon is still starting' })
  let force: (why: string, code: number) => void = (why, code) => {
    log.error(`${why}: exiting before the daemon finished starting`, { exitCode: code })
    exit(code)
  }
  let resolveStopped!: (code: number) => void
  const stopped = new Promise<number>(resolve => { resolveStopped = resolve })
  const releaseSignals = opts.signals === undefined
    ? () => {}
    : handleSignals(opts.signals, {
      stop: signal => {
        // A stop already asked for (the stop promise) makes this signal the second one.
        if (stopRequested !== null || state === 'stopping') force(`a second ${signal} while stopping`, EXIT_SECOND_SIGNAL)
        else stop(signal).catch(err => { log.error('shutdown failed', { err }) })
      },
      force: signal => force(`a second ${signal} while stopping`, EXIT_SECOND_SIGNAL),
      reload: () => { reload().catch(err => { log.error('reload failed', { err }) }) }
    })

  let processRole: ProcessRole | null = null
  let ingest: Ingest | null = null
  let shedder: Shedder | null = null
  let http: DaemonHttp | null = null
  try {
    notifier?.status('connecting to Kafka and Cassandra')
    // The processor first: it is ready to drain the topic before trades flow into it.
    processRole = opts.roles.includes('process') ? await startProcess(current, { log, registry, latency }) : null
    ingest = opts.roles.includes('ingest') ? await startIngest(current, { log, registry, latency, shed: () => shedder?.drop ?? null }) : null
    if (ingest !== null && processRole !== null) shedder = startShedding(() => current, ingest.counters, processRole.counters, log.child({ component: 'overload' }))
    if (ingest !== null) liveProducers.add(ingest.producer)
    if (opts.http === true && current.http.enabled) {
      const { WebConsole } = await import('./console/console.js')
      const started = ingest
      const proc = processRole
      const webConsole = current.http.console.enabled
        ? new WebConsole({
          config: () => current,
          token: current.http.console.token,
          startedAt,
          roles: opts.roles,
          ingest: started === null ? null : { counters: started.counters, symbols: () => started.client.symbols },
          process: proc === null ? null : { counters: proc.counters, cassandra: proc.cassandra },
          latency,
          readiness: () => readiness(),
          log: log.child({ component: 'console' })
        })
        : null
      http = await startHttp({ host: current.http.host, port: current.http.port, registry, latency, readiness: () => readiness(), log: log.child({ component: 'http' }), console: webConsole })
    }
  } catch (err) {
    releaseSignals()
    shedder?.stop()
    if (ingest !== null) liveProducers.delete(ingest.producer)
    await ingest?.stop(Date.now() + 5_000)
    await processRole?.stop(Date.now() + 5_000)
    throw err
  }

  const readiness = (): Readiness => {
    const checks: Readiness['checks'] = { daemon: { ok: state === 'running', detail: state } }
    if (ingest !== null) {
      checks['finnhub'] = { ok: ingest.client.connected, detail: ingest.client.state }
      checks['kafka_producer'] = kafkaCheck(ingest.producer.connected, ingest.producer.brokers)
    }
    if (processRole !== null) {
      checks['kafka_consumer'] = kafkaCheck(processRole.consumer.connected, processRole.consumer.brokers)
      const up = processRole.counters.cassandraUp === 1
      checks['cassandra'] = { ok: up, detail: up ? 'last request succeeded' : 'last request failed' }
    }
    return { ready: Object.values(checks).every(c => c.ok), checks }
  }

  const abandoned = (): Record<string, unknown> => ({
    // Lost: trades accepted from Finnhub that Kafka never acknowledged.
    unacknowledgedTrades: ingest?.producer.inFlight ?? 0,
    // Not lost: their offsets are not committed, so they are read again after the restart.
    batchesInFlight: processRole?.consumer.inFlightBatches ?? 0,
    recordsInFlight: processRole?.counters.inFlightRecords ?? 0
  })

  let forced = false
  force = (why, code) => {
    if (forced) return
    forced = true
    log.error(`${why}: exiting now without finishing the drain`, { exitCode: code, phase, ...abandoned() })
    exit(code)
  }

  let phase = 'running'
  let stopping: Promise<number> | null = null
  let stopStatus = (): void => {}
  stop = async (reason: string): Promise<number> => {
    stopping ??= (async () => {
      state = 'stopping'
      stopStatus()
      shedder?.stop()
      const budgetMs = current.shutdown.drainTimeoutMs
      const deadline = Date.now() + budgetMs
      const hardStop = setTimeout(() => force(`the stop budget (shutdown.drainTimeoutMs = ${budgetMs} ms) ran out`, EXIT_BUDGET), budgetMs + CLOSE_GRACE_MS)
      hardStop.unref()
      notifier?.stopping(`draining (${reason}), up to ${Math.round(budgetMs / 1000)} s`)
      log.info('stopping', { reason, budgetMs })
      let unread = 0
      let abandonedBatches = 0
      phase = 'closing the Finnhub socket and flushing the producer'
      await ingest?.stop(deadline)
      if (ingest !== null) liveProducers.delete(ingest.producer)
      const unflushed = ingest?.producer.inFlight ?? 0
      if (ingest !== null && processRole !== null) {
        phase = 'storing what the producer flushed'
        const drain = await processRole.drainToEnd(deadline)
        unread = drain.unread
        if (!drain.drained) log.warn('the stop budget ran out before every produced trade was stored; the rest stays in Kafka and is stored after the restart', { unread })
      }
      phase = 'finishing in-flight batches, committing, closing the clients'
      if (processRole !== null) abandonedBatches = (await processRole.stop(deadline)).abandonedBatches
      await http?.close()
      clearTimeout(hardStop)
      notifier?.stopWatchdog()
      releaseSignals()
      state = 'stopped'
      const code = unflushed + unread + abandonedBatches > 0 ? EXIT_BUDGET : EXIT_OK
      if (code === EXIT_OK) log.info('stopped', { reason })
      else log.error('stopped with work left over: the stop budget (shutdown.drainTimeoutMs) was too short', { reason, unacknowledgedTrades: unflushed, unread, abandonedBatches })
      resolveStopped(code)
      return code
    })()
    return await stopping
  }

  const isRunning = (): boolean => state === 'running'
  let reloading: Promise<ReloadResult> | null = null
  let reloadAgain = false
  const reloadOnce = (): ReloadResult => {
    if (opts.reload === undefined) {
      log.warn('SIGHUP: this daemon was started without a config file to reload; nothing changes')
      return { ok: false, applied: [], needRestart: [], error: 'no config file' }
    }
    let next: Config
    try {
      next = opts.reload()
    } catch (err) {
      reloads.failed++
      log.error('reload refused: the config file is invalid; still running on the previous configuration', { reason: (err as Error).message })
      return { ok: false, applied: [], needRestart: [], error: (err as Error).message }
    }
    const changes = diffConfig(current, next)
    const applied = changes.filter(c => c.hot)
    const needRestart = changes.filter(c => !c.hot)
    if (changes.length === 0) {
      reloads.unchanged++
      // SIGHUP also asks symbol discovery to run again.
      ingest?.discovery?.reconfigure(current.finnhub)
      log.info('reload: the configuration is unchanged')
      return { ok: true, applied: [], needRestart: [] }
    }
    current = effectiveConfig(current, next, changes)
    log.level = current.logLevel
    const symbols = ingest?.applyConfig(current)
    processRole?.applyConfig(current)
    reloads.applied++
    log.info('configuration reloaded', {
      applied: applied.map(describeChange),
      ...(symbols !== undefined ? { subscribed: symbols.added, unsubscribed: symbols.removed, reconnected: symbols.reconnected } : {})
    })
    if (needRestart.length > 0) {
      log.warn('some changed settings take effect only after a restart (systemctl restart finnhubd); running on their old values meanwhile',
        { needRestart: needRestart.map(describeChange) })
    }
    return { ok: true, applied: applied.map(c => c.path), needRestart: needRestart.map(c => c.path) }
  }
  reload = async (): Promise<ReloadResult> => {
    if (state !== 'running') {
      log.warn('SIGHUP ignored: the daemon is not running', { state })
      return { ok: false, applied: [], needRestart: [], error: `the daemon is ${state}` }
    }
    if (reloading !== null) {
      reloadAgain = true
      return await reloading
    }
    reloading = (async () => {
      let result: ReloadResult
      do {
        reloadAgain = false
        notifier?.reloading('reloading the configuration')
        // Let systemd see RELOADING=1 before READY=1 even when the reload is instant.
        await new Promise(resolve => setImmediate(resolve))
        result = reloadOnce()
        notifier?.ready(result.ok ? 'configuration reloaded' : 'reload refused; running on the previous configuration')
      } while (reloadAgain && isRunning())
      reloading = null
      return result
    })()
    return await reloading
  }

  // Kafka and Cassandra are connected; give the first Finnhub handshake a moment so
  // READY=1 means data can flow (a Finnhub that stays away shows in /readyz and STATUS=).
  const announceReady = async (): Promise<void> => {
    if (ingest !== null) await waitUntil(() => ingest?.client.connected === true || !isRunning(), Date.now() + READY_WAIT_FOR_FINNHUB_MS)
    if (!isRunning()) return
    notifier?.ready(ingest === null || ingest.client.connected ? 'running' : 'running; waiting for Finnhub')
    notifier?.startWatchdog(() => !forced)
    if (notifier?.enabled !== true) return
    stopStatus = startStatusLine({ ingest: ingest?.counters ?? null, process: processRole?.counters ?? null, p99Ms: () => latency.quantileMs('end_to_end', 0.99) },
      STATUS_EVERY_MS, line => notifier.status(line))
  }

  state = 'running'
  opts.stopSignal?.then(s => stop(s)).catch(err => { log.error('shutdown failed', { err }) })
  if (stopRequested !== null) {
    stop(stopRequested).catch(err => { log.error('shutdown failed', { err }) })
  } else {
    announceReady().catch(err => { log.error('could not notify systemd', { err }) })
  }

  return {
    ingest,
    process: processRole,
    latency,
    registry,
    log,
    http,
    get config () { return current },
    readiness,
    reload: async () => await reload(),
    stop: async reason => await stop(reason),
    stopped
  }
}

/**
 * The producers of the ingest roles that run in this process (added once started,
 * removed once stopped): what the fatal handler flushes, whichever command (run,
 * ingest, demo) started the daemon.
 */
const liveProducers = new Set<Pick<Ingest['producer'], 'flush'>>()

/** Flushes every running ingest role's producer, each within timeoutMs. */
export async function flushLiveProducers (timeoutMs: number): Promise<void> {
  await Promise.allSettled([...liveProducers].map(async p => await p.flush(timeoutMs)))
}

export interface FatalHandlerOptions {
  log: Logger
  /** Delivers what the producers hold, within the bound; default flushLiveProducers. */
  flush?: (timeoutMs: number) => Promise<void>
  /** Default hardExit: an uncaught error may well be a hung native call's neighbour. */
  exit?: (code: number) => void
  flushMs?: number
}

/**
 * The last resort for an error nothing caught: one fatal line (name, message, code,
 * stack), a flush of the producers bounded by flushMs (trades Finnhub already sent
 * would otherwise be lost), then exit 70. The process's state is unknown by then:
 * no drain, no commit (what was not committed is read again after the restart). A
 * second fatal error meanwhile exits at once.
 */
export function fatalHandler (opts: FatalHandlerOptions): (err: unknown, origin: string) => void {
  const flush = opts.flush ?? flushLiveProducers
  const exit = opts.exit ?? hardExit
  const flushMs = opts.flushMs ?? FATAL_FLUSH_MS
  let exiting = false
  let exited = false
  let bound: NodeJS.Timeout | undefined
  const exitOnce = (): void => {
    if (exited) return
    exited = true
    clearTimeout(bound)
    exit(EXIT_FATAL)
  }
  return (err, origin) => {
    const e = err instanceof Error ? err : null
    const fields = {
      origin,
      errName: e?.name ?? typeof err,
      errMessage: e?.message ?? String(err),
      ...((e as { code?: unknown } | null)?.code !== undefined ? { errCode: (e as { code?: unknown }).code } : {}),
      ...(e?.stack !== undefined ? { stack: e.stack } : {}),
      exitCode: EXIT_FATAL
    }
    if (exiting) {
      opts.log.fatal('another uncaught error while exiting: exiting now', fields)
      exitOnce()
      return
    }
    exiting = true
    opts.log.fatal(`${origin === 'unhandledRejection' ? 'an unhandled promise rejection' : 'an uncaught exception'}: a bug in finnhubd or a library; ` +
      `flushing the Kafka producer (up to ${flushMs} ms) and exiting. Report this line; systemd restarts the daemon`, fields)
    // Should the loop end first, the exit code is still ours.
    process.exitCode = EXIT_FATAL
    // The flush gets its own timeout too; this one holds even when it never settles.
    bound = setTimeout(exitOnce, flushMs + 500)
    flush(flushMs).then(exitOnce, exitOnce)
  }
}

/** Installs fatalHandler on the process (or `source`); returns the uninstaller. */
export function installFatalHandler (opts: FatalHandlerOptions & { source?: Pick<NodeJS.EventEmitter, 'on' | 'off'> }): () => void {
  const source = opts.source ?? process
  const handle = fatalHandler(opts)
  const onException = (err: unknown, origin: unknown): void => handle(err, typeof origin === 'string' ? origin : 'uncaughtException')
  const onRejection = (reason: unknown): void => handle(reason, 'unhandledRejection')
  source.on('uncaughtException', onException)
  source.on('unhandledRejection', onRejection)
  return () => {
    source.off('uncaughtException', onException)
    source.off('unhandledRejection', onRejection)
  }
}
