// The whole-pipeline open-loop bench (`npm run bench [-- --quick]`): simulator →
// the real daemon (`finnhubd run`, its own process, default settings) → Kafka →
// workers → Cassandra, on the local stack (or on the cluster given by --kafka and
// --cassandra). In one run:
//  1. the ceilings: raw Kafka produce rate and raw Cassandra write rate of the same
//     rows (tools/bench/ceilings.ts), each after a warm-up through the same path into a
//     throwaway topic or keyspace and a wait until the stack has settled (no
//     compaction running or pending, Kafka and Cassandra idle);
//  2. a rate sweep: the simulator (a thread of this process) sends open loop at a
//     constant rate for each step, in fractions of the lower ceiling, stamping each
//     trade's `t` with its intended send time. A step is sustainable when, at its
//     end, the backlog (trades sent and not yet stored) is under one second of the
//     offered rate, the p99 of intended send → stored (the daemon's
//     source_to_written histogram) is ≤ 1 s and the daemon dropped nothing. Between
//     steps the pipeline drains;
//  3. the CPU budget at the sustainable rate (tools/bench/cpu-budget.ts);
//  4. phases sampled every second (GET /latency, consecutive snapshots subtracted:
//     per-second p50/p99, charted beside the report): half the sustainable rate
//     (per-stage p50/p99/p99.9/max over the phase, exact, not windowed), a steady
//     2,000 trades/s, and an overload step at twice the sustainable rate with the
//     recovery after it;
//  5. the exact account: every frame the simulator sent is rebuilt from its
//     generation log, every trade's deterministic id worked out, and the set
//     compared with the ids stored in Cassandra: lost (beyond the drops the daemon
//     counted), duplicated, stored;
//  6. a JSON and a Markdown report and an SVG chart under tools/bench/results/.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, freemem, hostname, release, tmpdir, totalmem } from 'node:os'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import Kafka from 'node-rdkafka'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { TradeEncoder } from '../../daemon/core/avro-codec.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { latencyBetween, STAGES, type IntervalLatency, type Stage, type StageSnapshot } from '../../daemon/metrics/latency.js'
import { CQL_DIR, loadTradeType, PROJECT_ROOT, resolveSchemaPath, VERSION } from '../../daemon/paths.js'
import type { GenerationCall, GeneratorOptions } from '../simulator/generator.js'
import type { SimulatorStats } from '../simulator/server.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { sleep } from '../stack/proc.js'
import { runningPid, selectComponents, up } from '../stack/stack.js'
import { ConsoleViewer, type ViewerCounts } from './console-viewer.js'
import { measureCpuBudget, type CpuBudget } from './cpu-budget.js'
import { DaemonProcess, freePort } from './daemon-process.js'
import { cpuSeconds, quiet, rawCassandraWrite, rawKafkaProduce, round, settle, type SettleResult } from './ceilings.js'
import {
  BACKLOG_BOUND_S, computeGoals, dropsBetween, dropsIn, metricSum, P99_BOUND_MS, renderLatencyChart, renderMarkdown, setPath, sustainable,
  type BenchReport, type DropCounts, type OverloadResult, type PhaseResult, type SecondSample, type StepResult
} from './report.js'
import type { SimCommand, SimWorkerData } from './sim-worker.js'
import { syntheticTrades } from './trades.js'
import { dropRunData, expectedIdTable } from '../verify/verify.js'
import { accountIds, StoredRowTally, type IdAccount } from '../verify/accounting.js'

export const TOKEN = 'bench'
export const SYMBOLS = Array.from({ length: 40 }, (_, i) => `BENCH:SYM${String(i).padStart(2, '0')}`)
/** The steady phase's rate: a busy real feed. */
export const STEADY_RATE = 2000
/** The share of each ceiling's records sent through its path into a throwaway topic or keyspace first. */
const CEILING_WARMUP_SHARE = 0.15

interface Mode {
  name: 'quick' | 'full' | 'smoke'
  kafkaRecords: number
  cassandraRows: number
  fractions: number[]
  /** Steps halving the gap between the last passing and the first failing rate. */
  bisections: number
  stepSeconds: number
  warmupSeconds: number
  /** The most the bench waits for the stack to settle before each ceiling. */
  settleBoundMs: number
  cpuBudgetSeconds: number
  latencySeconds: number
  steadySeconds: number
  overloadSeconds: number
  /** The most the bench waits after the overload step for the backlog to come back under one second of the sustainable rate. */
  recoveryLimitSeconds: number
}

const MODES: Record<Mode['name'], Mode> = {
  full: { name: 'full', kafkaRecords: 1_000_000, cassandraRows: 300_000, fractions: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.25], bisections: 2, stepSeconds: 30, warmupSeconds: 10, settleBoundMs: 120_000, cpuBudgetSeconds: 20, latencySeconds: 30, steadySeconds: 60, overloadSeconds: 30, recoveryLimitSeconds: 120 },
  quick: { name: 'quick', kafkaRecords: 200_000, cassandraRows: 60_000, fractions: [0.15, 0.3, 0.45, 0.6, 0.8, 1], bisections: 1, stepSeconds: 5, warmupSeconds: 4, settleBoundMs: 120_000, cpuBudgetSeconds: 5, latencySeconds: 8, steadySeconds: 10, overloadSeconds: 8, recoveryLimitSeconds: 60 },
  // For the test that keeps the bench working: tiny and short, the figures mean little.
  smoke: { name: 'smoke', kafkaRecords: 20_000, cassandraRows: 5_000, fractions: [0.05, 0.1], bisections: 0, stepSeconds: 2, warmupSeconds: 1, settleBoundMs: 20_000, cpuBudgetSeconds: 2, latencySeconds: 2, steadySeconds: 2, overloadSeconds: 2, recoveryLimitSeconds: 20 }
}

