// The console's Pipeline view, pure: one snapshot of the counters the metrics export
// (ingest, process, latency, readiness), and the rates between two snapshots. The
// console builds one snapshot a second while someone watches and sends the same one
// to every open page, so watching costs the pipeline one small object a second, not
// work per trade or per page.

import type { Readiness } from '../readiness.js'
import type { IngestCounters } from '../metrics/ingest.js'
import type { ProcessCounters } from '../metrics/process.js'
import type { Stage } from '../metrics/latency.js'

export interface Totals {
  received: number
  delivered: number
  consumed: number
  written: number
}

export interface PipelineSnapshot {
  at: number
  uptimeSeconds: number
  roles: string[]
  totals: Totals
  /** Per second since the previous snapshot (0 for the first). */
  rates: Totals
  /** Per stage, p50 and p99 in ms over the metrics' sliding window; null with no samples. */
  latency: Record<string, { p50: number, p99: number } | null>
  lag: number
  producerQueue: number
  inFlightRecords: number
  subscribedSymbols: number
  /** Each kind of error or drop, by reason, since the start. */
  errors: Record<string, Record<string, number>>
  reconnects: Record<string, number>
  connections: Readiness['checks']
  ready: boolean
}

export interface SnapshotSources {
  startedAt: number
  roles: readonly string[]
  ingest: IngestCounters | null
  process: ProcessCounters | null
  /** p50 and p99 of a stage in ms (NaN without samples). */
  quantiles: (stage: Stage) => readonly number[]
  stages: readonly Stage[]
  readiness: () => Readiness
}

export function takeSnapshot (src: SnapshotSources, now: number, previous: PipelineSnapshot | null): PipelineSnapshot {
  const i = src.ingest
  const p = src.process
  const totals: Totals = {
    received: i?.tradesReceived ?? 0,
    delivered: i?.delivered ?? 0,
    consumed: p?.consumed ?? 0,
    written: p?.rowsWritten ?? 0
  }
  const secs = previous === null ? 0 : (now - previous.at) / 1000
  const rate = (k: keyof Totals): number => secs <= 0 || previous === null ? 0 : Math.max(0, Math.round((totals[k] - previous.totals[k]) / secs))
  const latency: PipelineSnapshot['latency'] = {}
  for (const stage of src.stages) {
    const [p50, p99] = src.quantiles(stage)
    latency[stage] = p50 === undefined || p99 === undefined || Number.isNaN(p50) || Number.isNaN(p99) ? null : { p50: round3(p50), p99: round3(p99) }
  }
  const errors: PipelineSnapshot['errors'] = {}
  if (i !== null) {
    errors['malformed_frames'] = { ...i.malformed }
    errors['rejected_trades'] = { ...i.tradesRejected }
    errors['kafka_dropped'] = { ...i.dropped }
    errors['finnhub_error_frames'] = { error: i.framesError }
  }
  if (p !== null) {
    errors['poison_records'] = { ...p.poison }
    errors['cassandra'] = { request_errors: p.cassandraErrors }
    errors['kafka_commits'] = { commit_errors: p.commitErrors }
  }
  const readiness = src.readiness()
  return {
    at: now,
    uptimeSeconds: Math.round((now - src.startedAt) / 1000),
    roles: [...src.roles],
    totals,
    rates: { received: rate('received'), delivered: rate('delivered'), consumed: rate('consumed'), written: rate('written') },
    latency,
    lag: p?.lag ?? 0,
    producerQueue: i?.producerQueue ?? 0,
    inFlightRecords: p?.inFlightRecords ?? 0,
    subscribedSymbols: i?.subscribedSymbols ?? 0,
    errors,
    reconnects: i === null ? {} : { ...i.reconnects },
    connections: readiness.checks,
    ready: readiness.ready
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000
