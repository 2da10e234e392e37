// The live line the demo prints every few seconds: trades/s in (received from
// Finnhub) and out (rows stored), consumer lag, end-to-end p99, and errors. The
// numbers come from the same counters the metrics export; computing them is pure.

import type { IngestCounters } from './metrics/ingest.js'
import type { ProcessCounters } from './metrics/process.js'

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

export function formatStatus (prev: StatusSample, cur: StatusSample, lag: number, p99Ms: number): string {
  const secs = Math.max(0.001, (cur.at - prev.at) / 1000)
  const rate = (a: number, b: number): string => Math.round((b - a) / secs).toLocaleString('en-US')
  return `in ${rate(prev.received, cur.received)}/s  out ${rate(prev.stored, cur.stored)}/s  lag ${lag.toLocaleString('en-US')}  ` +
    `p99 ${Number.isNaN(p99Ms) ? '-' : `${p99Ms.toFixed(1)} ms`}  errors +${cur.errors - prev.errors}  ` +
    `(stored ${cur.stored.toLocaleString('en-US')} in all)`
}

export interface StatusSources {
  ingest: IngestCounters | null
  process: ProcessCounters | null
  /** End-to-end p99 in ms (NaN when nothing was measured). */
  p99Ms: () => number
}

/**
 * The one status-line timer: every `everyMs` it emits the line for the interval just
 * ended (systemd's STATUS= in the daemon, stdout in the demo). Returns its stop.
 */
export function startStatusLine (sources: StatusSources, everyMs: number, emit: (line: string) => void): () => void {
  const sample = (): StatusSample => sampleStatus(Date.now(), sources.ingest, sources.process)
  let prev = sample()
  const timer = setInterval(() => {
    const cur = sample()
    emit(formatStatus(prev, cur, sources.process?.lag ?? 0, sources.p99Ms()))
    prev = cur
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