export const progress = (line: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`) }

export class Sim {
  readonly #worker: Worker
  #next = 1
  readonly #waiting = new Map<number, { resolve: (m: Record<string, unknown>) => void, reject: (err: Error) => void }>()
  url = ''
  /** Why the simulator's thread ended, once it has (null while it runs). */
  ended: string | null = null

  constructor (data: SimWorkerData) {
    this.#worker = new Worker(new URL('./sim-worker.js', import.meta.url), { workerData: data })
    this.#worker.on('message', (m: { id: number } & Record<string, unknown>) => {
      const w = this.#waiting.get(m.id)
      this.#waiting.delete(m.id)
      w?.resolve(m)
    })
    // For the whole run: a thread that died unnoticed would leave the daemon's
    // connections refused and every later call waiting for ever.
    this.#worker.on('error', err => { this.ended ??= `the simulator thread failed: ${err.stack ?? err.message}` })
    this.#worker.on('exit', code => {
      this.ended ??= `the simulator thread exited with code ${code}`
      for (const w of this.#waiting.values()) w.reject(new Error(this.ended))
      this.#waiting.clear()
    })
  }

  async started (): Promise<void> {
    this.url = (await this.#request(0, null))['url'] as string
  }

  async call (cmd: SimCommand['cmd'], extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return await this.#request(this.#next++, { cmd, ...extra })
  }

  async #request (id: number, message: Record<string, unknown> | null): Promise<Record<string, unknown>> {
    if (this.ended !== null) throw new Error(this.ended)
    return await new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      if (message !== null) this.#worker.postMessage({ id, ...message })
    })
  }

  async stats (): Promise<SimulatorStats> { return (await this.call('stats'))['stats'] as SimulatorStats }
}

function versionOf (pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** The version the local stack runs, from its pom (tools/stack/<name>/pom.xml). */
function pomVersion (name: 'kafka' | 'cassandra'): string {
  const pom = readFileSync(join(PROJECT_ROOT, 'tools', 'stack', name, 'pom.xml'), 'utf8')
  return new RegExp(`<${name}\\.version>([^<]+)<`).exec(pom)?.[1] ?? 'unknown'
}

export function machineInfo (): BenchReport['machine'] {
  const cpu = cpus()
  return {
    hostname: hostname(),
    cpuModel: cpu[0]?.model ?? 'unknown',
    cpus: cpu.length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    freeMemoryGiB: round(freemem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version
  }
}

export interface Pids { kafka: number | null, cassandra: number | null, daemon: number | null }

export function cpuSnapshot (pids: Pids): Record<keyof Pids | 'bench', number> {
  return { daemon: cpuSeconds(pids.daemon), kafka: cpuSeconds(pids.kafka), cassandra: cpuSeconds(pids.cassandra), bench: cpuSeconds(process.pid) }
}

/** The daemon, the simulator and the processes every phase works with. */
export interface Rig {
  daemon: DaemonProcess
  sim: Sim
  pids: Pids
  /** Date.now() when the first charted phase began: x = 0 of the chart (null before). */
  chartOrigin: number | null
  /**
   * Trades the simulator had sent when this daemon started (0 for the one daemon of a
   * pipeline run): its counters start at zero, so a backlog is of what was sent since.
   */
  sentBase?: number
}

interface Scrape { text: string, rows: number, delivered: number, drops: DropCounts }

export async function scrape (daemon: DaemonProcess): Promise<Scrape> {
  const text = await daemon.metrics()
  return { text, rows: metricSum(text, 'finnhubd_cassandra_rows_written_total'), delivered: metricSum(text, 'finnhubd_kafka_delivered_total'), drops: dropsIn(text) }
}

/** Trades sent and neither stored nor counted as dropped. */
const backlogOf = (sent: number, m: Scrape): number => sent - m.rows - m.drops.total

/** Waits until every trade sent is stored and acknowledged by Kafka, or counted as dropped, or nothing moves for 10 s (at most 120 s); returns the trades left. */
export async function drain (rig: Rig): Promise<number> {
  const sent = (await rig.sim.stats()).tradesSent - (rig.sentBase ?? 0)
  const until = Date.now() + 120_000
  let last = -1
  let still = Date.now()
  for (;;) {
    const m = await scrape(rig.daemon)
    if (m.rows + m.drops.total >= sent && m.delivered + m.drops.total >= sent) return 0
    if (m.rows !== last) { last = m.rows; still = Date.now() }
    if (Date.now() - still > 10_000 || Date.now() > until) return backlogOf(sent, m)
    await sleep(100)
  }
}

/**
 * Samples the daemon: sent/s, stored/s, backlog and RSS since the last sample and,
 * for a charted phase, source_to_written over that interval (GET /latency, the
 * previous snapshot subtracted). Each sample also scrapes /metrics, which reads
 * and resets the event-loop delay histogram of the second before.
 */
export class Sampler {
  readonly samples: SecondSample[] = []
  readonly #rig: Rig
  #latency: Record<Stage, StageSnapshot> | null
  #at = Date.now()
  #sent: number
  #rows: number

  /** `latency`: the snapshot to measure the first interval from; null: no latency per interval (and no samples kept). */
  constructor (rig: Rig, latency: Record<Stage, StageSnapshot> | null, sent: number, rows: number) {
    this.#rig = rig
    this.#latency = latency
    this.#sent = sent
    this.#rows = rows
  }

  restart (at: number): void { this.#at = at }

  async sample (sending: boolean): Promise<{ m: Scrape, sent: number, sample: SecondSample }> {
    const { daemon, sim } = this.#rig
    const snapshot = this.#latency === null ? null : await daemon.latency()
    const m = await scrape(daemon)
    const sent = (await sim.stats()).tradesSent
    const at = Date.now()
    const dt = Math.max(0.001, (at - this.#at) / 1000)
    const stages = snapshot === null || this.#latency === null ? null : stagesBetween(this.#latency, snapshot)
    const lat = stages?.source_to_written ?? null
    const q = (x: number | undefined): number | null => lat === null || lat.count === 0 || x === undefined ? null : x
    const sample: SecondSample = {
      t: round((at - (this.#rig.chartOrigin ?? at)) / 1000, 2),
      sending,
      sentPerSec: Math.round((sent - this.#sent) / dt),
      storedPerSec: Math.round((m.rows - this.#rows) / dt),
      p50Ms: q(lat?.p50),
      p99Ms: q(lat?.p99),
      maxMs: q(lat?.max),
      backlog: backlogOf(sent - (this.#rig.sentBase ?? 0), m),
      rssMiB: daemon.memory().rssMiB,
      stageMaxMs: Object.fromEntries(STAGES.map(s => [s, stages === null || stages[s].count === 0 ? null : stages[s].max])) as Record<Stage, number | null>
    }
    if (snapshot !== null) {
      this.#latency = snapshot
      this.samples.push(sample)
    }
    this.#at = at
    this.#sent = sent
    this.#rows = m.rows
    return { m, sent, sample }
  }
}

/** Every stage's latency between two GET /latency snapshots. */
function stagesBetween (before: Record<Stage, StageSnapshot>, after: Record<Stage, StageSnapshot>): Record<Stage, IntervalLatency> {
  return Object.fromEntries(STAGES.map(s => [s, latencyBetween(before[s], after[s])])) as Record<Stage, IntervalLatency>
}

export interface Window { elMaxP99Ms: number, elP99sMs: number[], rssMaxMiB: number }

/** One run at a constant rate: the step's figures, the latency snapshots around it, its per-second samples. */
export interface Run {
  step: StepResult
  before: Record<Stage, StageSnapshot>
  after: Record<Stage, StageSnapshot>
  window: Window
  sampler: Sampler
  dropsAtStart: DropCounts
  drops: DropCounts
  /** When the sending stopped, the trades sent by then (whole run) and the counters then. */
  endedAt: number
  sentAtEnd: number
  atEnd: Scrape
  startT: number
  endT: number
}

/** Sends at `rate` for `seconds`, sampling (and showing progress) each second; `charted`: keep per-second latency for the chart. */
export async function runAt (rig: Rig, rate: number, seconds: number, label: string, charted = false): Promise<Run> {
  const { daemon, sim } = rig
  const before = await daemon.latency()
  const sent0 = (await sim.stats()).tradesSent
  const m0 = await scrape(daemon)
  const cpu0 = cpuSnapshot(rig.pids)
  const window: Window = { elMaxP99Ms: 0, elP99sMs: [], rssMaxMiB: 0 }
  const sampler = new Sampler(rig, charted ? before : null, sent0, m0.rows)
  await sim.call('rate', { rate })
  const t0 = Date.now()
  if (charted && rig.chartOrigin === null) rig.chartOrigin = t0
  sampler.restart(t0)
  for (let s = 1; s <= seconds; s++) {
    await sleep(t0 + s * 1000 - Date.now())
    const { m, sent, sample } = await sampler.sample(true)
    const el = metricSum(m.text, 'finnhubd_nodejs_eventloop_lag_p99_seconds') * 1000
    window.elP99sMs.push(el)
    window.elMaxP99Ms = Math.max(window.elMaxP99Ms, el)
    window.rssMaxMiB = Math.max(window.rssMaxMiB, sample.rssMiB)
    progress(`${label} ${rate}/s: ${s}/${seconds} s, sent ${sent - sent0}, stored ${m.rows - m0.rows}, backlog ${sample.backlog}, event-loop p99 ${round(el, 1)} ms` +
      (charted ? `, source_to_written p99 ${sample.p99Ms ?? '–'} ms this second` : ''))
  }
  const stats = (await sim.call('pause'))['stats'] as SimulatorStats
  const endedAt = Date.now()
  const elapsed = (endedAt - t0) / 1000
  const after = await daemon.latency()
  const m1 = await scrape(daemon)
  const perSec = (name: string): number => Math.round((metricSum(m1.text, name) - metricSum(m0.text, name)) / elapsed)
  const cpu1 = cpuSnapshot(rig.pids)
  const lat = latencyBetween(before.source_to_written, after.source_to_written)
  const cpu = (k: keyof ReturnType<typeof cpuSnapshot>): number => round((cpu1[k] - cpu0[k]) / elapsed * 100, 0)
  const drops = dropsBetween(m0.drops, m1.drops)
  const step: StepResult = {
    offeredPerSec: rate,
    seconds: round(elapsed, 1),
    sent: stats.tradesSent - sent0,
    storedPerSec: Math.round((m1.rows - m0.rows) / elapsed),
    backlogAtEnd: backlogOf(stats.tradesSent - (rig.sentBase ?? 0), m1),
    dropped: drops.total,
    latencyMs: { p50: lat.p50, p99: lat.p99, max: lat.max },
    perSec: { consumedBatches: perSec('finnhubd_process_batches_total'), tradeRequests: perSec('finnhubd_cassandra_batches_total'), candleWrites: perSec('finnhubd_candles_written_total') },
    cpuPercent: { daemon: cpu('daemon'), kafka: cpu('kafka'), cassandra: cpu('cassandra'), bench: cpu('bench') },
    sustainable: false
  }
  step.sustainable = sustainable(step)
  const clock = (at: number): number => round((at - (rig.chartOrigin ?? t0)) / 1000, 2)
  return { step, before, after, window, sampler, dropsAtStart: m0.drops, drops, endedAt, sentAtEnd: stats.tradesSent, atEnd: m1, startT: clock(t0), endT: clock(endedAt) }
}

export function phaseOf (name: PhaseResult['name'], run: Run): PhaseResult {
  return {
    name,
    ratePerSec: run.step.offeredPerSec,
    seconds: run.step.seconds,
    sent: run.step.sent,
    storedPerSec: run.step.storedPerSec,
    latencyMs: latencyBetween(run.before.source_to_written, run.after.source_to_written),
    drops: run.drops,
    rssMaxMiB: run.window.rssMaxMiB,
    cpuPercent: run.step.cpuPercent,
    startT: run.startT,
    endT: run.endT,
    perSecond: run.sampler.samples
  }
}

/** A charted phase at a constant rate, then a drain. */
async function chartedPhase (rig: Rig, name: PhaseResult['name'], rate: number, seconds: number): Promise<{ phase: PhaseResult, run: Run }> {
  const run = await runAt(rig, rate, seconds, name, true)
  const phase = phaseOf(name, run)
  progress(`${name} ${rate}/s → stored ${phase.storedPerSec}/s, source_to_written p50 ${phase.latencyMs.p50} ms, p99 ${phase.latencyMs.p99} ms, p99.9 ${phase.latencyMs.p999} ms, max ${phase.latencyMs.max} ms, dropped ${phase.drops.total}`)
  const left = await drain(rig)
  if (left > 0) progress(`after the ${name} phase ${left} trades were still not stored`)
  return { phase, run }
}

/**
 * Twice the sustainable rate for `seconds`, then the recovery: how long until the
 * backlog (sent − stored − counted drops) is under one second of the sustainable
 * rate, sampled every second meanwhile; then a drain, and what is still neither
 * stored nor counted as dropped.
 */
async function overloadPhase (rig: Rig, sustainableRate: number, seconds: number, limitSeconds: number): Promise<OverloadResult> {
  const run = await runAt(rig, 2 * sustainableRate, seconds, 'overload', true)
  const bound = sustainableRate * BACKLOG_BOUND_S
  const backlogAtEnd = backlogOf(run.sentAtEnd, run.atEnd)
  let recoverySeconds: number | null = null
  let nextSample = run.endedAt + 1000
  for (;;) {
    const backlog = backlogOf(run.sentAtEnd, await scrape(rig.daemon))
    const since = Date.now() - run.endedAt
    if (backlog <= bound) { recoverySeconds = round(since / 1000, 1); break }
    if (since > limitSeconds * 1000) break
    if (Date.now() >= nextSample) {
      const { sample } = await run.sampler.sample(false)
      progress(`recovery: ${round(since / 1000, 0)} s after the overload step, backlog ${sample.backlog}, stored ${sample.storedPerSec}/s, source_to_written p99 ${sample.p99Ms ?? '–'} ms this second`)
      nextSample += 1000
    } else {
      await sleep(100)
    }
  }
  const left = await drain(rig)
  const m = await scrape(rig.daemon)
  const sent = (await rig.sim.stats()).tradesSent
  const phase = phaseOf('overload', run)
  // Drops counted and memory used during the recovery and the drain belong to the overload too.
  phase.drops = dropsBetween(run.dropsAtStart, m.drops)
  phase.rssMaxMiB = Math.max(phase.rssMaxMiB, rig.daemon.memory().rssMiB, ...phase.perSecond.map(x => x.rssMiB))
  const result: OverloadResult = {
    ...phase,
    sustainablePerSec: sustainableRate,
    storedToSustainable: sustainableRate > 0 ? round(run.step.storedPerSec / sustainableRate, 2) : NaN,
    backlogAtEnd,
    recoveryBound: bound,
    recoverySeconds,
    recoveryLimitSeconds: limitSeconds,
    unaccountedAfterDrain: Math.max(0, backlogOf(sent, m))
  }
  progress(`overload ${result.ratePerSec}/s → stored ${result.storedPerSec}/s (${result.storedToSustainable} × sustainable), dropped ${result.drops.total}, ` +
    `${recoverySeconds === null ? `no recovery within ${limitSeconds} s` : `recovered in ${recoverySeconds} s`}${left > 0 ? `, ${left} trades still not stored after the drain` : ''}`)
  return result
}

/** The CPU budget at `rate`: the load started, 3 s to settle, `seconds` measured (tools/bench/cpu-budget.ts), then a drain. */
async function cpuBudgetPhase (rig: Rig, rate: number, seconds: number): Promise<{ budget: CpuBudget | null, error: string | null }> {
  progress(`CPU budget at ${rate}/s: ${seconds} s profiled after 3 s of load`)
  await rig.sim.call('rate', { rate })
  try {
    await sleep(3000)
    const budget = await measureCpuBudget(rig.daemon, seconds, async () => (await scrape(rig.daemon)).rows)
    progress(`CPU budget: ${budget.totalUsPerTrade} µs per trade over ${budget.trades} trades`)
    return { budget, error: null }
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err)
    progress(`CPU budget not measured: ${error}`)
    return { budget: null, error }
  } finally {
    await rig.sim.call('pause')
    await drain(rig)
  }
}

/** The sweep: fractions of the lower ceiling (or --rates) until a step fails, then bisection; the sustainable rate is the highest passing step. */
async function sweep (rig: Rig, rates: readonly number[], mode: Mode): Promise<{ steps: StepResult[], sustainableRate: number }> {
  const steps: StepResult[] = []
  const sweepStep = async (rate: number, label: string): Promise<boolean> => {
    const { step } = await runAt(rig, rate, mode.stepSeconds, label)
    steps.push(step)
    progress(`${rate}/s → stored ${step.storedPerSec}/s, backlog at end ${step.backlogAtEnd}, p99 ${step.latencyMs.p99} ms, dropped ${step.dropped}: ${step.sustainable ? 'sustainable' : 'NOT sustainable'}`)
    const left = await drain(rig)
    if (left > 0) progress(`after the step ${left} trades were still not stored`)
    return step.sustainable
  }
  let lastPass = 0
  let firstFail = 0
  for (const [i, rate] of rates.entries()) {
    if (!await sweepStep(rate, `sweep ${i + 1}/${rates.length}`)) { firstFail = rate; break }
    lastPass = rate
  }
  // Even the first step failed (a cold stack, a busy machine): halve until one passes.
  for (let h = 0; h < 3 && lastPass === 0 && firstFail > 100; h++) {
    const lower = Math.max(100, Math.round(firstFail / 200) * 100)
    if (await sweepStep(lower, `lower ${h + 1}/3`)) lastPass = lower
    else firstFail = lower
  }
  // Narrow the gap between the last passing and the first failing rate.
  for (let b = 0; b < mode.bisections && firstFail > 0 && lastPass > 0; b++) {
    const mid = Math.round((lastPass + firstFail) / 200) * 100
    if (mid <= lastPass || mid >= firstFail) break
    if (await sweepStep(mid, `bisect ${b + 1}/${mode.bisections}`)) lastPass = mid
    else firstFail = mid
  }
  const passing = steps.filter(s => s.sustainable)
  return { steps, sustainableRate: passing.length === 0 ? 0 : Math.max(...passing.map(s => s.offeredPerSec)) }
}

/**
 * Both ceilings, each after a warm-up through its own path into a throwaway topic
 * or keyspace (not counted) and a wait until the stack has settled: no compaction
 * running or pending in Cassandra, Kafka and Cassandra idle (at most
 * mode.settleBoundMs). Cassandra's CPU is measured over the raw write.
 */
async function measureCeilings (raw: Record<string, unknown>, config: Config, names: { id: string, topic: string }, pids: Pids, mode: Mode): Promise<BenchReport['ceilings']> {
  const bootstrap = config.kafka.bootstrapServers.join(',')
  const inKeyspace = (keyspace: string): Config => validateConfig({ ...raw, cassandra: { ...(raw['cassandra'] as object), keyspace } })
  const encoder = new TradeEncoder(loadTradeType(resolveSchemaPath(config.schemaPath)), { kind: 'single-object' })
  const trades = syntheticTrades(Math.max(mode.kafkaRecords, mode.cassandraRows), SYMBOLS, Date.now() - 3_600_000, 1)
  const keys = new Map(SYMBOLS.map(s => [s, Buffer.from(s)]))
  const records = trades.slice(0, mode.kafkaRecords).map(tr => ({ key: keys.get(tr.s) as Buffer, value: encoder.encode(tr) }))
  const warmup = { kafkaRecords: Math.round(mode.kafkaRecords * CEILING_WARMUP_SHARE), cassandraRows: Math.round(mode.cassandraRows * CEILING_WARMUP_SHARE) }
  const settled = async (before: string): Promise<SettleResult> => {
    const s = await settle(config.cassandra, { Kafka: pids.kafka, Cassandra: pids.cassandra }, mode.settleBoundMs)
    progress(`settled before the ${before} ceiling after ${s.seconds} s` + (s.timedOut ? ` (gave up: ${s.pending.join(', ')})` : '') +
      (s.compactionsMax === null ? '' : `; compaction tasks: ${s.compactionsAtStart ?? '–'} at the start, ${s.compactionsMax} at most`))
    return s
  }

  progress(`ceiling 1/2: raw Kafka produce of ${mode.kafkaRecords} records (the daemon's producer settings), after a warm-up of ${warmup.kafkaRecords} into a throwaway topic`)
  await createTopic(bootstrap, `${names.topic}.warm`, config.kafka.topicPartitions)
  await createTopic(bootstrap, `${names.topic}.ceiling`, config.kafka.topicPartitions)
  await rawKafkaProduce(config.kafka, `${names.topic}.warm`, records.slice(0, warmup.kafkaRecords))
  const kafkaSettle = await settled('Kafka')
  const kafka = await rawKafkaProduce(config.kafka, `${names.topic}.ceiling`, records)
  progress(`raw Kafka produce: ${kafka.recordsPerSec} records/s`)

  progress(`ceiling 2/2: raw Cassandra write of ${mode.cassandraRows} rows (prepared, batched like the daemon), after a warm-up of ${warmup.cassandraRows} into a throwaway keyspace`)
  await rawCassandraWrite(inKeyspace(`${names.id}_warm`), trades.slice(0, warmup.cassandraRows))
  let cassandraSettle: SettleResult | null = null
  const cassandra = await rawCassandraWrite(inKeyspace(`${names.id}_raw`), trades.slice(0, mode.cassandraRows), {
    beforeTimed: async () => { cassandraSettle = await settled('Cassandra') },
    cpuPid: pids.cassandra
  })
  const cpuUsPerRow = round(cassandra.cpuSeconds * 1e6 / cassandra.rows, 1)
  progress(`raw Cassandra write: ${cassandra.rowsPerSec} rows/s (${cassandra.rowsPerRequest} rows per request, Cassandra CPU ${cpuUsPerRow} µs per row)`)
  return {
    kafkaProducePerSec: kafka.recordsPerSec,
    kafkaRecords: kafka.records,
    cassandraWritePerSec: cassandra.rowsPerSec,
    cassandraRows: cassandra.rows,
    cassandraRowsPerRequest: cassandra.rowsPerRequest,
    lower: Math.min(kafka.recordsPerSec, cassandra.rowsPerSec),
    warmup,
    settle: { kafka: kafkaSettle, cassandra: cassandraSettle ?? kafkaSettle },
    cassandraCpuSeconds: cassandra.cpuSeconds,
    cassandraCpuUsPerRow: cpuUsPerRow
  }
}

/** The daemon as deployed (its own process, under an inspector for the CPU budget), once GET /readyz answers 200. */
async function startDaemon (configFile: string, httpPort: number, base: string, cpuProf: boolean, sim: Sim): Promise<DaemonProcess> {
  const daemon = new DaemonProcess(configFile, httpPort, `${base}.daemon.log`, cpuProf ? `${base}.cpuprofile` : null, { inspect: true })
  const readyBy = Date.now() + 60_000
  for (;;) {
    if (await daemon.ready()) break
    if (daemon.exitCode !== null || Date.now() > readyBy || sim.ended !== null) {
      await daemon.stop()
      throw new Error(`the daemon did not become ready (exit ${String(daemon.exitCode)})${sim.ended !== null ? `: ${sim.ended}` : ''}; see ${base}.daemon.log`)
    }
    await sleep(200)
  }
  progress(`daemon ready (pid ${String(daemon.child.pid)}, ${daemon.url}); log: ${base}.daemon.log`)
  return daemon
}

interface Load {
  steps: StepResult[]
  sustainableRate: number
  cpuBudget: { budget: CpuBudget | null, error: string | null }
  halfRate: number
  latencyRun: Run
  stages: Record<Stage, IntervalLatency>
  phases: BenchReport['phases']
  leftAtEnd: number
  memory: { peakMiB: number, rssMiB: number }
  drops: DropCounts
}

/** The daemon's warm-up, the sweep, the CPU budget at the sustainable rate, the charted phases (half load, steady 2,000/s, overload) and the last drain. */
async function runLoad (rig: Rig, mode: Mode, ratesArg: string | undefined, lowerCeiling: number): Promise<Load> {
  // A warm-up, not counted: JIT, prepared statements, the first candle rebuilds.
  const warmRate = Math.max(100, Math.round(mode.fractions[0] as number * lowerCeiling / 200) * 100)
  await runAt(rig, warmRate, mode.warmupSeconds, 'warm-up')
  await drain(rig)

  // 3. The sweep, then the CPU budget at the sustainable rate.
  const rates = ratesArg !== undefined ? ratesArg.split(',').map(Number) : mode.fractions.map(f => Math.max(100, Math.round(f * lowerCeiling / 100) * 100))
  const { steps, sustainableRate } = await sweep(rig, rates, mode)
  // When no step passed, the lowest step's rate stands in for the sustainable one.
  const baseRate = sustainableRate > 0 ? sustainableRate : (rates[0] ?? 100)
  const cpuBudget = sustainableRate > 0 ? await cpuBudgetPhase(rig, sustainableRate, mode.cpuBudgetSeconds) : { budget: null, error: 'no sweep step was sustainable' }

  // 4. The charted phases: half the sustainable rate (per-stage latency), a steady 2,000/s, the overload step.
  const halfRate = Math.max(50, Math.round(baseRate / 2))
  const latencyPhase = await chartedPhase(rig, 'latency', halfRate, mode.latencySeconds)
  const latencyRun = latencyPhase.run
  const stages = stagesBetween(latencyRun.before, latencyRun.after)
  const steady = (await chartedPhase(rig, 'steady', STEADY_RATE, mode.steadySeconds)).phase
  const overload = await overloadPhase(rig, baseRate, mode.overloadSeconds, mode.recoveryLimitSeconds)
  const phases = { latency: latencyPhase.phase, steady, overload }
  const leftAtEnd = await drain(rig)
  const memory = rig.daemon.memory()
  const drops = (await scrape(rig.daemon)).drops
  return { steps, sustainableRate, cpuBudget, halfRate, latencyRun, stages, phases, leftAtEnd, memory, drops }
}

/** The stack: the local one (started when it is not running), or the cluster named by --kafka and --cassandra. */
export async function openStack (kafka: string | undefined, cassandra: string | undefined): Promise<{ remote: boolean, options: ReturnType<typeof stackOptions>, kafkaBootstrap: string, cassandraHost: string, cassandraPort: number, pids: Pids }> {
  const options = stackOptions(process.env)
  if (kafka !== undefined || cassandra !== undefined) {
    if (kafka === undefined || cassandra === undefined) throw new Error('--kafka HOST:PORT and --cassandra HOST:PORT go together')
    const [host, port] = cassandra.split(':')
    progress(`against Kafka ${kafka} and Cassandra ${host ?? ''}:${port ?? '9042'} (no local stack)`)
    return { remote: true, options, kafkaBootstrap: kafka, cassandraHost: host ?? '', cassandraPort: Number(port ?? '9042'), pids: { kafka: null, cassandra: null, daemon: null } }
  }
  progress('starting the local stack (if it is not running)')
  await up(options, process.env, selectComponents([]), line => { progress(`stack: ${line}`) })
  const endpoints = stackEndpoints(options)
  const [k, c] = selectComponents([])
  return {
    remote: false,
    options,
    kafkaBootstrap: endpoints.kafkaBootstrap,
    cassandraHost: endpoints.cassandraHost,
    cassandraPort: endpoints.cassandraPort,
    pids: { kafka: k === undefined ? null : runningPid(k, options), cassandra: c === undefined ? null : runningPid(c, options), daemon: null }
  }
}

function versions (remote: boolean): Record<string, string> {
  return {
    finnhubd: VERSION,
    node: process.version,
    librdkafka: Kafka.librdkafkaVersion,
    'node-rdkafka': versionOf('node-rdkafka'),
    'cassandra-driver': versionOf('cassandra-driver'),
    piscina: versionOf('piscina'),
    avsc: versionOf('avsc'),
    'hdr-histogram-js': versionOf('hdr-histogram-js'),
    kafka: remote ? 'remote' : pomVersion('kafka'),
    cassandra: remote ? 'remote' : pomVersion('cassandra')
  }
}

/** The bench's command line, parsed. */
interface BenchOptions {
  mode: Mode
  rates: string | undefined
  kafka: string | undefined
  cassandra: string | undefined
  /** --set overrides of the daemon's config (PATH=VALUE). */
  set: string[]
  out: string | undefined
  keep: boolean
  cpuProf: boolean
  console: boolean
}

function parseBenchArgs (args: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      quick: { type: 'boolean' },
      smoke: { type: 'boolean' },
      rates: { type: 'string' },
      'step-seconds': { type: 'string' },
      kafka: { type: 'string' },
      cassandra: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'cpu-prof': { type: 'boolean' },
      console: { type: 'boolean' }
    },
    strict: true
  })
  const mode = { ...MODES[values.smoke === true ? 'smoke' : values.quick === true ? 'quick' : 'full'] }
  if (values['step-seconds'] !== undefined) mode.stepSeconds = Number(values['step-seconds'])
  return {
    mode,
    rates: values.rates,
    kafka: values.kafka,
    cassandra: values.cassandra,
    set: values.set ?? [],
    out: values.out,
    keep: values.keep === true,
    cpuProf: values['cpu-prof'] === true,
    console: values.console === true
  }
}

