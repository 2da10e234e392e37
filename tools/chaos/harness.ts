// The fault suite's harness: one scenario at a time against the real simulator, the
// real daemon (its own process) and real Kafka and Cassandra. A scenario gets its own
// topic, dead-letter topic, group and keyspace, trades flowing at a steady rate, and
// a Run to inject faults with. After it the harness stops the simulator, waits until
// the daemon has stored everything it holds, stops the daemon, and accounts for
// every trade sent:
//
//  - expected: every trade the simulators sent, rebuilt from their generation logs,
//    under the id the daemon must give it;
//  - in Kafka: the topic read back to its end and decoded;
//  - stored: the rows in Cassandra; the candles of every resolution recomputed from
//    them and compared with each table.
//
//  lost        = in Kafka and not stored (the consumer's promise), plus sent trades
//                missing from Kafka beyond what the daemon counted as dropped (the
//                producer's promise);
//  duplicated  = Kafka records beyond one per trade, plus stored rows for no trade sent;
//  dropped     = the daemon's own counters (finnhubd_kafka_dropped_total by reason);
//  in flight at an edge = trades sent in the moments before a kill -9 or SIGTERM of
//                the daemon that never reached Kafka: they were in its socket buffer
//                or memory, and Finnhub has no replay. Reported, never counted as
//                accepted; a missing trade outside those windows is lost.
//
// Run is what a scenario works with; its parts, each in its own file: the daemon's lives
// (daemon-life.ts), what the suite watches of it (observer.ts), the stack and the proxies
// (processes.ts), and the verdict with the one trade accounting (verdict.ts).

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { FinnhubSimulator, type SimulatorOptions } from '../simulator/server.js'
import type { StackOptions } from '../stack/options.js'
import { sleep } from '../stack/proc.js'
import { freePort, type DaemonProcess } from '../bench/daemon-process.js'
import { DaemonLife, type Edge } from './daemon-life.js'
import { metricByOnlyLabel, metricSum } from '../verify/prom-text.js'
import { dropRunData, groupCaughtUp, type SentLog } from '../verify/verify.js'
import { DaemonObserver } from './observer.js'
import { StoreWatch } from './no-store.js'
import { Proxies, StackControl } from './processes.js'
import type { TcpProxy } from './proxy.js'
import { gather, verdict, type CandleCheck, type Check, type GapRow, type VerdictCounts } from './verdict.js'
import type { GapReason } from '../../daemon/core/gaps.js'

export const SYMBOLS = ['CHAOS:AAA', 'CHAOS:BBB', 'CHAOS:CCC', 'CHAOS:DDD', 'CHAOS:EEE', 'CHAOS:FFF']
const TOKEN = 'chaos'
export { RSS_BOUND_MIB, STALL_BOUND_S } from './verdict.js'

export interface ChaosEnv {
  kafkaBootstrap: string
  cassandraHost: string
  cassandraPort: number
  /** Every Cassandra node (the cluster's three); [cassandraHost] when absent. */
  cassandraContactPoints?: string[]
  /**
   * The replicated cluster (npm run chaos -- --cluster): topics with replication factor 3
   * and min.insync.replicas 2, keyspaces NetworkTopologyStrategy {datacenter1: 3}, writes
   * at LOCAL_QUORUM.
   */
  cluster?: boolean
  /** The local stack, for scenarios that kill, pause or restart Kafka or Cassandra (null: a remote cluster). */
  stack: StackOptions | null
  ratePerSec: number
  /** Where daemon logs go. */
  outDir: string
  log: (line: string) => void
}

export interface Scenario {
  name: string
  title: string
  /** Part of the fast subset that runs inside `npm test`. */
  subset?: boolean
  /** A scenario of the replicated cluster: runs only with --cluster (and only such scenarios run there). */
  cluster?: boolean
  /** Kills, pauses or restarts a stack component (needs the local stack). */
  needsStack?: boolean
  /** Talks to Kafka or Cassandra through the suite's TCP proxy. */
  viaProxy?: 'kafka' | 'cassandra'
  /** Simulator options for this scenario (e.g. broadcast: one stream to every connection). */
  simulator?: Partial<SimulatorOptions>
  /** Config changes for this scenario (sections merged over the suite's; lists and plain values replace). */
  config?: Record<string, unknown>
  /** How long the daemon may take to store everything once the faults are over (default 180 s). */
  settleTimeoutMs?: number
  run: (r: Run) => Promise<void>
  /** Checks of its own once the daemon has stored everything and stopped, before the account (e.g. reading the whole keyspace). */
  verify?: (r: Run) => Promise<void>
  /** Gap reasons its faults explain without a trade lost (the simulator sends nothing to a closed socket). */
  gapReasons?: GapReason[]
  /** Records each trade may have in the topic (redundant ingest: one per member); 1 when absent. Stored rows stay one per trade. */
  copiesPerTrade?: number
  /** Runs after the account (puts the stack back as it was). */
  after?: (r: Run) => Promise<void>
}

