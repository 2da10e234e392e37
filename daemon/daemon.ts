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
//
// One object owns it all (Daemon), in one of five states:
//
//   starting ──► running ◄──► reloading
//      │            │             │
//      └────────────┴──► stopping ┴──► stopped
//
// A stop asked for while starting (a signal, the stop promise) runs as soon as the
// roles are up; a reload is refused unless running, and one asked for while another
// runs is coalesced into one more after it.

import type { Registry } from 'prom-client'
import { describeChange, diffConfig, effectiveConfig } from './config/reload.js'
import { secretValues } from './config/secrets.js'
import { connectionChanges, probeConnections } from './connections.js'
import type { Config } from './config/schema.js'
import { startHttp, type DaemonHttp } from './http.js'
import type { Readiness } from './readiness.js'
import { startIngest, type Ingest } from './ingest.js'
import { startShedding, type Shedder } from './overload.js'
import { kafkaCheck } from './kafka/admin.js'
import { cassandraCheck, cassandraHosts } from './cassandra/client.js'
import { createLogger, type Logger } from './log.js'
import { StageLatency } from './metrics/latency.js'
import { createRegistry } from './metrics/registry.js'
import { registerNodeMetrics } from './metrics/nodes.js'
import { startProcess, type ProcessRole } from './process.js'
import { EXIT_SECOND_SIGNAL, handleSignals, type SignalSource } from './signals.js'
import { startStatusLine } from './status-line.js'
import { hardExit, type SystemdNotifier } from './systemd/notify.js'
import { waitUntil } from './wait.js'

export type Role = 'ingest' | 'process'

export const EXIT_OK = 0
export const EXIT_BUDGET = 3
/** A role could not start (Kafka, Cassandra or the schema unreachable or refused): 1, a configuration or dependency problem. */
export const EXIT_START_FAILED = 1
export { EXIT_SECOND_SIGNAL }
/** EX_SOFTWARE (sysexits.h): an internal error, distinct from 1 (a configuration or dependency problem). */
export const EXIT_FATAL = 70
/** How long the fatal handler lets the producer deliver what it holds before it exits. */
export const FATAL_FLUSH_MS = 2_000
/** After the budget, closing the clients may take this long before the exit is forced. */
const CLOSE_GRACE_MS = 5_000
const STATUS_EVERY_MS = 5_000
const READY_WAIT_FOR_FINNHUB_MS = 15_000
/** How long a role that failed to start, or the roles after a failed start, may take to close. */
const START_FAILURE_CLOSE_MS = 5_000

export type DaemonState = 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped'

/** The transitions the daemon may take; anything else is a bug, and throws. */
const TRANSITIONS: Readonly<Record<DaemonState, readonly DaemonState[]>> = {
  starting: ['running', 'stopped'],
  running: ['reloading', 'stopping'],
  reloading: ['running', 'stopping'],
  stopping: ['stopped'],
  stopped: []
}

/** How the roles start: the real ones by default; tests pass in-process fakes. */
export interface RoleStarters {
  ingest: typeof startIngest
  process: typeof startProcess
}

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
  starters?: Partial<RoleStarters>
  /**
   * Checks a reload's changed connection settings (credentials, TLS, brokers) with a
   * connection of its own before anything is applied; throws a FinnhubdError when they
   * would not connect. Defaults to a real Kafka and Cassandra probe (daemon/connections.ts).
   */
  probeConnections?: (config: Config, changed: readonly string[]) => Promise<void>
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
  readonly state: DaemonState
  readiness: () => Readiness
  /** What SIGHUP does; reloads run one at a time, a reload asked for meanwhile runs once after. */
  reload: () => Promise<ReloadResult>
  stop: (reason: string) => Promise<number>
  /** Resolves with the exit code once the daemon stopped. */
  stopped: Promise<number>
}

/** Starts the roles and the HTTP endpoint; resolves once they are up (a failed start throws, with the roles closed). */
export async function startDaemon (opts: DaemonOptions): Promise<RunningDaemon> {
  const daemon = new Daemon(opts)
  await daemon.start()
  return daemon
}

export class Daemon implements RunningDaemon {
  readonly log: Logger
  readonly latency = new StageLatency()
  readonly registry: Registry
  readonly stopped: Promise<number>
  ingest: Ingest | null = null
  process: ProcessRole | null = null
  http: DaemonHttp | null = null

