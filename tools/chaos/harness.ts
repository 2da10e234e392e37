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
//  - stored: the rows in Cassandra; the candles recomputed from them and compared.
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

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { FinnhubSimulator, type SimulatorOptions } from '../simulator/server.js'
import type { StackOptions } from '../stack/options.js'
import { isAlive, sleep } from '../stack/proc.js'
import { down, runningPid, selectComponents, up } from '../stack/stack.js'
import { DaemonProcess, freePort } from '../bench/daemon-process.js'
import { metricByOnlyLabel, metricSum } from '../verify/prom-text.js'
import { accountScenario } from '../verify/accounting.js'
import { candleDifferences, dropRunData, expectedTrades, groupCaughtUp, readCandles, readTopicIds, readTrades, recomputeCandles, type SentLog } from '../verify/verify.js'
import { DaemonObserver } from './observer.js'
import { TcpProxy } from './proxy.js'

export const SYMBOLS = ['CHAOS:AAA', 'CHAOS:BBB', 'CHAOS:CCC', 'CHAOS:DDD', 'CHAOS:EEE', 'CHAOS:FFF']
const TOKEN = 'chaos'
/** Trades sent this long before a kill or stop of the daemon (and up to its exit) may be in flight. */
const EDGE_BEFORE_MS = 3000
/** The daemon's resident memory must stay under this in every scenario (it holds ~150–250 MiB here). */
export const RSS_BOUND_MIB = 512
/** The daemon's main thread must never be blocked this long (it reads the Finnhub socket). */
export const STALL_BOUND_S = 2

export interface ChaosEnv {
  kafkaBootstrap: string
  cassandraHost: string
  cassandraPort: number
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
  /** Kills, pauses or restarts a stack component (needs the local stack). */
  needsStack?: boolean
  /** Talks to Kafka or Cassandra through the suite's TCP proxy. */
  viaProxy?: 'kafka' | 'cassandra'
  /** Config changes for this scenario (deep-merged over the suite's). */
  config?: Record<string, Record<string, unknown>>
  /** How long the daemon may take to store everything once the faults are over (default 180 s). */
  settleTimeoutMs?: number
  run: (r: Run) => Promise<void>
  /** Checks of its own once the daemon has stored everything and stopped, before the account (e.g. reading the whole keyspace). */
  verify?: (r: Run) => Promise<void>
  /** Runs after the account (puts the stack back as it was). */
  after?: (r: Run) => Promise<void>
}

export interface Check { what: string, ok: boolean, detail: string }

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
  candles: number
  candleProblems: string[]
  recoveryMs: number[]
  peakRssMiB: number
  maxProducerQueue: number
  /** The longest event-loop delay seen (finnhubd_nodejs_eventloop_lag_max_seconds, per 0.5 s scrape). */
  maxStallS: number
  unexpectedExits: string[]
  checks: Check[]
}

interface Edge { what: string, from: number, to: number }

/** Sums of a labelled metric, by the value of its one label (series with other or more labels are left out). */
export const metricByLabel = metricByOnlyLabel