export type { Check } from './verdict.js'

export interface ScenarioResult {
  name: string
  title: string
  ok: boolean
  seconds: number
  faults: number
  badInputs: number
  sent: number
  inKafka: number
  stored: number
  lost: number
  duplicated: number
  dropped: Record<string, number>
  droppedTotal: number
  inFlightAtEdges: number
  /** Per resolution kept, its candles against their recomputation from the stored trades. */
  candles: CandleCheck[]
  /** Trades sent and never stored, whatever the reason (the gap rows must hold them). */
  lostUpstream: number
  /** The gaps table's rows, beside the account. */
  gaps: GapRow[]
  recoveryMs: number[]
  /** The longest time (ms) no trade was stored while trades were being sent (tools/chaos/no-store.ts). */
  longestNoStoreMs: number
  peakRssMiB: number
  maxProducerQueue: number
  /** The longest event-loop delay seen (finnhubd_nodejs_eventloop_lag_max_seconds, per 0.5 s scrape). */
  maxStallS: number
  unexpectedExits: string[]
  checks: Check[]
}

/** Sums of a labelled metric, by the value of its one label (series with other or more labels are left out). */
export const metricByLabel = metricByOnlyLabel

/** Merges plain objects two levels deep (config sections). */
function merge (base: Record<string, unknown>, over: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    // A section merges into the suite's; a list (roles) or a plain value replaces it.
    out[k] = typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...(base[k] as Record<string, unknown> | undefined), ...v } : v
  }
  return out
}

/** What a scenario works with: the simulator, the daemon, the stack, the proxies. */
export class Run {
  readonly env: ChaosEnv
  readonly scenario: Scenario
  readonly id: string
  readonly configFile: string
  readonly logFile: string
  config: Record<string, unknown>
  sim!: FinnhubSimulator
  /** The TCP proxy the scenario talks to Kafka or Cassandra through (tools/chaos/processes.ts). */
  readonly proxies = new Proxies()
  /** The local stack's Kafka and Cassandra (tools/chaos/processes.ts). */
  readonly stack: StackControl
  readonly checks: Check[] = []
  readonly recoveryMs: number[] = []
  faults = 0
  badInputs = 0
  /** Memory, stalls, the producer queue and the drops, over the daemon's lives. */
  readonly observed = new DaemonObserver()
  /** The stored total of every daemon the scenario runs, for the longest time no trade was stored. */
  readonly storeWatch = new StoreWatch()
  /** Daemons besides the suite's own that store trades (process daemons of a group), for the store watch. */
  readonly otherDaemons: DaemonLife[] = []
  /** The daemon's processes, their kill/stop windows and unexpected exits (tools/chaos/daemon-life.ts). */
  readonly life: DaemonLife
  /**
   * Ids of records a scenario wrote into the topic itself that decode but are no
   * valid trade: no trade was sent for them and none may be stored, so the account
   * leaves them out of what is in Kafka and checks that none of them is stored.
   */
  readonly foreignIds = new Set<string>()
  readonly #sentLogs: SentLog[] = []
  #simPort = 0
  #simSeed = 1

  constructor (env: ChaosEnv, scenario: Scenario, id: string) {
    this.env = env
    this.scenario = scenario
    this.id = id
    this.configFile = join(env.outDir, `chaos-${id}.config.json`)
    this.logFile = join(env.outDir, `chaos-${id}.daemon.log`)
    this.config = {}
    this.stack = new StackControl(env.stack, scenario.name, line => this.log(line))
    this.life = new DaemonLife({ configFile: this.configFile, logFile: this.logFile, observed: this.observed, check: (what, ok, detail) => this.check(what, ok, detail), log: line => this.log(line) })
  }