  readonly #opts: DaemonOptions
  readonly #exit: (code: number) => void
  readonly #notifier: SystemdNotifier | null
  readonly #startedAt = Date.now()
  readonly #reloads = { applied: 0, unchanged: 0, failed: 0 }
  #config: Config
  #state: DaemonState = 'starting'
  #shedder: Shedder | null = null
  #releaseSignals: () => void = () => {}
  #stopStatus: () => void = () => {}
  #resolveStopped!: (code: number) => void
  /** Why a stop was asked for while starting; it runs once the roles are up. */
  #stopRequested: string | null = null
  #stopping: Promise<number> | null = null
  /** What the drain is doing, for the line of a forced exit. */
  #phase = 'starting'
  #forced = false
  #startCalled = false
  #reloading: Promise<ReloadResult> | null = null
  #reloadAgain = false

  constructor (opts: DaemonOptions) {
    this.#opts = opts
    this.#config = opts.config
    this.log = opts.log ?? createLogger({ level: opts.config.logLevel })
    this.log.redact(secretValues(opts.config))
    this.#exit = opts.exit ?? hardExit
    this.#notifier = opts.notifier ?? null
    this.registry = createRegistry(this.latency, this.#reloads)
    registerNodeMetrics(this.registry, () => this.readiness())
    this.stopped = new Promise<number>(resolve => { this.#resolveStopped = resolve })
  }

  get config (): Config { return this.#config }
  get state (): DaemonState { return this.#state }

  /** The state as of now, unnarrowed: awaits in between may have changed it. */
  #stateNow (): DaemonState { return this.#state }

  #to (next: DaemonState): void {
    if (!TRANSITIONS[this.#state].includes(next)) throw new Error(`finnhubd bug: the daemon cannot go from ${this.#state} to ${next}`)
    this.#state = next
  }

  /** Running or reloading: serving, not yet stopping. */
  #live (): boolean { return this.#state === 'running' || this.#state === 'reloading' }

  async start (): Promise<void> {
    if (this.#startCalled) throw new Error('finnhubd bug: Daemon.start called twice')
    this.#startCalled = true
    // Signals are ours from the first moment: a SIGTERM during the start must not kill
    // the process half-connected (it stops right after the start).
    if (this.#opts.signals !== undefined) {
      this.#releaseSignals = handleSignals(this.#opts.signals, {
        stop: signal => this.#onStopSignal(signal),
        force: signal => this.#onStopSignal(signal),
        reload: () => { this.reload().catch(err => { this.log.error('reload failed', { err }) }) }
      })
    }
    try {
      await this.#startRoles()
    } catch (err) {
      this.#releaseSignals()
      this.#shedder?.stop()
      if (this.ingest !== null) liveProducers.delete(this.ingest.producer)
      await this.ingest?.stop(Date.now() + START_FAILURE_CLOSE_MS)
      await this.process?.stop(Date.now() + START_FAILURE_CLOSE_MS)
      await this.http?.close()
      this.#to('stopped')
      // The caller gets the error; whoever awaits `stopped` (a stop asked for during
      // the start) gets 1, the exit code of a dependency that could not be reached.
      this.#resolveStopped(EXIT_START_FAILED)
      throw err
    }
    this.#to('running')
    this.#phase = 'running'
    this.#opts.stopSignal?.then(async s => await this.stop(s)).catch(err => { this.log.error('shutdown failed', { err }) })
    if (this.#stopRequested !== null) {
      this.stop(this.#stopRequested).catch(err => { this.log.error('shutdown failed', { err }) })
    } else {
      this.#announceReady().catch(err => { this.log.error('could not notify systemd', { err }) })
    }
  }

  async #startRoles (): Promise<void> {
    const { roles } = this.#opts
    const starters: RoleStarters = { ingest: startIngest, process: startProcess, ...this.#opts.starters }
    const deps = { log: this.log, registry: this.registry, latency: this.latency }
    this.#notifier?.status('connecting to Kafka and Cassandra')
    // The processor first: it is ready to drain the topic before trades flow into it.
    if (roles.includes('process')) this.process = await starters.process(this.#config, deps)
    if (roles.includes('ingest')) this.ingest = await starters.ingest(this.#config, { ...deps, shed: () => this.#shedder?.drop ?? null })
    if (this.ingest !== null && this.process !== null) {
      this.#shedder = startShedding(() => this.#config, this.ingest.counters, this.process.counters, this.log.child({ component: 'overload' }))
    }
    if (this.ingest !== null) liveProducers.add(this.ingest.producer)
    if (this.#opts.http === true && this.#config.http.enabled) await this.#startHttp()
  }

  async #startHttp (): Promise<void> {
    const current = this.#config
    const { WebConsole } = await import('./console/console.js')
    const ingest = this.ingest
    const proc = this.process
    const webConsole = current.http.console.enabled
      ? new WebConsole({
        config: () => this.#config,
        token: current.http.console.token,
        startedAt: this.#startedAt,
        roles: this.#opts.roles,
        ingest: ingest === null ? null : { counters: ingest.counters, symbols: () => ingest.client.symbols },
        process: proc === null ? null : { counters: proc.counters, cassandra: proc.cassandra },
        latency: this.latency,
        readiness: () => this.readiness(),
        log: this.log.child({ component: 'console' })
      })
      : null
    this.http = await startHttp({
      host: current.http.host,
      port: current.http.port,
      registry: this.registry,
      latency: this.latency,
      readiness: () => this.readiness(),
      log: this.log.child({ component: 'http' }),
      console: webConsole,
      allowedHosts: current.http.allowedHosts,
      tls: current.http.tls
    })
  }

  readiness (): Readiness {
    const checks: Readiness['checks'] = { daemon: { ok: this.#live(), detail: this.#state } }
    const { ingest, process: proc } = this
    if (ingest !== null) {
      checks['finnhub'] = { ok: ingest.client.connected, detail: ingest.client.state }
      checks['kafka_producer'] = kafkaCheck(ingest.producer.connected, ingest.producer.brokers)
    }
    if (proc !== null) {
      checks['kafka_consumer'] = kafkaCheck(proc.consumer.connected, proc.consumer.brokers)
      checks['cassandra'] = cassandraCheck(proc.counters.cassandraUp === 1, cassandraHosts(proc.cassandra), this.#config.cassandra)
    }
    return { ready: Object.values(checks).every(c => c.ok), checks }
  }

  /** A SIGTERM/SIGINT: the first one stops; one after any stop was asked for forces the exit. */
  #onStopSignal (signal: string): void {
    if (this.#stopRequested !== null || this.#stopping !== null) {
      this.#force(`a second ${signal} while stopping`, EXIT_SECOND_SIGNAL)
      return
    }
    this.stop(signal).catch(err => { this.log.error('shutdown failed', { err }) })
  }

  /** What a forced exit leaves behind now. */
  #abandoned (): Record<string, unknown> {
    return {
      // Lost: trades accepted from Finnhub that Kafka never acknowledged.
      unacknowledgedTrades: this.ingest?.producer.inFlight ?? 0,
      // Not lost: their offsets are not committed, so they are read again after the restart.
      batchesInFlight: this.process?.consumer.inFlightBatches ?? 0,
      recordsInFlight: this.process?.counters.inFlightRecords ?? 0
    }
  }

  #force (why: string, code: number): void {
    if (this.#forced) return
    this.#forced = true
    if (this.#state === 'starting') this.log.error(`${why}: exiting before the daemon finished starting`, { exitCode: code })
    else this.log.error(`${why}: exiting now without finishing the drain`, { exitCode: code, phase: this.#phase, ...this.#abandoned() })
    this.#exit(code)
  }

  /** Drains and stops (once; later calls get the same exit code). While starting, the stop runs right after the start. */
  async stop (reason: string): Promise<number> {
    if (this.#state === 'starting') {
      this.#stopRequested ??= reason
      return await this.stopped
    }
    if (this.#state === 'stopped' && this.#stopping === null) return await this.stopped
    this.#stopping ??= this.#drain(reason)
    return await this.#stopping
  }

  async #drain (reason: string): Promise<number> {
    this.#to('stopping')
    const { ingest, process: proc } = this
    this.#stopStatus()
    this.#shedder?.stop()
    const budgetMs = this.#config.shutdown.drainTimeoutMs
    const deadline = Date.now() + budgetMs
    const hardStop = setTimeout(() => this.#force(`the stop budget (shutdown.drainTimeoutMs = ${budgetMs} ms) ran out`, EXIT_BUDGET), budgetMs + CLOSE_GRACE_MS)
    hardStop.unref()
    this.#notifier?.stopping(`draining (${reason}), up to ${Math.round(budgetMs / 1000)} s`)
    this.log.info('stopping', { reason, budgetMs })
    let unread = 0
    let abandonedBatches = 0
    this.#phase = 'closing the Finnhub socket and flushing the producer'
    await ingest?.stop(deadline)
    if (ingest !== null) liveProducers.delete(ingest.producer)
    const unflushed = ingest?.producer.inFlight ?? 0
    if (ingest !== null && proc !== null) {
      this.#phase = 'storing what the producer flushed'
      const drain = await proc.drainToEnd(deadline)
      unread = drain.unread
      if (!drain.drained) this.log.warn('the stop budget ran out before every produced trade was stored; the rest stays in Kafka and is stored after the restart', { unread })
    }
    this.#phase = 'finishing in-flight batches, committing, closing the clients'
    if (proc !== null) abandonedBatches = (await proc.stop(deadline)).abandonedBatches
    await this.http?.close()
    clearTimeout(hardStop)
    this.#notifier?.stopWatchdog()
    this.#releaseSignals()
    this.#to('stopped')
    const code = unflushed + unread + abandonedBatches > 0 ? EXIT_BUDGET : EXIT_OK
    if (code === EXIT_OK) this.log.info('stopped', { reason })
    else this.log.error('stopped with work left over: the stop budget (shutdown.drainTimeoutMs) was too short', { reason, unacknowledgedTrades: unflushed, unread, abandonedBatches })
    this.#resolveStopped(code)
    return code
  }

  /** What SIGHUP does: refused unless running; one asked for during another runs once more after it. */
  async reload (): Promise<ReloadResult> {
    if (this.#state === 'reloading' && this.#reloading !== null) {
      this.#reloadAgain = true
      return await this.#reloading
    }
    if (this.#state !== 'running') {
      this.log.warn('SIGHUP ignored: the daemon is not running', { state: this.#state })
      return { ok: false, applied: [], needRestart: [], error: this.#state === 'starting' ? 'the daemon is still starting' : `the daemon is ${this.#state}` }
    }
    this.#to('reloading')
    this.#reloading = (async () => {
      let result: ReloadResult
      do {
        this.#reloadAgain = false
        this.#notifier?.reloading('reloading the configuration')
        // Let systemd see RELOADING=1 before READY=1 even when the reload is instant.
        await new Promise(resolve => setImmediate(resolve))
        // A stop that came meanwhile wins: the config it drains with stays the one it began with.
        if (this.#stateNow() !== 'reloading') return { ok: false, applied: [], needRestart: [], error: `the daemon is ${this.#state}` }
        result = await this.#reloadOnce()
        this.#notifier?.ready(result.ok ? 'configuration reloaded' : 'reload refused; running on the previous configuration')
      } while (this.#reloadAgain)
      return result
    })()
    try {
      return await this.#reloading
    } finally {
      this.#reloading = null
      if (this.#stateNow() === 'reloading') this.#to('running')
    }
  }

  async #reloadOnce (): Promise<ReloadResult> {
    const log = this.log
    if (this.#opts.reload === undefined) {
      log.warn('SIGHUP: this daemon was started without a config file to reload; nothing changes')
      return { ok: false, applied: [], needRestart: [], error: 'no config file' }
    }
    let next: Config
    try {
      next = this.#opts.reload()
    } catch (err) {
      this.#reloads.failed++
      log.error('reload refused: the config file is invalid; still running on the previous configuration', { reason: (err as Error).message })
      return { ok: false, applied: [], needRestart: [], error: (err as Error).message }
    }
    this.log.redact(secretValues(next))
    const current = this.#config
    const changes = diffConfig(current, next)
    const applied = changes.filter(c => c.hot)
    const needRestart = changes.filter(c => !c.hot)
    const connection = connectionChanges(changes.map(c => c.path), this.#opts.roles)
    if (connection.length > 0) {
      // New credentials that would not connect are refused now, while the running
      // clients still work on the old ones, not found at the next restart.
      try {
        await (this.#opts.probeConnections ?? probeConnections)(next, connection)
      } catch (err) {
        this.#reloads.failed++
        log.error('reload refused: the new connection settings do not connect; still running on the previous configuration',
          { changed: connection, reason: (err as Error).message, code: (err as { code?: unknown }).code })
        return { ok: false, applied: [], needRestart: [], error: (err as Error).message }
      }
      if (this.#stateNow() !== 'reloading') return { ok: false, applied: [], needRestart: [], error: `the daemon is ${this.#state}` }
    }
    if (changes.length === 0) {
      this.#reloads.unchanged++
      // SIGHUP also asks symbol discovery to run again.
      this.ingest?.discovery?.reconfigure(current.finnhub)
      log.info('reload: the configuration is unchanged')
      return { ok: true, applied: [], needRestart: [] }
    }
    this.#config = effectiveConfig(current, next, changes)
    log.level = this.#config.logLevel
    const symbols = this.ingest?.applyConfig(this.#config)
    this.process?.applyConfig(this.#config)
    this.#reloads.applied++
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

  /**
   * Kafka and Cassandra are connected; give the first Finnhub handshake a moment so
   * READY=1 means data can flow (a Finnhub that stays away shows in /readyz and STATUS=).
   */
  async #announceReady (): Promise<void> {
    const { ingest, process: proc } = this
    if (ingest !== null) await waitUntil(() => ingest.client.connected || !this.#live(), Date.now() + READY_WAIT_FOR_FINNHUB_MS)
    if (!this.#live()) return
    const notifier = this.#notifier
    notifier?.ready(ingest === null || ingest.client.connected ? 'running' : 'running; waiting for Finnhub')
    notifier?.startWatchdog(() => !this.#forced)
    if (notifier?.enabled !== true) return
    this.#stopStatus = startStatusLine({ ingest: ingest?.counters ?? null, process: proc?.counters ?? null, endToEnd: () => this.latency.snapshotOf('end_to_end') },
      STATUS_EVERY_MS, line => notifier.status(line))
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
