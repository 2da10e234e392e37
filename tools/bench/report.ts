// The pipeline bench's report: its shape (written as JSON), its Markdown rendering
// (also printed at the end of a run), and the bench's pure helpers.

import type { IntervalLatency, Stage } from '../../daemon/metrics/latency.js'
import type { SettleResult } from './ceilings.js'
import { PALETTE, renderChart, type Series } from './chart.js'
import { renderCpuBudget, type CpuBudget } from './cpu-budget.js'
import type { IdAccount } from '../verify/accounting.js'
import { metricByLabel } from '../verify/prom-text.js'

/** A step passes when its backlog at the end is under this much of the offered rate, and its p99 under P99_BOUND_MS. */
export const BACKLOG_BOUND_S = 1
export const P99_BOUND_MS = 1000

const n = (x: number): string => Number.isFinite(x) ? x.toLocaleString('en-US') : '–'
const ms = (x: number): string => Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '–'

// The Prometheus text reader is shared with the chaos suite and the tests (tools/verify/prom-text.ts).
export { metricByLabel, metricSum } from '../verify/prom-text.js'

/** Trades the daemon dropped on purpose or refused, by reason: Kafka drops and validation rejections. */
export interface DropCounts { kafka: Record<string, number>, rejected: Record<string, number>, total: number }

export const DROP_METRICS = { kafka: 'finnhubd_kafka_dropped_total', rejected: 'finnhubd_trades_rejected_total' } as const

/** The daemon's drop counters in one /metrics text, every reason it exposes. */
export function dropsIn (text: string): DropCounts {
  const kafka = metricByLabel(text, DROP_METRICS.kafka, 'reason')
  const rejected = metricByLabel(text, DROP_METRICS.rejected, 'reason')
  return { kafka, rejected, total: sumOf(kafka) + sumOf(rejected) }
}

/** `after − before`, reason by reason (a reason new in `after` counts from 0). */
export function dropsBetween (before: DropCounts, after: DropCounts): DropCounts {
  const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]))
  const kafka = diff(after.kafka, before.kafka)
  const rejected = diff(after.rejected, before.rejected)
  return { kafka, rejected, total: sumOf(kafka) + sumOf(rejected) }
}

const sumOf = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)

/** CPU µs per row from a CPU % of one core and a rate: % × 10,000 / rows per second. */
export function usPerRow (cpuPercent: number, rowsPerSec: number): number {
  return rowsPerSec > 0 ? Math.round(cpuPercent * 10_000 / rowsPerSec * 10) / 10 : NaN
}

/** Sets `a.b.c=value` in a plain object (value parsed as JSON when it parses, else kept as text). */
export function setPath (target: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=')
  if (eq <= 0) throw new Error(`--set takes key.path=value, got "${assignment}"`)
  const path = assignment.slice(0, eq).split('.')
  const raw = assignment.slice(eq + 1)
  let value: unknown
  try { value = JSON.parse(raw) } catch { value = raw }
  let obj = target
  for (const key of path.slice(0, -1)) {
    const next = obj[key]
    if (next === null || typeof next !== 'object') obj[key] = {}
    obj = obj[key] as Record<string, unknown>
  }
  obj[path[path.length - 1] as string] = value
}

/** A step passes when the backlog left at its end is under one second of the offered rate, its p99 is bounded, and the daemon dropped nothing. */
export function sustainable (s: Pick<StepResult, 'offeredPerSec' | 'backlogAtEnd' | 'latencyMs'> & { dropped?: number }): boolean {
  return s.backlogAtEnd <= s.offeredPerSec * BACKLOG_BOUND_S && s.latencyMs.p99 <= P99_BOUND_MS && (s.dropped ?? 0) === 0
}

export interface StepResult {
  offeredPerSec: number
  seconds: number
  sent: number
  /** Rows acknowledged by Cassandra per second during the step. */
  storedPerSec: number
  /** Trades sent and not yet stored when the step's sending stopped (dropped ones included). */
  backlogAtEnd: number
  /** Trades the daemon counted as dropped or rejected during the step. */
  dropped: number
  /** Intended send time → stored (source_to_written), ms, over the step. */
  latencyMs: { p50: number, p99: number, max: number }
  /** Work per second during the step: consumed batches, Cassandra batch requests for trades, candle writes. */
  perSec: { consumedBatches: number, tradeRequests: number, candleWrites: number }
  /** CPU used during the step, % of one core, per process. */
  cpuPercent: { daemon: number, kafka: number, cassandra: number, bench: number }
  sustainable: boolean
}