  get daemon (): DaemonProcess { return this.life.daemon }
  /** The kill/stop windows so far. */
  get edges (): readonly Edge[] { return this.life.edges }
  get unexpectedExits (): string[] { return this.life.unexpectedExits }

  get kafkaProxy (): TcpProxy | null { return this.proxies.kafka }
  get cassandraProxy (): TcpProxy | null { return this.proxies.cassandra }

  log (line: string): void { this.env.log(`${this.scenario.name}: ${line}`) }

  /** A fault injected (counted in the report). */
  /** When each fault began (Date.now()), for the account of a failure. */
  readonly faultTimes: Array<{ at: number, what: string }> = []

  fault (what: string): void {
    this.faults++
    this.faultTimes.push({ at: Date.now(), what })
    this.log(`fault ${this.faults}: ${what}`)
  }

  check (what: string, ok: boolean, detail = ''): void {
    this.checks.push({ what, ok, detail })
    if (!ok) this.log(`CHECK FAILED: ${what}${detail === '' ? '' : ` (${detail})`}`)
  }

  // ---- simulator ----------------------------------------------------------------

  async startSimulator (extra: Partial<SimulatorOptions> = {}): Promise<void> {
    this.sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: this.env.ratePerSec, port: this.#simPort, seed: this.#simSeed++, logGeneration: true, pingIntervalMs: 1000, tickMs: 5, ...extra })
    await this.sim.start()
    this.#simPort = Number(new URL(this.sim.url).port)
    this.#sentLogs.push({ options: this.sim.generatorOptions(), calls: this.sim.generation() })
  }

  /** Stops sending, lets what was sent arrive, and closes the server (its connections end). */
  async stopSimulator (): Promise<void> {
    this.sim.pause()
    await sleep(500)
    await this.sim.close()
  }

  // ---- daemon -------------------------------------------------------------------

  writeConfig (patch: Record<string, Record<string, unknown>> = {}): void {
    this.config = merge(this.config, patch)
    writeFileSync(this.configFile, JSON.stringify(this.config, null, 2))
  }

  async startDaemon (): Promise<number> { return await this.life.start() }

  /** Waits until GET /readyz answers 200; returns the ms it took (a failed check when it never does). */
  async waitReady (timeoutMs = 120_000): Promise<number> { return await this.life.waitReady(timeoutMs) }

  /** Waits for readiness after a fault was healed and records the recovery time. */
  async recovered (): Promise<void> {
    const ms = await this.waitReady()
    this.recoveryMs.push(ms)
    this.log(`ready again after ${ms} ms`)
  }

  async killDaemon (): Promise<void> { await this.life.kill() }

  /** SIGTERM; checks the exit code is 0 and reads the daemon's own final counts. */
  async stopDaemon (): Promise<void> { await this.life.stop() }

  /** SIGHUP. */
  reload (): void { this.daemon.signal('SIGHUP') }

  async metrics (): Promise<string> { return await this.observed.metrics(this.daemon) }

  // ---- stack and network --------------------------------------------------------

  stackPid (name: 'kafka' | 'cassandra'): number { return this.stack.pid(name) }

  signalStack (name: 'kafka' | 'cassandra', sig: NodeJS.Signals): void { this.stack.signal(name, sig) }

  /** kill -9 of a stack component; returns once it is gone. */
  async killStack (name: 'kafka' | 'cassandra'): Promise<void> { await this.stack.kill(name) }

  /** Starts a stack component (the suite's stack options, with `overrides`). */
  async startStack (name: 'kafka' | 'cassandra', overrides: Partial<StackOptions> = {}): Promise<void> { await this.stack.start(name, overrides) }

  /** Stops a stack component cleanly and starts it again with `overrides`. */
  async restartStack (name: 'kafka' | 'cassandra', overrides: Partial<StackOptions> = {}): Promise<void> { await this.stack.restart(name, overrides) }

  /** Lets trades flow for a while. */
  async flow (ms: number): Promise<void> {
    await sleep(ms)
  }

  // ---- the scenario's life ------------------------------------------------------

