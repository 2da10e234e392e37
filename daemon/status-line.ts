// The live line the demo prints every few seconds: trades/s in (received from
// Finnhub) and out (rows stored), consumer lag, end-to-end p99 of the last 10 s, and
// errors. The numbers come from the same counters and histograms the metrics export;
// computing them is pure. The p99 is of the last 10 s exactly (two snapshots of the
// end-to-end histogram subtracted), not of the metrics' 1–2 minute window, so the
// start-up tail does not linger in the line once it is over.

import type { IngestCounters } from './metrics/ingest.js'
import type { ProcessCounters } from './metrics/process.js'
import { latencyBetween, type StageSnapshot } from './metrics/latency.js'

export interface StatusSample {
  at: number
  received: number
  stored: number
  errors: number
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)

export function sampleStatus (at: number, ingest: IngestCounters | null, proc: ProcessCounters | null): StatusSample {
  return {
    at,
    received: ingest?.tradesReceived ?? 0,
    stored: proc?.rowsWritten ?? 0,
    errors: (ingest === null ? 0 : sum(ingest.malformed) + sum(ingest.tradesRejected) + sum(ingest.dropped) + ingest.framesError) +
      (proc === null ? 0 : sum(proc.poison) + proc.cassandraErrors + proc.commitErrors)
  }
}

/** The window of the line's p99. */
export const P99_WINDOW_MS = 10_000

export function formatStatus (prev: StatusSample, cur: StatusSample, lag: number, p99Ms: number): string {
  const secs = Math.max(0.001, (cur.at - prev.at) / 1000)
  const rate = (a: number, b: number): string => Math.round((b - a) / secs).toLocaleString('en-US')
  return `in ${rate(prev.received, cur.received)}/s  out ${rate(prev.stored, cur.stored)}/s  lag ${lag.toLocaleString('en-US')}  ` +
    `p99 (last ${P99_WINDOW_MS / 1000} s) ${Number.isNaN(p99Ms) ? '-' : `${p99Ms.toFixed(1)} ms`}  errors +${cur.errors - prev.errors}  ` +
    `(stored ${cur.stored.toLocaleString('en-US')} in all)`
}

export interface StatusSources {
  ingest: IngestCounters | null
  process: ProcessCounters | null
  /** The end-to-end histogram since the start (StageLatency.snapshotOf('end_to_end')). */
  endToEnd: () => StageSnapshot
}

/**
 * Snapshots of a histogram in time order, and the p99 of what was recorded since the
 * newest one at least `windowMs` old (since the oldest kept, while none is that old).
 */
export class TrailingP99 {
  readonly #kept: Array<{ at: number, snapshot: StageSnapshot }> = []
  constructor (readonly windowMs: number) {}

  /** Adds `snapshot` taken at `at`; returns the p99 over the trailing window in ms (NaN when nothing was recorded in it). */
  add (at: number, snapshot: StageSnapshot): number {
    let base: StageSnapshot | null = null
    // Drop all but the newest snapshot at least a window old: it is the base.
    while (this.#kept.length > 1 && at - (this.#kept[1] as { at: number }).at >= this.windowMs) this.#kept.shift()
    if (this.#kept.length > 0) base = (this.#kept[0] as { snapshot: StageSnapshot }).snapshot
    this.#kept.push({ at, snapshot })
    if (base === null) return NaN
    const between = latencyBetween(base, snapshot)
    return between.count === 0 ? NaN : between.p99
  }
}

/**
 * The one status-line timer: every `everyMs` it emits the line for the interval just
 * ended (systemd's STATUS= in the daemon, stdout in the demo). Returns its stop.
 */
export function startStatusLine (sources: StatusSources, everyMs: number, emit: (line: string) => void): () => void {
  const sample = (): StatusSample => sampleStatus(Date.now(), sources.ingest, sources.process)
  const p99 = new TrailingP99(P99_WINDOW_MS)
  let prev = sample()
  p99.add(prev.at, sources.endToEnd())
  const timer = setInterval(() => {
    const cur = sample()
    emit(formatStatus(prev, cur, sources.process?.lag ?? 0, p99.add(cur.at, sources.endToEnd())))
    prev = cur
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
