// The scale-out bench's report (tools/bench/scaleout.ts): its shape, the latency of
// several daemons merged into one histogram, and the Markdown. Pure: no I/O.

import * as hdr from 'hdr-histogram-js'
import type { IntervalLatency, StageSnapshot } from '../../daemon/metrics/latency.js'

/** CPU of one process over a window: percent of one core, and CPU µs per stored row. */
export interface ProcessCpu {
  /** `ingest`, `process-1`, `kafka-2`, `cassandra-3`, `bench` (the simulator thread and the bench). */
  name: string
  pid: number | null
  percent: number
  usPerRow: number
}

/** One measured window: the steady phase (open loop at a fixed rate) or the drain of a pre-filled topic. */
export interface ScaleoutWindow {
  seconds: number
  /** Trades offered per second (steady), or in the topic (drain: the total). */
  offeredPerSec: number | null
  storedPerSec: number
  /** Rows each process daemon stored per second in the window. */
  storedPerSecByDaemon: number[]
  /** source_to_written (steady) or consume_to_written (drain), every process daemon's histogram merged, exact over the window. */
  latencyMs: IntervalLatency
  cpu: ProcessCpu[]
  /** The machine's busy share over the window, of all its cores (100 = every core busy). */
  machineBusyPercent: number
}

export interface ScaleoutRun {
  processDaemons: number
  /** Open loop at `rate`: the ingest daemon fed by the simulator, the process daemons storing. */
  steady: ScaleoutWindow & {
    sent: number
    /** Trades sent and neither stored nor counted as dropped after the drain that follows. */
    leftAfterDrain: number
    dropped: number
  }
  /** The process daemons draining a pre-filled topic: stored/s at saturation. */
  drain: ScaleoutWindow & {
    trades: number
    /** Seconds from spawning the daemons until every one of them had stored a row (left out of the window). */
    startupSeconds: number
    /** Distinct rows of the pre-filled trades in Cassandra afterwards. */
    stored: number
    /** Rows the daemons wrote: beyond `stored`, the records consumed again after the group's rebalance (at least once; the same rows). */
    rowsWritten: number
    /** False when one daemon drained the topic before the others stored a row: the window then starts at the first row, and the figure is one daemon's. */
    everyDaemonStored: boolean
  }
}

export interface ScaleoutReport {
  startedAt: string
  durationSeconds: number
  machine: { cpus: number, cpuModel: string, memoryGiB: number }
  stack: {
    cluster: boolean
    kafkaBootstrap: string
    cassandraContactPoints: string[]
    cassandraPort: number
    topicPartitions: number
    topicReplicationFactor: number
    topicMinInsyncReplicas: number
    replication: string
    consistency: string
  }
  ratePerSec: number
  steadySeconds: number
  drainTrades: number
  command: string
  runs: ScaleoutRun[]
}

/**
 * One stage's latency over a window, several daemons' histograms merged: each
 * daemon's snapshot at the end minus its snapshot at the start, all added into one
 * (so the p99 is of every record any daemon stored, not an average of p99s).
 */
export function latencyAcross (pairs: ReadonlyArray<{ before: StageSnapshot | null, after: StageSnapshot }>): IntervalLatency {
  const total = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: 32, useWebAssembly: false })
  try {
    for (const { before, after } of pairs) {
      const h = hdr.decodeFromCompressedBase64(after.histogram, 32, false)
      if (before !== null && before.count > 0) {
        const b = hdr.decodeFromCompressedBase64(before.histogram, 32, false)
        h.subtract(b)
        b.destroy()
      }
      total.add(h)
      h.destroy()
    }
    const ms = (q: number): number => total.totalCount === 0 ? NaN : Math.round((q >= 1 ? total.maxValue : total.getValueAtPercentile(q * 100)) / 10) / 100
    return { count: total.totalCount, p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), p999: ms(0.999), max: ms(1) }
  } finally {
    total.destroy()
  }
}

/** CPU µs per stored row from a share of one core and the stored rate. */
export function usPerStoredRow (percent: number, storedPerSec: number): number {
  return storedPerSec > 0 && Number.isFinite(percent) ? Math.round(percent * 10_000 / storedPerSec * 10) / 10 : NaN
}

const num = (x: number | null): string => x === null || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US')
const ms = (x: number): string => Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '–'

/** The CPU split of a window by kind of process: daemons, Kafka brokers, Cassandra nodes, the bench; percent of one core. */
export function cpuByKind (cpu: readonly ProcessCpu[]): Record<'ingest' | 'process' | 'kafka' | 'cassandra' | 'bench', number> {
  const sum = (prefix: string): number => Math.round(cpu.filter(c => c.name === prefix || c.name.startsWith(`${prefix}-`)).reduce((a, c) => a + (Number.isFinite(c.percent) ? c.percent : 0), 0) * 10) / 10
  return { ingest: sum('ingest'), process: sum('process'), kafka: sum('kafka'), cassandra: sum('cassandra'), bench: sum('bench') }
}