  async setUp (): Promise<void> {
    const env = this.env
    this.life.httpPort = await freePort()
    const topic = `finnhubd.chaos.${this.id}`
    const cluster = env.cluster === true
    const { kafkaBootstrap, cassandraPort } = await this.proxies.open(this.scenario.viaProxy, { kafkaBootstrap: env.kafkaBootstrap, cassandraPort: env.cassandraPort }, env.stack, this.scenario.name)
    await this.startSimulator(this.scenario.simulator)
    this.config = merge({
      logLevel: 'info',
      // Its own: the ledger of gaps keeps the previous run's state there (daemon_down).
      stateDir: join(env.outDir, `chaos-${this.id}.state`),
      finnhub: { url: this.sim.url, token: TOKEN, symbols: SYMBOLS, staleAfterMs: 3000, reconnectInitialDelayMs: 200, reconnectMaxDelayMs: 2000, unauthorizedBackoffMs: 1000 },
      kafka: { bootstrapServers: kafkaBootstrap.split(','), ...(cluster ? { topicReplicationFactor: 3, topicMinInsyncReplicas: 2 } : {}), topic, deadLetterTopic: `${topic}.dlq`, groupId: `chaos-${this.id}`, statsIntervalMs: 500, commitIntervalMs: 500 },
      cassandra: {
        contactPoints: env.cassandraContactPoints ?? [env.cassandraHost],
        port: cassandraPort,
        keyspace: `chaos_${this.id}`,
        requestTimeoutMs: 5000,
        retryMaxDelayMs: 1000,
        ...(cluster ? { replication: { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 3 } }, consistency: 'LOCAL_QUORUM' } : {})
      },
      workers: { poolSize: 1 },
      shutdown: { drainTimeoutMs: 20_000 },
      http: { port: this.life.httpPort },
      // On the cluster six JVMs share this machine's two cores with the daemons: the
      // daemon would shed trades (counted, reason overload) whenever they saturate it.
      // The cluster suite is about the replicas' faults, so Kafka buffers instead.
      ...(cluster ? { overload: { shed: false } } : {})
    }, this.scenario.config)
    this.writeConfig()
    const direct = this.#directConfig()
    await runMigrate(direct, CQL_DIR, () => {})
    if (cluster) {
      await createTopic(env.kafkaBootstrap, topic, 3, 3, { 'min.insync.replicas': '2' })
      await createTopic(env.kafkaBootstrap, `${topic}.dlq`, 3, 3, { 'min.insync.replicas': '2' })
    } else {
      await createTopic(env.kafkaBootstrap, topic, 3)
    }
    await this.startDaemon()
    this.observed.start(() => this.daemon)
    this.storeWatch.start(() => [this.daemon, ...this.otherDaemons.filter(l => l.started).map(l => l.daemon)], () => !this.sim.paused)
  }

  /** The scenario's config with the direct (unproxied) endpoints, for the suite's own clients. */
  directConfig (): Config { return this.#directConfig() }

  #directConfig (): Config {
    const c = this.config as { kafka: Record<string, unknown>, cassandra: Record<string, unknown> }
    return validateConfig({ ...this.config, kafka: { ...c.kafka, bootstrapServers: this.env.kafkaBootstrap.split(',') }, cassandra: { ...c.cassandra, port: this.env.cassandraPort } })
  }

  /** Stops the flow, waits until the daemon holds nothing, stops it, and accounts. */
  async finish (started: number): Promise<ScenarioResult> {
    this.proxies.pass()
    this.sim.pause()
    this.storeWatch.stop()
    if (this.daemon.running) {
      const settled = await this.#settle(this.scenario.settleTimeoutMs ?? 180_000)
      this.check('the daemon settles (nothing in flight, no lag)', settled)
      await this.stopDaemon()
    }
    this.observed.stop()
    try {
      await this.scenario.verify?.(this)
    } catch (err) {
      this.check('the scenario\'s own checks ran', false, (err as Error).stack ?? String(err))
    }
    await this.sim.close()
    await this.kafkaProxy?.close()
    await this.cassandraProxy?.close()
    return await this.#account(started)
  }

  /**
   * Settled: the producer holds nothing, and the group has committed every partition
   * up to its high watermark, so every record in the topic is stored (the consumer
   * commits only what is written). Gauges alone would not do: a consumer waiting for
   * its partitions after a restart reports no lag at all.
   */
  async #settle (timeoutMs: number): Promise<boolean> {
    const config = this.#directConfig()
    const partitions = 3
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      await sleep(1000)
      let text: string
      try { text = await this.metrics() } catch { continue }
      if (metricSum(text, 'finnhubd_kafka_in_flight') !== 0) continue
      if (await groupCaughtUp(this.env.kafkaBootstrap, config.kafka.groupId, config.kafka.topic, partitions)) return true
    }
    return false
  }

  /** Reads back what the scenario left and records the verdict (tools/chaos/verdict.ts). */
  async #account (started: number): Promise<ScenarioResult> {
    const config = this.#directConfig()
    // A Cassandra node just back (replaying hints, its JIT cold) can take longer than the
    // daemon's 5 s to answer the suite's whole-keyspace reads: the account waits for it.
    const reader = this.env.cluster === true ? { ...config, cassandra: { ...config.cassandra, requestTimeoutMs: 60_000 } } : config
    const gathered = await gather(reader, this.env.kafkaBootstrap, this.#sentLogs)
    const { checks, counts } = verdict({
      gathered,
      foreignIds: this.foreignIds,
      edges: this.edges,
      faultTimes: this.faultTimes,
      observed: this.observed,
      unexpectedExits: this.unexpectedExits,
      maxBufferedMessages: config.kafka.maxBufferedMessages,
      gapReasons: this.scenario.gapReasons ?? [],
      copiesPerTrade: this.scenario.copiesPerTrade ?? 1
    })
    for (const c of checks) this.check(c.what, c.ok, c.detail)
    return this.#result(started, counts)
  }

  /**
   * The result of a scenario whose settling or accounting itself failed (the stack
   * unreachable afterwards, say): a failed row with what is known, so the suite goes on
   * to the next scenario instead of ending there.
   */
  async unaccounted (started: number, err: unknown): Promise<ScenarioResult> {
    this.check('the scenario could be settled and accounted for', false, (err as Error).stack ?? String(err))
    if (this.daemon.running) this.daemon.signal('SIGKILL')
    for (const other of this.otherDaemons) if (other.started && other.daemon.running) other.daemon.signal('SIGKILL')
    this.observed.stop()
    this.storeWatch.stop()
    for (const close of [() => this.sim.close(), () => this.kafkaProxy?.close(), () => this.cassandraProxy?.close()]) {
      try { await close() } catch { /* already closed by finish() */ }
    }
    return this.#result(started, { sent: 0, inKafka: 0, stored: 0, lost: 0, duplicated: 0, droppedTotal: 0, inFlightAtEdges: 0, candles: [], lostUpstream: 0, gaps: [] })
  }

  #result (started: number, counts: VerdictCounts): ScenarioResult {
    return {
      name: this.scenario.name,
      title: this.scenario.title,
      ok: this.checks.every(c => c.ok),
      seconds: Math.round((Date.now() - started) / 1000),
      faults: this.faults,
      badInputs: this.badInputs,
      ...counts,
      dropped: { ...this.observed.dropped },
      recoveryMs: this.recoveryMs,
      longestNoStoreMs: this.storeWatch.longestMs,
      peakRssMiB: this.observed.peakRssMiB,
      maxProducerQueue: this.observed.maxProducerQueue,
      maxStallS: Math.round(this.observed.maxStallS * 1000) / 1000,
      unexpectedExits: this.unexpectedExits,
      checks: this.checks
    }
  }

  /** Drops the scenario's keyspace and topics (a failed scenario keeps them, to look at). */
  async cleanUp (): Promise<void> {
    const config = this.#directConfig()
    await dropRunData(config, [], [config.kafka.topic, config.kafka.deadLetterTopic])
  }
}

/** Runs one scenario from set-up to account; a scenario that throws is a failed one, with the error as its check. */
export async function runScenario (env: ChaosEnv, scenario: Scenario, id: string): Promise<ScenarioResult> {
  const started = Date.now()
  const run = new Run(env, scenario, id)
  await run.setUp()
  try {
    await run.flow(3000)
    await scenario.run(run)
    await run.flow(3000)
  } catch (err) {
    run.check('the scenario ran to its end', false, (err as Error).stack ?? String(err))
  }
  let result: ScenarioResult
  try {
    result = await run.finish(started)
  } catch (err) {
    result = await run.unaccounted(started, err)
  }
  // Dropping the scenario's data is housekeeping, not part of the verdict: a failure there
  // leaves the keyspace and topics in place and the suite goes on.
  if (result.ok) {
    try {
      await run.cleanUp()
    } catch (err) {
      run.log(`could not drop the scenario's keyspace and topics (left in place): ${(err as Error).message}`)
    }
  }
  await scenario.after?.(run)
  return result
}