export interface Goal { goal: string, value: number | string, met: boolean }

/** One second of a phase, from two GET /latency snapshots and two scrapes a second apart. */
export interface SecondSample {
  /** End of the second, in seconds since the first charted phase began (the chart's x). */
  t: number
  /** False after the sending stopped (the overload step's recovery). */
  sending: boolean
  sentPerSec: number
  storedPerSec: number
  /** source_to_written over that second, ms; null when nothing was stored in it. */
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** Trades sent, not stored and not counted as dropped, at the end of the second. */
  backlog: number
  rssMiB: number
  /** Each stage's slowest record in that second, ms (null: none recorded): where a slow second's time went. */
  stageMaxMs: Record<Stage, number | null>
}

/** A phase at a constant rate, sampled every second. */
export interface PhaseResult {
  name: 'latency' | 'steady' | 'overload'
  ratePerSec: number
  seconds: number
  sent: number
  storedPerSec: number
  /** source_to_written over the whole phase (exact: two snapshots subtracted). */
  latencyMs: IntervalLatency
  /** Counted by the daemon during the phase. */
  drops: DropCounts
  /** The most VmRSS seen in the phase's samples. */
  rssMaxMiB: number
  cpuPercent: StepResult['cpuPercent']
  /** Chart clock (seconds) of the phase's first sample's start and of the end of its sending. */
  startT: number
  endT: number
  perSecond: SecondSample[]
}

/** The overload step: twice the sustainable rate, then the recovery. */
export interface OverloadResult extends PhaseResult {
  sustainablePerSec: number
  /** stored/s during the step ÷ the sustainable rate. */
  storedToSustainable: number
  /** Sent, not stored and not counted as dropped when the sending stopped. */
  backlogAtEnd: number
  /** The backlog recovery waits to go under: one second of the sustainable rate. */
  recoveryBound: number
  /** Seconds from the end of the step until the backlog was under recoveryBound; null: not within recoveryLimitSeconds. */
  recoverySeconds: number | null
  recoveryLimitSeconds: number
  /** After the drain that follows: trades sent (whole run) neither stored nor counted as dropped (0 when every trade is accounted for). */
  unaccountedAfterDrain: number
}

export const GOAL_KEYS = ['throughputRatio', 'p99AtHalfLoad', 'steadyLatency', 'daemonCpuPerTrade', 'processCpuPerRow', 'rowsPerRequest', 'cassandraCpuPerRow', 'peakRss', 'overload', 'exact'] as const
export type GoalKey = typeof GOAL_KEYS[number]

export interface BenchReport {
  mode: 'quick' | 'full' | 'smoke'
  startedAt: string
  durationSeconds: number
  machine: { hostname: string, cpuModel: string, cpus: number, memoryGiB: number, freeMemoryGiB: number, kernel: string, node: string }
  versions: Record<string, string>
  stack: string
  config: Record<string, unknown>
  ceilings: {
    kafkaProducePerSec: number
    kafkaRecords: number
    cassandraWritePerSec: number
    cassandraRows: number
    cassandraRowsPerRequest: number
    lower: number
    /** Records and rows sent through each ceiling's path into a throwaway topic and keyspace before it (not counted). */
    warmup: { kafkaRecords: number, cassandraRows: number }
    /** What the bench waited for before each ceiling, and how long. */
    settle: { kafka: SettleResult, cassandra: SettleResult }
    /** The Cassandra process's CPU during the raw write (NaN against a remote cluster). */
    cassandraCpuSeconds: number
    cassandraCpuUsPerRow: number
  }
  criteria: { backlogBoundSeconds: number, p99BoundMs: number }
  sweep: StepResult[]
  sustainablePerSec: number
  ratios: { toKafkaCeiling: number, toCassandraCeiling: number, toLowerCeiling: number }
  latency: {
    ratePerSec: number
    seconds: number
    stages: Record<Stage, IntervalLatency>
    eventLoopDelayP99Ms: { worstSecond: number, medianSecond: number }
    rssMaxMiB: number
    cpuPercent: StepResult['cpuPercent']
  }
  /** The daemon's CPU per stored trade by stage and thread, at the sustainable rate right after the sweep (tools/bench/cpu-budget.ts); null when it could not be measured. */
  cpuBudget: CpuBudget | null
  cpuBudgetError: string | null
  /** The phases sampled every second, in the order they ran. */
  phases: { latency: PhaseResult, steady: PhaseResult, overload: OverloadResult }
  /** The latency-over-time chart beside the report (file name, relative to it); null when not written. */
  latencyChart: string | null
  memory: { peakRssMiB: number, rssAtEndMiB: number }
  /** The account of every trade sent (tools/verify/accounting.ts), and what was still not stored when the run ended. */
  counts: IdAccount & { notStoredAtEnd: number }
  drops: DropCounts
  daemonExitCode: number | null
  goals: Record<GoalKey, Goal>
}