/** Stored/s with N process daemons ÷ stored/s with the fewest measured (1 when there is only one count). */
export function scaleFactors (runs: readonly ScaleoutRun[], window: 'steady' | 'drain'): Map<number, number> {
  const byN = new Map<number, number[]>()
  for (const r of runs) byN.set(r.processDaemons, [...(byN.get(r.processDaemons) ?? []), r[window].storedPerSec])
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  const fewest = Math.min(...byN.keys())
  const base = mean(byN.get(fewest) ?? [NaN])
  return new Map([...byN.entries()].sort((a, b) => a[0] - b[0]).map(([n, xs]) => [n, Math.round(mean(xs) / base * 100) / 100]))
}

function windowRow (label: string, r: ScaleoutRun, w: ScaleoutWindow): string {
  const k = cpuByKind(w.cpu)
  return `| ${r.processDaemons} | ${label} | ${num(w.storedPerSec)} | ${w.storedPerSecByDaemon.map(num).join(' + ')} | ${ms(w.latencyMs.p50)} | ${ms(w.latencyMs.p99)} | ${ms(w.latencyMs.max)} | ` +
    `${k.ingest} | ${k.process} | ${k.kafka} | ${k.cassandra} | ${k.bench} | ${w.machineBusyPercent} |`
}

export function renderScaleoutMarkdown (r: ScaleoutReport): string {
  const s = r.stack
  const out = [
    `# finnhubd scale-out bench, ${r.startedAt}`,
    '',
    `${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB; ${r.durationSeconds} s. ` +
      `${s.cluster ? 'Cluster stack' : 'Single-node stack'}: Kafka ${s.kafkaBootstrap}, Cassandra ${s.cassandraContactPoints.join(', ')} port ${s.cassandraPort}; ` +
      `topic ${s.topicPartitions} partitions, replication ${s.topicReplicationFactor}, min.insync ${s.topicMinInsyncReplicas}; keyspace ${s.replication}, writes at ${s.consistency}.`,
    '',
    `\`${r.command}\``,
    '',
    'One ingest-only daemon (`roles: [ingest]`) fed by the simulator, and N process-only daemons (`roles: [process]`, one consumer group), each its own process.',
    `**steady**: the simulator open loop at ${num(r.ratePerSec)} trades/s for ${r.steadySeconds} s; latency is source_to_written (intended send time → row acknowledged), every process daemon's histogram merged. ` +
      `**drain**: ${num(r.drainTrades)} trades pre-filled into a topic of their own, then the N process daemons started on it: stored/s at saturation (rows written), from the moment every daemon stores to the last row; latency is consume_to_written per batch. ` +
      'A rebalance makes the new owner of a partition write again what the old one had not committed (the same rows, at least once): the counts below give those rewrites.',
    'CPU in % of one core over the window (all processes of a kind added: 3 Kafka brokers, 3 Cassandra nodes); machine busy in % of all its cores.',
    '',
    '| process daemons | window | stored/s | per daemon | p50 ms | p99 ms | max ms | ingest CPU % | process CPU % | Kafka CPU % | Cassandra CPU % | bench + sim CPU % | machine busy % |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  ]
  for (const x of r.runs) {
    out.push(windowRow('steady', x, x.steady))
    out.push(windowRow('drain', x, x.drain))
  }
  const steadyScale = scaleFactors(r.runs, 'steady')
  const drainScale = scaleFactors(r.runs, 'drain')
  out.push('', `Scale-out (stored/s ÷ the fewest daemons' mean): drain ${[...drainScale.entries()].map(([n, f]) => `${n} daemon${n === 1 ? '' : 's'} ${f}×`).join(', ')}; ` +
    `steady ${[...steadyScale.entries()].map(([n, f]) => `${n} ${f}×`).join(', ')}.`)
  out.push('', '## CPU per process', '', '| process daemons | window | process | pid | CPU % of a core | CPU µs per stored row |', '|---|---|---|---|---|---|')
  for (const x of r.runs) {
    for (const [label, w] of [['steady', x.steady], ['drain', x.drain]] as const) {
      for (const c of w.cpu) out.push(`| ${x.processDaemons} | ${label} | ${c.name} | ${c.pid ?? '–'} | ${num(c.percent)} | ${num(c.usPerRow)} |`)
    }
  }
  out.push('', '## Counts', '')
  for (const x of r.runs) {
    out.push(`- ${x.processDaemons} process daemon${x.processDaemons === 1 ? '' : 's'}: steady ${num(x.steady.sent)} sent, ${num(x.steady.dropped)} counted drops, ` +
      `${num(x.steady.leftAfterDrain)} neither stored nor counted after the drain; drain ${num(x.drain.stored)} of ${num(x.drain.trades)} stored (${num(x.drain.rowsWritten)} rows written: ${num(x.drain.rowsWritten - x.drain.stored)} again after the group's rebalance), ` +
      (x.drain.everyDaemonStored
        ? `${x.drain.startupSeconds} s from spawn until every daemon stored (not in the window).`
        : `one daemon drained the topic before the others stored a row: the window is from the first row (${x.drain.startupSeconds} s after spawn), the figure one daemon's.`))
  }
  out.push('')
  return out.join('\n')
}
