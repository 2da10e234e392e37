// "The longest time no trade was stored" of a scenario: the suite samples the daemons'
// stored-row counters (finnhubd_cassandra_rows_written_total) every 0.5 s and keeps a
// running total over every daemon life (a restarted daemon counts from 0 again; a
// killed one keeps what it stored). The longest stretch is the longest interval between
// two samples with the same total while trades were being sent throughout. A sample
// that could not be scraped (the daemon down) carries the last known total: the time a
// dead daemon stores nothing counts, until a scrape shows its successor storing.

import { metricSum } from '../verify/prom-text.js'
import type { DaemonProcess } from '../bench/daemon-process.js'

export interface StoreSample {
  /** Date.now() of the sample. */
  at: number
  /** Rows stored so far by every daemon life (non-decreasing). */
  stored: number
  /** Whether trades were being sent at that moment. */
  sending: boolean
}

/**
 * The longest interval (ms) [a, b] between samples with the same stored total where
 * every sample from a to b was taken while trades were being sent. Samples in time
 * order; 0 when fewer than two such samples.
 */
export function longestNoStore (samples: readonly StoreSample[]): number {
  let longest = 0
  let from: StoreSample | null = null
  for (const s of samples) {
    if (!s.sending) { from = null; continue }
    if (from === null || s.stored !== from.stored) { from = s; continue }
    longest = Math.max(longest, s.at - from.at)
  }
  return longest
}

const SAMPLE_EVERY_MS = 500
const STORED_METRIC = 'finnhubd_cassandra_rows_written_total'

/** Samples the stored total of whichever daemons `daemons` returns, every 0.5 s, until stop(). */
export class StoreWatch {
  readonly samples: StoreSample[] = []
  /** The highest counter seen per daemon process (pid): a life's rows. */
  readonly #perLife = new Map<number, number>()
  #timer: NodeJS.Timeout | null = null
  #busy = false

  start (daemons: () => readonly DaemonProcess[], sending: () => boolean): void {
    this.stop()
    this.#timer = setInterval(() => { this.#sample(daemons(), sending()).catch(() => {}) }, SAMPLE_EVERY_MS)
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  async #sample (daemons: readonly DaemonProcess[], sending: boolean): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      const at = Date.now()
      await Promise.all(daemons.filter(d => d.running).map(async d => {
        try {
          const v = metricSum(await d.metrics(), STORED_METRIC)
          if (Number.isFinite(v)) this.#perLife.set(d.pid, Math.max(this.#perLife.get(d.pid) ?? 0, v))
        } catch { /* down or busy: its last known count stands */ }
      }))
      let stored = 0
      for (const v of this.#perLife.values()) stored += v
      this.samples.push({ at, stored, sending })
    } finally {
      this.#busy = false
    }
  }

  get longestMs (): number { return longestNoStore(this.samples) }
}