/** The passing sweep step with the highest offered rate (the sustainable rate's step). */
export function sustainableStep (sweep: readonly StepResult[]): StepResult | undefined {
  let top: StepResult | undefined
  for (const s of sweep) if (s.sustainable && (top === undefined || s.offeredPerSec >= top.offeredPerSec)) top = s
  return top
}

const rowsPerRequestOf = (s: StepResult): number => s.perSec.tradeRequests > 0 ? Math.round(s.storedPerSec / s.perSec.tradeRequests * 10) / 10 : NaN

/** Every goal of the report, from the measured figures. */
export function computeGoals (r: Omit<BenchReport, 'goals'>): Record<GoalKey, Goal> {
  const lat = r.phases.steady.latencyMs
  const top = sustainableStep(r.sweep)
  const daemonUs = top === undefined ? NaN : usPerRow(top.cpuPercent.daemon, top.storedPerSec)
  const processUs = top === undefined ? NaN : usPerRow(top.cpuPercent.daemon + top.cpuPercent.kafka + top.cpuPercent.cassandra, top.storedPerSec)
  const cassandraUs = top === undefined ? NaN : usPerRow(top.cpuPercent.cassandra, top.storedPerSec)
  const ceilingUs = r.ceilings.cassandraCpuUsPerRow
  let lowest: StepResult | undefined
  for (const s of r.sweep) if (lowest === undefined || !(rowsPerRequestOf(s) >= rowsPerRequestOf(lowest))) lowest = s
  const lowestRpr = lowest === undefined ? NaN : rowsPerRequestOf(lowest)
  const o = r.phases.overload
  const c = r.counts
  const at = top === undefined ? 'no sustainable step' : `at ${n(top.offeredPerSec)}/s`
  return {
    throughputRatio: { goal: '≥ 0.8 of the lower ceiling', value: r.ratios.toLowerCeiling, met: r.ratios.toLowerCeiling >= 0.8 },
    p99AtHalfLoad: { goal: 'source_to_written p99 ≤ 25 ms', value: r.latency.stages.source_to_written.p99, met: r.latency.stages.source_to_written.p99 <= 25 },
    steadyLatency: { goal: 'p99 ≤ 25 ms and p99.9 ≤ 50 ms', value: `p99 ${ms(lat.p99)}, p99.9 ${ms(lat.p999)}`, met: lat.p99 <= 25 && lat.p999 <= 50 },
    daemonCpuPerTrade: { goal: '≤ 20 µs', value: `${n(daemonUs)} (${at})`, met: daemonUs <= 20 },
    processCpuPerRow: { goal: '≤ 35 µs', value: `${n(processUs)} (${at})`, met: processUs <= 35 },
    rowsPerRequest: {
      goal: `≥ half the raw ceiling's (${n(r.ceilings.cassandraRowsPerRequest)} / 2 = ${n(r.ceilings.cassandraRowsPerRequest / 2)}) at every step`,
      value: lowest === undefined ? 'no step' : `lowest ${n(lowestRpr)} (at ${n(lowest.offeredPerSec)}/s); ceiling ${n(r.ceilings.cassandraRowsPerRequest)}`,
      met: lowestRpr >= r.ceilings.cassandraRowsPerRequest / 2
    },
    cassandraCpuPerRow: {
      goal: '≤ 1.2 × the raw ceiling\'s',
      value: `${n(cassandraUs)} vs ${n(ceilingUs)} = ${n(Math.round(cassandraUs / ceilingUs * 100) / 100)} × (${at})`,
      met: cassandraUs <= 1.2 * ceilingUs
    },
    peakRss: { goal: '≤ 300 MiB (VmHWM, whole run, overload included)', value: r.memory.peakRssMiB, met: r.memory.peakRssMiB <= 300 },
    overload: {
      goal: 'stored ≥ 0.9 × sustainable, the excess dropped and counted, recovery after',
      value: `${n(o.storedToSustainable)} × sustainable; ${n(o.drops.total)} dropped (counted), ${n(o.unaccountedAfterDrain)} unaccounted; ` +
        (o.recoverySeconds === null ? `no recovery within ${o.recoveryLimitSeconds} s` : `recovered in ${o.recoverySeconds} s`),
      met: o.storedToSustainable >= 0.9 && o.unaccountedAfterDrain <= 0 && o.recoverySeconds !== null
    },
    exact: {
      goal: 'lost = 0 and duplicated = 0 (lost excludes counted drops)',
      value: `${n(c.lost)} lost, ${n(c.duplicated)} duplicated` + (c.countedDrops > 0 ? ` (${n(c.countedDrops)} dropped and counted)` : '') +
        (c.overCountedDrops > 0 ? `; ${n(c.overCountedDrops)} drops counted beyond the trades missing${c.overCountedDrops <= c.identicalResends ? ` (at most the ${n(c.identicalResends)} identical re-sends: a dropped copy of a trade whose twin was stored)` : ''}` : ''),
      // A drop counts a copy, "not stored" counts distinct trades: when one of two
      // identical copies is dropped and the other stored, the drops exceed the missing
      // trades by one. Beyond the identical re-sends, a drop was counted for a stored trade.
      met: c.lost === 0 && c.duplicated === 0 && c.overCountedDrops <= c.identicalResends
    }
  }
}