/** When the run started, its stamp, and the path (without extension) of its report files. */
interface RunFiles { started: number, stamp: string, base: string }

function runFiles (out: string | undefined, mode: Mode): RunFiles {
  const started = Date.now()
  const stamp = new Date(started).toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
  const outDir = out ?? join(PROJECT_ROOT, 'tools', 'bench', 'results')
  mkdirSync(outDir, { recursive: true })
  return { started, stamp, base: join(outDir, `${stamp}-${mode.name}`) }
}

export type Stack = Awaited<ReturnType<typeof openStack>>

/** The run's names, its simulator (started) and the daemon's config (validated, and written to a file). */
export interface RunSetup {
  id: string
  topic: string
  httpPort: number
  sim: Sim
  raw: Record<string, unknown>
  config: Config
  configFile: string
}

export async function prepareRun (stack: Stack, stamp: string, overrides: readonly string[]): Promise<RunSetup> {
  const id = `bench_${stamp.replace('-', '_')}`
  const topic = `finnhub.bench.${stamp}`
  const httpPort = await freePort()
  const sim = new Sim({ token: TOKEN, seed: 7, maxTradesPerFrame: 40, tickMs: 1 })
  await sim.started()
  const raw: Record<string, unknown> = {
    logLevel: 'warn',
    finnhub: { url: sim.url, token: TOKEN, symbols: SYMBOLS },
    kafka: { bootstrapServers: [stack.kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: id, topicPartitions: 3 },
    cassandra: { contactPoints: [stack.cassandraHost], port: stack.cassandraPort, keyspace: id },
    http: { host: '127.0.0.1', port: httpPort }
  }
  for (const s of overrides) setPath(raw, s)
  const config: Config = validateConfig(raw)
  const configFile = join(tmpdir(), `finnhubd-bench-${stamp}.json`)
  writeFileSync(configFile, JSON.stringify(raw, null, 2))
  return { id, topic, httpPort, sim, raw, config, configFile }
}

/** The keyspace and the topic as deployed, then the daemon (ready) and, with --console, a console viewer following it. */
async function startPipeline (setup: RunSetup, stack: Stack, pids: Pids, base: string, opts: BenchOptions): Promise<{ rig: Rig, viewer: ConsoleViewer | null }> {
  await runMigrate(setup.config, CQL_DIR, () => {})
  await createTopic(stack.kafkaBootstrap, setup.topic, setup.config.kafka.topicPartitions)
  await quiet(pids.cassandra)
  const daemon = await startDaemon(setup.configFile, setup.httpPort, base, opts.cpuProf, setup.sim)
  const rig: Rig = { daemon, sim: setup.sim, pids: { ...pids, daemon: daemon.child.pid ?? null }, chartOrigin: null }
  const viewer = opts.console ? new ConsoleViewer(daemon.url, SYMBOLS[0] as string) : null
  if (viewer !== null) {
    viewer.start()
    progress(`console open: following ${daemon.url}/api/stream, polling topic, trades and candles every second`)
  }
  return { rig, viewer }
}

/** Stops the daemon as systemd would (SIGTERM), closes the simulator and accounts for every trade it sent. */
async function stopAndAccount (rig: Rig, config: Config, countedDrops: number): Promise<{ exitCode: number | null, account: IdAccount }> {
  const { daemon, sim } = rig
  daemon.child.kill('SIGTERM')
  const exitCode = await daemon.exited
  progress(`daemon stopped with exit code ${String(exitCode)}; checking every trade sent against Cassandra`)
  const finalStats = await sim.stats()
  const generation = await sim.call('generation') as unknown as { options: GeneratorOptions, calls: GenerationCall[] }
  await sim.call('close')
  const account = await accountFor(config, generation.options, generation.calls, countedDrops)
  if (account.sent !== finalStats.tradesSent) throw new Error(`bench bug: the generation log rebuilds ${account.sent} trades, the simulator sent ${finalStats.tradesSent}`)
  return { exitCode, account }
}

/** Everything the report is made of, phase by phase. */
interface ReportInput {
  opts: BenchOptions
  files: RunFiles
  stack: Stack
  config: Config
  ceilings: BenchReport['ceilings']
  load: Load
  watched: ViewerCounts | null
  account: IdAccount
  exitCode: number | null
}

function stackLabel (stack: Stack): string {
  const { options } = stack
  return stack.remote
    ? `remote: Kafka ${stack.kafkaBootstrap}, Cassandra ${stack.cassandraHost}:${stack.cassandraPort}`
    : `local (${options.dir}), Kafka heap ${options.kafkaHeapMb} MiB, Cassandra heap ${options.cassandraHeapMb} MiB${options.fastUnsafe ? ', Cassandra without fsync' : ''}`
}

function configSummary (opts: BenchOptions, config: Config, watched: ViewerCounts | null): BenchReport['config'] {
  return {
    overrides: opts.set,
    workers: config.workers,
    kafka: { compression: config.kafka.compression, lingerMs: config.kafka.lingerMs, deliveryReports: config.kafka.deliveryReports, topicPartitions: config.kafka.topicPartitions },
    cassandra: { maxConcurrentWrites: config.cassandra.maxConcurrentWrites, batchMaxBytes: config.cassandra.batchMaxBytes },
    symbols: SYMBOLS.length,
    simulator: { maxTradesPerFrame: 40, tickMs: 1 },
    console: watched === null ? 'closed' : { open: 'followed /api/stream; polled /api/topic, /api/trades and /api/candles every second', ...watched }
  }
}

function latencySummary ({ halfRate, latencyRun, stages }: Load): BenchReport['latency'] {
  const elP99s = latencyRun.window.elP99sMs
  return {
    ratePerSec: halfRate,
    seconds: latencyRun.step.seconds,
    stages,
    eventLoopDelayP99Ms: {
      worstSecond: round(latencyRun.window.elMaxP99Ms, 2),
      medianSecond: round([...elP99s].sort((a, b) => a - b)[Math.floor(elP99s.length / 2)] ?? NaN, 2)
    },
    rssMaxMiB: latencyRun.window.rssMaxMiB,
    cpuPercent: latencyRun.step.cpuPercent
  }
}

/** The report, goals included; `chartFile`: where its chart goes. */
function assembleReport (input: ReportInput, chartFile: string): BenchReport {
  const { opts, files, stack, config, ceilings, load, watched, account, exitCode } = input
  const { sustainableRate, cpuBudget, phases, memory } = load
  const report: Omit<BenchReport, 'goals'> = {
    mode: opts.mode.name,
    startedAt: new Date(files.started).toISOString(),
    durationSeconds: Math.round((Date.now() - files.started) / 1000),
    machine: machineInfo(),
    versions: versions(stack.remote),
    stack: stackLabel(stack),
    config: configSummary(opts, config, watched),
    ceilings,
    criteria: { backlogBoundSeconds: BACKLOG_BOUND_S, p99BoundMs: P99_BOUND_MS },
    sweep: load.steps,
    sustainablePerSec: sustainableRate,
    ratios: {
      toKafkaCeiling: round(sustainableRate / ceilings.kafkaProducePerSec, 2),
      toCassandraCeiling: round(sustainableRate / ceilings.cassandraWritePerSec, 2),
      toLowerCeiling: round(sustainableRate / ceilings.lower, 2)
    },
    cpuBudget: cpuBudget.budget,
    cpuBudgetError: cpuBudget.error,
    latency: latencySummary(load),
    phases,
    latencyChart: basename(chartFile),
    memory: { peakRssMiB: memory.peakMiB, rssAtEndMiB: memory.rssMiB },
    counts: { ...account, notStoredAtEnd: load.leftAtEnd },
    drops: load.drops,
    daemonExitCode: exitCode
  }
  return { ...report, goals: computeGoals(report) }
}

/** The chart, the JSON and the Markdown report next to each other. */
function writeReport (full: BenchReport, base: string, chartFile: string): void {
  writeFileSync(chartFile, renderLatencyChart(Object.values(full.phases), `finnhubd bench (${full.mode}), ${full.startedAt}: latency over time`))
  writeFileSync(`${base}.json`, JSON.stringify(full, null, 2) + '\n')
  writeFileSync(`${base}.md`, renderMarkdown(full))
  progress(`report: ${base}.md, ${base}.json and ${chartFile}`)
}

export async function runPipelineBench (args: readonly string[]): Promise<BenchReport> {
  const opts = parseBenchArgs(args)
  const files = runFiles(opts.out, opts.mode)
  const stack = await openStack(opts.kafka, opts.cassandra)
  const setup = await prepareRun(stack, files.stamp, opts.set)
  const { id, topic, config } = setup

  // 1. Ceilings.
  const ceilings = await measureCeilings(setup.raw, config, { id, topic }, stack.pids, opts.mode)

  // 2. The daemon, as deployed.
  const { rig, viewer } = await startPipeline(setup, stack, stack.pids, files.base, opts)

  // 3.–4. The load, from the warm-up to the last drain; on a failure the daemon is stopped, not left running.
  const load = await runLoad(rig, opts.mode, opts.rates, ceilings.lower).catch(async (err: unknown) => { await rig.daemon.stop(); throw err })

  const watched: ViewerCounts | null = viewer === null ? null : await viewer.stop()
  if (watched !== null) progress(`console: ${watched.streamEvents} stream events, ${watched.requests} API requests, ${watched.failures} failed`)

  // 5. Stop the daemon as systemd would and account for every trade.
  const { exitCode, account } = await stopAndAccount(rig, config, load.drops.total)

  // 6. The report.
  const chartFile = `${files.base}.latency.svg`
  const full = assembleReport({ opts, files, stack, config, ceilings, load, watched, account, exitCode }, chartFile)
  writeReport(full, files.base, chartFile)
  if (!opts.keep) await dropRunData(config, [`${id}_raw`, `${id}_warm`], [topic, `${topic}.dlq`, `${topic}.ceiling`, `${topic}.warm`])
  return full
}

/**
 * Rebuilds every trade sent, works out its id as the daemon should, and tallies the
 * ids stored against them (tools/verify/accounting.ts). Trades the daemon counted as
 * dropped (`countedDrops`) were sent and never stored on purpose: lost is what is
 * missing beyond them.
 */
export async function accountFor (config: Config, options: GeneratorOptions, calls: readonly GenerationCall[], countedDrops: number): Promise<IdAccount> {
  const expected = expectedIdTable([{ options, calls }])
  const tally = new StoredRowTally(expected.table)
  const client = await connectCassandra(config.cassandra)
  try {
    for (const [tag, symbol] of expected.symbols.entries()) {
      for (const day of expected.days) {
        const rs = await client.execute(`SELECT trade_id FROM ${config.cassandra.keyspace}.${config.cassandra.tradesTable} WHERE symbol = ? AND day = ?`,
          [symbol, day], { prepare: true, fetchSize: 5000 })
        // The result set fetches the following pages as it is iterated.
        for await (const row of rs) tally.row(String(row.get('trade_id')), tag)
      }
    }
  } finally {
    await client.shutdown()
  }
  return accountIds(expected.sent, tally, countedDrops)
}
