// Per-stage latency histograms (HDR, microsecond resolution, 1 µs – 1 h, 3
// significant digits) over a sliding window: the current and the previous window
// are kept, so a percentile always covers between one and two windows of data and
// old stalls age out. Recording is one call per batch (recordValueWithCount), not
// per record. Exported to Prometheus as a gauge per stage and quantile, and read by
// the live status line.

import * as hdr from 'hdr-histogram-js'
import { Gauge, type Registry } from 'prom-client'

export const STAGES = ['frame_to_ack', 'consume_to_decoded', 'decoded_to_written', 'consume_to_written', 'end_to_end'] as const
export type Stage = typeof STAGES[number]
export const QUANTILES = [0.5, 0.9, 0.99, 0.999, 1] as const

const build = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })

export class StageLatency {
  readonly #windowMs: number
  readonly #now: () => number
  #windowStart: number
  readonly #current = new Map<Stage, hdr.Histogram>()
  readonly #previous = new Map<Stage, hdr.Histogram>()

  constructor (windowMs = 60_000, now: () => number = Date.now) {
    this.#windowMs = windowMs
    this.#now = now
    this.#windowStart = now()
    for (const s of STAGES) {
      this.#current.set(s, build())
      this.#previous.set(s, build())
    }
  }

  /** Records `count` observations of `ms` milliseconds. */
  record (stage: Stage, ms: number, count = 1): void {
    this.#rotate()
    const us = Math.min(3_600_000_000, Math.max(1, Math.round(ms * 1000)))
    ;(this.#current.get(stage) as hdr.Histogram).recordValueWithCount(us, count)
  }

  /** The q-quantile (0..1) of the window in milliseconds; NaN with no data. */
  quantileMs (stage: Stage, q: number): number {
    this.#rotate()
    const merged = build()
    merged.add(this.#previous.get(stage) as hdr.Histogram)
    merged.add(this.#current.get(stage) as hdr.Histogram)
    const value = merged.totalCount === 0 ? NaN : (q >= 1 ? merged.maxValue : merged.getValueAtPercentile(q * 100)) / 1000
    merged.destroy()
    return value
  }

  count (stage: Stage): number {
    this.#rotate()
    return (this.#previous.get(stage) as hdr.Histogram).totalCount + (this.#current.get(stage) as hdr.Histogram).totalCount
  }

  #rotate (): void {
    const now = this.#now()
    if (now - this.#windowStart < this.#windowMs) return
    const stale = now - this.#windowStart >= 2 * this.#windowMs
    for (const s of STAGES) {
      const prev = this.#previous.get(s) as hdr.Histogram
      const cur = this.#current.get(s) as hdr.Histogram
      prev.reset()
      if (!stale) prev.add(cur)
      cur.reset()
    }
    this.#windowStart = now
  }
}

export function registerLatencyMetrics (registry: Registry, latency: StageLatency): void {
  // eslint-disable-next-line no-new -- registered through `registers`
  new Gauge({
    name: 'finnhubd_stage_latency_seconds',
    help: 'Latency per hot-path stage over a sliding window (HDR histogram quantiles; quantile="1" is the max)',
    labelNames: ['stage', 'quantile'],
    registers: [registry],
    collect () {
      this.reset()
      for (const stage of STAGES) {
        if (latency.count(stage) === 0) continue
        for (const q of QUANTILES) this.set({ stage, quantile: String(q) }, latency.quantileMs(stage, q) / 1000)
      }
    }
  })
}