const STAGE_TEXT: Record<Stage, string> = {
  frame_to_ack: 'frame received → Kafka ack',
  consume_to_decoded: 'consumed → decoded (worker round trip)',
  worker_decode: 'decode + transform inside the worker',
  decoded_to_written: 'decoded → written (Cassandra ack)',
  consume_to_written: 'consumed → written',
  end_to_end: 'frame received → written',
  source_to_written: 'intended send time → written (open-loop end to end)'
}

const PHASE_TEXT: Record<PhaseResult['name'], string> = {
  latency: 'half the sustainable rate',
  steady: 'steady 2,000/s (a busy real feed)',
  overload: '2 × the sustainable rate (overload)'
}

const GOAL_NAMES: Record<GoalKey, string> = {
  throughputRatio: 'sustainable end-to-end throughput / lower ceiling',
  p99AtHalfLoad: 'end-to-end p99 at half the sustainable rate (ms)',
  steadyLatency: 'end-to-end p99 / p99.9 at a steady 2,000 trades/s (ms)',
  daemonCpuPerTrade: 'daemon CPU per stored trade, all threads (µs), highest sustainable step',
  processCpuPerRow: 'process stage CPU per stored row, daemon + Kafka + Cassandra (µs), same step',
  rowsPerRequest: 'trade rows per Cassandra request, every sweep step',
  cassandraCpuPerRow: 'Cassandra CPU per row (µs), pipeline (same step) vs raw ceiling',
  peakRss: 'daemon peak RSS (MiB), every step',
  overload: 'at 2 × the sustainable rate offered',
  exact: 'exact delivery'
}

/** Non-zero drops by reason, e.g. "overload 1,200 (Kafka), price 3 (rejected)"; "0" when none. */
export function dropText (d: DropCounts): string {
  const parts = [
    ...Object.entries(d.kafka).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${n(v)} (Kafka)`),
    ...Object.entries(d.rejected).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${n(v)} (rejected)`)
  ]
  return parts.length === 0 ? '0' : parts.join(', ')
}

