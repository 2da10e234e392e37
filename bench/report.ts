// The pipeline bench's report: its shape (written as JSON), its Markdown rendering
// (also printed at the end of a run), and the bench's pure helpers.

import type { IntervalLatency, Stage } from '../daemon/metrics/latency.js'

/** A step passes when its backlog at the end is under this much of the offered rate, and its p99 under P99_BOUND_MS. */
export const BACKLOG_BOUND_S = 1
export const P99_BOUND_MS = 1000

/** The sum of every series of `name` in a Prometheus text exposition (NaN when absent). */
export function metricSum (text: string, name: string): number {
  let sum = NaN
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue
    const value = Number(line.slice(line.lastIndexOf(' ') + 1))
    sum = Number.isNaN(sum) ? value : sum + value
  }
  return sum
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

/** A step passes when the backlog left at its end is under one second of the offered rate and its p99 is bounded. */
export function sustainable (s: Pick<StepResult, 'offeredPerSec' | 'backlogAtEnd' | 'latencyMs'>): boolean {
  return s.backlogAtEnd <= s.offeredPerSec * BACKLOG_BOUND_S && s.latencyMs.p99 <= P99_BOUND_MS
}

export interface StepResult {
  offeredPerSec: number
  seconds: number
  sent: number
  /** Rows acknowledged by Cassandra per second during the step. */
  storedPerSec: number
  /** Trades sent and not yet stored when the step's sending stopped. */
  backlogAtEnd: number
  /** Intended send time → stored (source_to_written), ms, over the step. */
  latencyMs: { p50: number, p99: number, max: number }
  /** Work per second during the step: consumed batches, Cassandra batch requests for trades, candle writes. */
  perSec: { consumedBatches: number, tradeRequests: number, candleWrites: number }
  /** CPU used during the step, % of one core, per process. */
  cpuPercent: { daemon: number, kafka: number, cassandra: number, bench: number }
  sustainable: boolean
}

export interface Goal { goal: string, value: number | string, met: boolean }

export interface BenchReport {
  mode: 'quick' | 'full' | 'smoke'
  startedAt: string
  durationSeconds: number
  machine: { hostname: string, cpuModel: string, cpus: number, memoryGiB: number, freeMemoryGiB: number, kernel: string, node: string }
  versions: Record<string, string>
  stack: string
  config: Record<string, unknown>
  ceilings: { kafkaProducePerSec: number, kafkaRecords: number, cassandraWritePerSec: number, cassandraRows: number, cassandraRowsPerRequest: number, lower: number }
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
  memory: { peakRssMiB: number, rssAtEndMiB: number }
  counts: { sent: number, distinctTrades: number, identicalResends: number, stored: number, lost: number, duplicated: number, notStoredAtEnd: number }
  daemonExitCode: number | null
  goals: Record<'throughputRatio' | 'p99AtHalfLoad' | 'peakRss' | 'exact', Goal>
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

const n = (x: number): string => Number.isFinite(x) ? x.toLocaleString('en-US') : '–'
const ms = (x: number): string => Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '–'

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
  const goalNames: Record<keyof BenchReport['goals'], string> = {
    throughputRatio: 'sustainable end-to-end throughput / lower ceiling',
    p99AtHalfLoad: 'end-to-end p99 at half the sustainable rate (ms)',
    peakRss: 'daemon peak RSS (MiB)',
    exact: 'exact delivery'
  }
  for (const [k, g] of Object.entries(r.goals) as Array<[keyof BenchReport['goals'], Goal]>) row(goalNames[k], g.goal, String(g.value), g.met ? 'yes' : '**no**')
  lines.push('', '## Throughput', '')
  row('path', 'trades/s', 'ratio of sustainable to it')
  row('---', '---:', '---:')
  row(`raw Kafka produce (${n(r.ceilings.kafkaRecords)} records)`, n(r.ceilings.kafkaProducePerSec), r.ratios.toKafkaCeiling)
  row(`raw Cassandra write (${n(r.ceilings.cassandraRows)} rows, ${r.ceilings.cassandraRowsPerRequest} rows/request)`, n(r.ceilings.cassandraWritePerSec), r.ratios.toCassandraCeiling)
  row('**pipeline, sustainable end to end**', `**${n(r.sustainablePerSec)}**`, `${r.ratios.toLowerCeiling} of the lower ceiling`)
  lines.push('', `Sweep (a step is sustainable when its backlog at the end is under ${r.criteria.backlogBoundSeconds} s of its rate and its p99 ≤ ${r.criteria.p99BoundMs} ms):`, '')
  row('offered/s', 'stored/s', 'backlog at end', 'p50 ms', 'p99 ms', 'max ms', 'batches/s', 'trade requests/s', 'candle writes/s', 'CPU % daemon', 'Kafka', 'Cassandra', 'bench', 'sustainable')
  row('---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---')
  for (const s of r.sweep) {
    row(n(s.offeredPerSec), n(s.storedPerSec), n(s.backlogAtEnd), ms(s.latencyMs.p50), ms(s.latencyMs.p99), ms(s.latencyMs.max),
      n(s.perSec.consumedBatches), n(s.perSec.tradeRequests), n(s.perSec.candleWrites),
      s.cpuPercent.daemon, s.cpuPercent.kafka, s.cpuPercent.cassandra, s.cpuPercent.bench, s.sustainable ? 'yes' : 'no')
  }
  lines.push('', `## Latency at ${n(r.latency.ratePerSec)} trades/s for ${r.latency.seconds} s`, '')
  row('stage', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms')
  row('---', '---:', '---:', '---:', '---:', '---:', '---:')
  for (const [stage, l] of Object.entries(r.latency.stages) as Array<[Stage, IntervalLatency]>) {
    row(`${stage}: ${STAGE_TEXT[stage]}`, n(l.count), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.max))
  }
  lines.push('', `Event-loop delay p99: worst second ${ms(r.latency.eventLoopDelayP99Ms.worstSecond)} ms, median second ${ms(r.latency.eventLoopDelayP99Ms.medianSecond)} ms. ` +
    `CPU % of one core: daemon ${r.latency.cpuPercent.daemon}, Kafka ${r.latency.cpuPercent.kafka}, Cassandra ${r.latency.cpuPercent.cassandra}, bench + simulator ${r.latency.cpuPercent.bench}.`, '')
  lines.push('## Memory and exact counts', '')
  lines.push(`Daemon peak RSS ${r.memory.peakRssMiB} MiB over the whole run (highest step included); ${r.latency.rssMaxMiB} MiB at most during the latency phase; ${r.memory.rssAtEndMiB} MiB at the end.`, '')
  const c = r.counts
  row('sent', 'distinct trades', 'identical re-sends', 'stored', 'lost', 'duplicated', 'not stored after the last drain', 'daemon exit code')
  row('---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:')
  row(n(c.sent), n(c.distinctTrades), n(c.identicalResends), n(c.stored), n(c.lost), n(c.duplicated), n(c.notStoredAtEnd), String(r.daemonExitCode))
  lines.push('', 'Config: `' + JSON.stringify(r.config) + '`', '')
  return lines.join('\n')
}