/** Merges plain objects two levels deep (config sections). */
function merge (base: Record<string, unknown>, over: Record<string, Record<string, unknown>> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = { ...(base[k] as Record<string, unknown> | undefined), ...v }
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
  daemon!: DaemonProcess
  kafkaProxy: TcpProxy | null = null
  cassandraProxy: TcpProxy | null = null
  readonly checks: Check[] = []
  readonly recoveryMs: number[] = []
  readonly unexpectedExits: string[] = []
  readonly edges: Edge[] = []
  faults = 0
  badInputs = 0
  /** Memory, stalls, the producer queue and the drops, over the daemon's lives. */
  readonly observed = new DaemonObserver()
  /**
   * Ids of records a scenario wrote into the topic itself that decode but are no
   * valid trade: no trade was sent for them and none may be stored, so the account
   * leaves them out of what is in Kafka and checks that none of them is stored.
   */
  readonly foreignIds = new Set<string>()
  readonly #sentLogs: SentLog[] = []
  #simPort = 0
  #simSeed = 1
  #httpPort = 0

  constructor (env: ChaosEnv, scenario: Scenario, id: string) {
    this.env = env
    this.scenario = scenario
    this.id = id
    this.configFile = join(env.outDir, `chaos-${id}.config.json`)
    this.logFile = join(env.outDir, `chaos-${id}.daemon.log`)
    this.config = {}
  }

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

  async startDaemon (): Promise<number> {
    const started = Date.now()
    const daemon = new DaemonProcess(this.configFile, this.#httpPort, this.logFile)
    this.daemon = daemon
    daemon.child.once('close', (code, signal) => {
      const asked = daemon.signalsSent.some(sig => sig === 'SIGKILL' || sig === 'SIGTERM')
      if (!asked) this.unexpectedExits.push(`exit code ${code}, signal ${signal}`)
    })
    const ms = await this.waitReady(90_000)
    this.log(`daemon pid ${daemon.pid} ready after ${ms} ms`)
    return Date.now() - started
  }

  /** Waits until GET /readyz answers 200; returns the ms it took (a failed check when it never does). */
  async waitReady (timeoutMs = 120_000): Promise<number> {
    const started = Date.now()
    while (Date.now() - started < timeoutMs) {
      if (!this.daemon.running) break
      if (await this.daemon.ready()) return Date.now() - started
      await sleep(100)
    }
    this.check('daemon ready again', false, `not ready within ${timeoutMs} ms`)
    return Date.now() - started
  }

  /** Waits for readiness after a fault was healed and records the recovery time. */
  async recovered (): Promise<void> {
    const ms = await this.waitReady()
    this.recoveryMs.push(ms)
    this.log(`ready again after ${ms} ms`)
  }

  async killDaemon (): Promise<void> {
    this.observed.endOfLife(this.daemon)
    const at = Date.now()
    this.daemon.signal('SIGKILL')
    await this.daemon.exited
    this.edges.push({ what: 'kill -9', from: at - EDGE_BEFORE_MS, to: Date.now() })
  }

  /** SIGTERM; checks the exit code is 0 and reads the daemon's own final counts. */
  async stopDaemon (): Promise<void> {
    this.observed.endOfLife(this.daemon)
    const at = Date.now()
    this.daemon.signal('SIGTERM')
    const code = await this.daemon.exited
    this.edges.push({ what: 'SIGTERM', from: at - EDGE_BEFORE_MS, to: Date.now() })
    this.check('SIGTERM: exit code 0', code === 0, `exit code ${code}, signal ${this.daemon.exitSignal}`)
    this.observed.finalDrops(this.logFile)
  }

  /** SIGHUP. */
  reload (): void { this.daemon.signal('SIGHUP') }

  async metrics (): Promise<string> { return await this.observed.metrics(this.daemon) }

  // ---- stack and network --------------------------------------------------------

  stackPid (name: 'kafka' | 'cassandra'): number {
    if (this.env.stack === null) throw new Error(`${this.scenario.name} needs the local stack`)
    const pid = runningPid(selectComponents([name])[0] as Parameters<typeof runningPid>[0], this.env.stack)
    if (pid === null) throw new Error(`${name} is not running`)
    return pid
  }

  signalStack (name: 'kafka' | 'cassandra', sig: NodeJS.Signals): void {
    process.kill(this.stackPid(name), sig)
  }

  /** kill -9 of a stack component; returns once it is gone. */
  async killStack (name: 'kafka' | 'cassandra'): Promise<void> {
    const pid = this.stackPid(name)
    process.kill(pid, 'SIGKILL')
    while (isAlive(pid)) await sleep(50)
  }

  /** Starts a stack component (the suite's stack options, with `overrides`). */
  async startStack (name: 'kafka' | 'cassandra', overrides: Partial<StackOptions> = {}): Promise<void> {
    if (this.env.stack === null) throw new Error(`${this.scenario.name} needs the local stack`)
    await up({ ...this.env.stack, ...overrides }, process.env, selectComponents([name]), line => this.log(line))
  }

  /** Stops a stack component cleanly and starts it again with `overrides`. */
  async restartStack (name: 'kafka' | 'cassandra', overrides: Partial<StackOptions> = {}): Promise<void> {
    if (this.env.stack === null) throw new Error(`${this.scenario.name} needs the local stack`)
    await down(this.env.stack, selectComponents([name]), line => this.log(line))
    await this.startStack(name, overrides)
  }

  /** Lets trades flow for a while. */
  async flow (ms: number): Promise<void> {
    await sleep(ms)
  }

  // ---- the scenario's life ------------------------------------------------------

  async setUp (): Promise<void> {
    const env = this.env
    this.#httpPort = await freePort()
    const topic = `finnhubd.chaos.${this.id}`
    let kafkaBootstrap = env.kafkaBootstrap
    let cassandraPort = env.cassandraPort
    if (this.scenario.viaProxy === 'kafka') {
      if (env.stack === null) throw new Error(`${this.scenario.name} needs the local stack (its Kafka has the listener the proxy forwards to)`)
      this.kafkaProxy = new TcpProxy(env.stack.kafkaProxiedPort)
      await this.kafkaProxy.listen(env.stack.kafkaProxyPort)
      kafkaBootstrap = `127.0.0.1:${env.stack.kafkaProxyPort}`
    } else if (this.scenario.viaProxy === 'cassandra') {
      const cassandraProxyPort = await freePort()
      this.cassandraProxy = new TcpProxy(env.cassandraPort)
      await this.cassandraProxy.listen(cassandraProxyPort)
      cassandraPort = cassandraProxyPort
    }
    await this.startSimulator()
    this.config = merge({
      logLevel: 'info',
      finnhub: { url: this.sim.url, token: TOKEN, symbols: SYMBOLS, staleAfterMs: 3000, reconnectInitialDelayMs: 200, reconnectMaxDelayMs: 2000, unauthorizedBackoffMs: 1000 },
      kafka: { bootstrapServers: [kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: `chaos-${this.id}`, statsIntervalMs: 500, commitIntervalMs: 500 },
      cassandra: { contactPoints: [env.cassandraHost], port: cassandraPort, keyspace: `chaos_${this.id}`, requestTimeoutMs: 5000, retryMaxDelayMs: 1000 },
      workers: { poolSize: 1 },
      shutdown: { drainTimeoutMs: 20_000 },
      http: { port: this.#httpPort }
    }, this.scenario.config)
    this.writeConfig()
    const direct = this.#directConfig()
    await runMigrate(direct, CQL_DIR, () => {})
    await createTopic(env.kafkaBootstrap, topic, 3)
    await this.startDaemon()
    this.observed.start(() => this.daemon)
  }

  /** The scenario's config with the direct (unproxied) endpoints, for the suite's own clients. */
  directConfig (): Config { return this.#directConfig() }

  #directConfig (): Config {
    const c = this.config as { kafka: Record<string, unknown>, cassandra: Record<string, unknown> }
    return validateConfig({ ...this.config, kafka: { ...c.kafka, bootstrapServers: [this.env.kafkaBootstrap] }, cassandra: { ...c.cassandra, port: this.env.cassandraPort } })
  }

  /** Stops the flow, waits until the daemon holds nothing, stops it, and accounts. */
  async finish (started: number): Promise<ScenarioResult> {
    this.kafkaProxy?.setMode('pass')
    this.cassandraProxy?.setMode('pass')
    this.sim.pause()
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

  async #account (started: number): Promise<ScenarioResult> {
    const config = this.#directConfig()
    const expected = expectedTrades(this.#sentLogs)
    const topic = await readTopicIds(this.env.kafkaBootstrap, config.kafka.topic, config.schemaPath)
    const client = await connectCassandra(config.cassandra)
    let stored: Awaited<ReturnType<typeof readTrades>>
    let candleProblems: string[]
    let candles = 0
    try {
      const times = [...expected.days].map(d => Date.parse(d))
      stored = await readTrades(client, config, [...expected.symbols], times)
      const storedCandles = await readCandles(client, config, [...expected.symbols], times)
      candles = storedCandles.length
      candleProblems = candleDifferences(storedCandles, recomputeCandles(stored))
    } finally {
      await client.shutdown()
    }
    const o = this.observed
    const droppedTotal = o.droppedTotal
    const a = accountScenario({ sent: expected.ids, inKafka: topic.ids, stored: stored.map(r => r.trade_id), foreign: this.foreignIds, windows: this.edges, countedDrops: droppedTotal })
    const { lost, duplicated, lostAfterKafka, kafkaExtra, storedUnexpected } = a
    const missingOutsideEdges = a.missingOutsideWindows
    // Where the trades missing outside the windows were sent, against the faults' times: a failure names when.
    const when = a.missingTimes.length === 0
      ? ''
      : `; sent at ${[...new Set(a.missingTimes.sort((x, y) => x - y).map(t => new Date(t).toISOString().slice(11, 23)))].slice(0, 8).join(', ')}` +
        `; faults at ${this.faultTimes.map(f => `${new Date(f.at).toISOString().slice(11, 23)} ${f.what.slice(0, 40)}`).join('; ')}`
    this.check('lost = 0', lost === 0, `${lostAfterKafka} in Kafka and not stored; ${missingOutsideEdges} sent, not in Kafka, outside kill/stop windows, against ${droppedTotal} counted drops${lost > 0 ? when : ''}`)
    this.check('duplicated = 0', duplicated === 0, `${kafkaExtra} extra Kafka records, ${storedUnexpected} stored rows for no trade sent`)
    // A counted drop can also fall inside a kill/stop window (overload shedding goes on
    // up to a SIGTERM under load): the drops cover every trade missing outside the
    // windows exactly and exceed them by at most the trades missing inside (each of
    // those either dropped and counted or in flight when the daemon died or stopped).
    this.check('every trade missing from Kafka outside kill/stop windows is a counted drop, and no drop is counted for a trade in Kafka', a.dropsInsideWindows >= 0 && a.dropsInsideWindows <= a.missingInsideWindows,
      `${missingOutsideEdges} missing outside the windows, ${a.missingInsideWindows} inside, ${droppedTotal} counted (${JSON.stringify(o.dropped)})`)
    if (this.foreignIds.size > 0) this.check('no record the scenario wrote into the topic as not a trade is stored', a.foreignStored === 0, `${a.foreignStored} of ${this.foreignIds.size} stored`)
    this.check('candles equal their recomputation from the stored trades', candleProblems.length === 0, candleProblems.slice(0, 3).join('; '))
    this.check('the daemon never exited unless killed or stopped', this.unexpectedExits.length === 0, this.unexpectedExits.join('; '))
    this.check(`peak RSS under ${RSS_BOUND_MIB} MiB`, o.peakRssMiB > 0 && o.peakRssMiB < RSS_BOUND_MIB, `${o.peakRssMiB} MiB`)
    this.check(`the main thread never blocked ${STALL_BOUND_S} s or more`, o.maxStallS < STALL_BOUND_S, `longest event-loop delay ${o.maxStallS.toFixed(3)} s`)
    const bound = (config.kafka.maxBufferedMessages)
    this.check('producer queue within kafka.maxBufferedMessages', o.maxProducerQueue <= bound, `max ${o.maxProducerQueue}, bound ${bound}`)
    return this.#result(started, { sent: expected.sent, inKafka: a.inKafka, stored: a.stored, lost, duplicated, droppedTotal, inFlightAtEdges: a.inFlightAtWindows, candles, candleProblems })
  }

  /**
   * The result of a scenario whose settling or accounting itself failed (the stack
   * unreachable afterwards, say): a failed row with what is known, so the suite goes on
   * to the next scenario instead of ending there.
   */
  async unaccounted (started: number, err: unknown): Promise<ScenarioResult> {
    this.check('the scenario could be settled and accounted for', false, (err as Error).stack ?? String(err))
    if (this.daemon.running) this.daemon.signal('SIGKILL')
    this.observed.stop()
    for (const close of [() => this.sim.close(), () => this.kafkaProxy?.close(), () => this.cassandraProxy?.close()]) {
      try { await close() } catch { /* already closed by finish() */ }
    }
    return this.#result(started, { sent: 0, inKafka: 0, stored: 0, lost: 0, duplicated: 0, droppedTotal: 0, inFlightAtEdges: 0, candles: 0, candleProblems: ['not accounted'] })
  }

  #result (started: number, counts: Pick<ScenarioResult, 'sent' | 'inKafka' | 'stored' | 'lost' | 'duplicated' | 'droppedTotal' | 'inFlightAtEdges' | 'candles' | 'candleProblems'>): ScenarioResult {
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
  if (result.ok) await run.cleanUp()
  await scenario.after?.(run)
  return result
}