const settleText = (what: string, s: SettleResult): string =>
  `${what}: ${s.seconds} s` + (s.timedOut ? ` (**gave up after ${s.boundSeconds} s**: ${s.pending.join(', ')})` : '') +
  (s.compactionsMax === null ? ', compactions not readable' : `, compactions ${s.compactionsAtStart ?? '–'} at the start, ${s.compactionsMax} at most`)

/** The latency-over-time chart: per second, source_to_written p50/p99 (log ms) and sent/stored per second, one line per phase. */
export function renderLatencyChart (phases: readonly PhaseResult[], title: string): string {
  const latency: Series[] = []
  const rates: Series[] = []
  for (const [i, p] of phases.entries()) {
    const color = PALETTE[i % PALETTE.length] as string
    const label = `${p.name} ${n(p.ratePerSec)}/s`
    latency.push({ name: `${label} p99`, color, points: p.perSecond.map(x => [x.t, x.p99Ms] as const) })
    latency.push({ name: `${label} p50`, color, dashed: true, points: p.perSecond.map(x => [x.t, x.p50Ms] as const) })
    rates.push({ name: `${label} stored/s`, color, points: p.perSecond.map(x => [x.t, x.storedPerSec] as const) })
    rates.push({ name: `${label} sent/s`, color, dashed: true, points: p.perSecond.map(x => [x.t, x.sentPerSec] as const) })
  }
  const markers = phases.flatMap(p => [
    { x: p.startT, label: `${p.name} ${n(p.ratePerSec)}/s` },
    ...(p.perSecond.some(x => !x.sending) ? [{ x: p.endT, label: `${p.name} step ends` }] : [])
  ])
  return renderChart({
    title,
    xLabel: 'seconds since the latency phase began (gaps: drains between phases)',
    panels: [
      { yLabel: 'source_to_written ms, per second', logY: true, series: latency, height: 260 },
      { yLabel: 'trades/s', series: rates, height: 160 }
    ],
    markers
  })
}

/** Stages shown for a slow second: where its time went, from the socket to Cassandra. */
const SLOW_STAGES: readonly Stage[] = ['frame_to_ack', 'consume_to_decoded', 'worker_decode', 'decoded_to_written', 'end_to_end', 'source_to_written']

/**
 * The slowest seconds of the latency and steady phases (by source_to_written p99, at
 * most `count` each), with every stage's slowest record in that second: a stall in
 * Kafka shows in frame_to_ack or between the ack and consume (end_to_end beyond
 * frame_to_ack + consume_to_written), one in Cassandra in decoded_to_written, one
 * before the daemon (the simulator, the socket) in source_to_written alone.
 */
export function renderSlowSeconds (phases: BenchReport['phases'], count = 5): string[] {
  const out: string[] = ['', 'Slowest seconds of the latency and steady phases (by source_to_written p99), with each stage\'s slowest record in that second, ms:', '']
  out.push(`| phase | second | p99 ms | ${SLOW_STAGES.join(' | ')} |`, `| --- | ---: | ---: | ${SLOW_STAGES.map(() => '---:').join(' | ')} |`)
  let rows = 0
  for (const p of [phases.latency, phases.steady]) {
    const slow = p.perSecond.filter(x => x.sending && x.p99Ms !== null).sort((a, b) => (b.p99Ms as number) - (a.p99Ms as number)).slice(0, count)
    for (const x of slow) {
      out.push(`| ${p.name} | ${x.t} | ${ms(x.p99Ms as number)} | ${SLOW_STAGES.map(st => { const v = x.stageMaxMs[st]; return v === null ? '–' : ms(v) }).join(' | ')} |`)
      rows++
    }
  }
  return rows === 0 ? [] : out
}

export function renderMarkdown (r: BenchReport): string {
  const lines: string[] = []
  const row = (...cells: Array<string | number>): void => { lines.push(`| ${cells.join(' | ')} |`) }
  lines.push(`# finnhubd bench (${r.mode}), ${r.startedAt}`, '')
  lines.push(`${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}, Node ${r.machine.node}; ` +
    `took ${r.durationSeconds} s. Stack: ${r.stack}.`, '')
  const watched = r.config['console'] as { streamEvents: number, requests: number, failures: number } | 'closed' | undefined
  if (watched !== undefined && watched !== 'closed') {
    lines.push(`The web console was open throughout (\`--console\`): ${n(watched.streamEvents)} stream events, ${n(watched.requests)} API requests, ${n(watched.failures)} failed.`, '')
  }
  lines.push('Versions: ' + Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ') + '.', '')
  lines.push('## Goals', '')
  row('goal', 'target', 'measured', 'met')
  row('---', '---', '---', '---')
  for (const k of GOAL_KEYS) {
    const g = r.goals[k]
    if (g !== undefined) row(GOAL_NAMES[k], g.goal, String(g.value), g.met ? 'yes' : '**no**')
  }
  lines.push('', '## Throughput', '')
  row('path', 'trades/s', 'ratio of sustainable to it')
  row('---', '---:', '---:')
  row(`raw Kafka produce (${n(r.ceilings.kafkaRecords)} records)`, n(r.ceilings.kafkaProducePerSec), r.ratios.toKafkaCeiling)
  row(`raw Cassandra write (${n(r.ceilings.cassandraRows)} rows, ${r.ceilings.cassandraRowsPerRequest} rows/request)`, n(r.ceilings.cassandraWritePerSec), r.ratios.toCassandraCeiling)
  row('**pipeline, sustainable end to end**', `**${n(r.sustainablePerSec)}**`, `${r.ratios.toLowerCeiling} of the lower ceiling`)
  const st = r.ceilings.settle
  lines.push('', 'Settling before each ceiling: a warm-up through the same path into a throwaway topic or keyspace, not counted ' +
    `(${n(r.ceilings.warmup.kafkaRecords)} records, ${n(r.ceilings.warmup.cassandraRows)} rows), then a wait for ${st.cassandra.waitedFor.join(', ')} ` +
    `(at most ${st.cassandra.boundSeconds} s) — ${settleText('before Kafka', st.kafka)}; ${settleText('before Cassandra', st.cassandra)}. ` +
    `Cassandra used ${n(r.ceilings.cassandraCpuSeconds)} CPU s during the raw write: ${n(r.ceilings.cassandraCpuUsPerRow)} µs per row.`)
  lines.push('', `Sweep (a step is sustainable when its backlog at the end is under ${r.criteria.backlogBoundSeconds} s of its rate and its p99 ≤ ${r.criteria.p99BoundMs} ms; ` +
    'µs/row = CPU % × 10,000 ÷ stored/s):', '')
  row('offered/s', 'stored/s', 'backlog at end', 'p50 ms', 'p99 ms', 'max ms', 'batches/s', 'trade requests/s', 'rows/request', 'candle writes/s',
    'CPU % daemon', 'Kafka', 'Cassandra', 'bench', 'µs/row daemon', 'daemon + Kafka + Cassandra', 'Cassandra', 'sustainable')
  row('---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---')
  for (const s of r.sweep) {
    const c = s.cpuPercent
    row(n(s.offeredPerSec), n(s.storedPerSec), n(s.backlogAtEnd), ms(s.latencyMs.p50), ms(s.latencyMs.p99), ms(s.latencyMs.max),
      n(s.perSec.consumedBatches), n(s.perSec.tradeRequests), n(rowsPerRequestOf(s)), n(s.perSec.candleWrites),
      c.daemon, c.kafka, c.cassandra, c.bench,
      n(usPerRow(c.daemon, s.storedPerSec)), n(usPerRow(c.daemon + c.kafka + c.cassandra, s.storedPerSec)), n(usPerRow(c.cassandra, s.storedPerSec)),
      s.sustainable ? 'yes' : 'no')
  }
  lines.push('')
  if (r.cpuBudget !== null) lines.push(renderCpuBudget(r.cpuBudget).trimEnd())
  else lines.push('## CPU budget', '', `Not measured: ${r.cpuBudgetError ?? 'no sustainable step'}.`)
  lines.push('', `## Latency at ${n(r.latency.ratePerSec)} trades/s for ${r.latency.seconds} s`, '')
  row('stage', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms')
  row('---', '---:', '---:', '---:', '---:', '---:', '---:')
  for (const [stage, l] of Object.entries(r.latency.stages) as Array<[Stage, IntervalLatency]>) {
    row(`${stage}: ${STAGE_TEXT[stage]}`, n(l.count), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.max))
  }
  lines.push('', `Event-loop delay p99: worst second ${ms(r.latency.eventLoopDelayP99Ms.worstSecond)} ms, median second ${ms(r.latency.eventLoopDelayP99Ms.medianSecond)} ms. ` +
    `CPU % of one core: daemon ${r.latency.cpuPercent.daemon}, Kafka ${r.latency.cpuPercent.kafka}, Cassandra ${r.latency.cpuPercent.cassandra}, bench + simulator ${r.latency.cpuPercent.bench}.`, '')
  lines.push('## Latency over time', '')
  if (r.latencyChart !== null) lines.push(`![latency over time](${r.latencyChart})`, '')
  lines.push('Per second of each phase (GET /latency every second, consecutive snapshots subtracted): source_to_written p50 and p99, sent/s and stored/s; ' +
    'the whole phase\'s figures below are exact over it.', '')
  row('phase', 'offered/s', 'seconds', 'sent', 'stored/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'dropped, by reason', 'peak RSS MiB', 'CPU % daemon', 'Kafka', 'Cassandra')
  row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---', '---:', '---:', '---:', '---:')
  for (const p of Object.values(r.phases)) {
    const l = p.latencyMs
    row(`${p.name}: ${PHASE_TEXT[p.name]}`, n(p.ratePerSec), p.seconds, n(p.sent), n(p.storedPerSec), ms(l.p50), ms(l.p99), ms(l.p999), ms(l.max),
      dropText(p.drops), n(p.rssMaxMiB), p.cpuPercent.daemon, p.cpuPercent.kafka, p.cpuPercent.cassandra)
  }
  lines.push(...renderSlowSeconds(r.phases))
  const o = r.phases.overload
  lines.push('', `Overload: ${n(o.ratePerSec)} trades/s offered (2 × the sustainable ${n(o.sustainablePerSec)}/s) for ${o.seconds} s; stored ${n(o.storedPerSec)}/s = ` +
    `${n(o.storedToSustainable)} × the sustainable rate; ${n(o.drops.total)} dropped and counted${o.drops.total > 0 ? ` (${dropText(o.drops)})` : ''}; backlog (sent − stored − dropped) ${n(o.backlogAtEnd)} when the step ended, ` +
    (o.recoverySeconds === null
      ? `**not back under ${n(o.recoveryBound)} (one second of the sustainable rate) within ${o.recoveryLimitSeconds} s**`
      : o.recoverySeconds === 0 ? `already under ${n(o.recoveryBound)} (one second of the sustainable rate)` : `back under ${n(o.recoveryBound)} (one second of the sustainable rate) ${o.recoverySeconds} s later`) +
    `; after the drain, ${n(o.unaccountedAfterDrain)} trades neither stored nor counted as dropped.`, '')
  lines.push('## Memory and exact counts', '')
  lines.push(`Daemon peak RSS ${r.memory.peakRssMiB} MiB over the whole run (highest step and overload included); ${r.latency.rssMaxMiB} MiB at most during the latency phase; ${r.memory.rssAtEndMiB} MiB at the end.`, '')
  const c = r.counts
  row('sent', 'distinct trades', 'identical re-sends', 'stored', 'not stored', 'dropped and counted', 'lost', 'duplicated', 'not stored after the last drain', 'daemon exit code')
  row('---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:')
  row(n(c.sent), n(c.distinctTrades), n(c.identicalResends), n(c.stored), n(c.notStored), n(c.countedDrops), n(c.lost), n(c.duplicated), n(c.notStoredAtEnd), String(r.daemonExitCode))
  lines.push('', `Lost = not stored − dropped and counted${c.overCountedDrops > 0 ? ` (**${n(c.overCountedDrops)} more drops counted than trades missing**)` : ''}. ` +
    `Drops over the whole run, by reason (\`finnhubd_kafka_dropped_total\`, \`finnhubd_trades_rejected_total\`): ${dropText(r.drops)}.`, '')
  lines.push('Config: `' + JSON.stringify(r.config) + '`', '')
  return lines.join('\n')
}
