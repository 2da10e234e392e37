// What the fault suite watches of the daemon over a scenario, across its restarts: the
// peak resident memory, the longest event-loop stall and the largest producer queue
// (scraped every 0.5 s), and the drops it counted by reason (each life's last scrape,
// corrected by its own final count when it was stopped cleanly).

import { readFileSync } from 'node:fs'
import type { DaemonProcess } from '../bench/daemon-process.js'
import { metricByOnlyLabel, metricSum } from '../verify/prom-text.js'

const SCRAPE_EVERY_MS = 500

export class DaemonObserver {
  peakRssMiB = 0
  maxProducerQueue = 0
  maxStallS = 0
  readonly dropped: Record<string, number> = {}
  #lastMetrics = ''
  #timer: NodeJS.Timeout | null = null

  /** The daemon's metrics now (and remembered as its last seen). */
  async metrics (daemon: DaemonProcess): Promise<string> {
    const text = await daemon.metrics()
    this.#lastMetrics = text
    return text
  }

  /** Scrapes whichever daemon `current` returns, every 0.5 s, until stop(). */
  start (current: () => DaemonProcess): void {
    this.stop()
    this.#timer = setInterval(() => { this.#scrape(current()) }, SCRAPE_EVERY_MS)
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  #scrape (daemon: DaemonProcess): void {
    if (!daemon.running) return
    this.metrics(daemon).then(text => {
      this.maxProducerQueue = Math.max(this.maxProducerQueue, metricSum(text, 'finnhubd_kafka_producer_queue_messages') || 0)
      this.maxStallS = Math.max(this.maxStallS, metricSum(text, 'finnhubd_nodejs_eventloop_lag_max_seconds') || 0)
    }, () => {})
    this.#notePeak(daemon)
  }

  #notePeak (daemon: DaemonProcess): void {
    const mem = daemon.memory()
    if (Number.isFinite(mem.peakMiB)) this.peakRssMiB = Math.max(this.peakRssMiB, mem.peakMiB)
  }

  /** Folds an ending daemon's counters (its last scrape) into the scenario's. */
  endOfLife (daemon: DaemonProcess): void {
    this.#notePeak(daemon)
    for (const [k, v] of Object.entries(metricByOnlyLabel(this.#lastMetrics, 'finnhubd_kafka_dropped_total'))) this.dropped[k] = (this.dropped[k] ?? 0) + v
  }

  /** After a clean stop: the daemon's last word on what it dropped (counted after the final scrape), from its log. */
  finalDrops (logFile: string): void {
    const stopped = readFileSync(logFile, 'utf8').split('\n').filter(l => l.includes('"ingest stopped"')).pop()
    if (stopped === undefined) return
    const line = JSON.parse(stopped) as { dropped?: Record<string, number> }
    const scraped = metricByOnlyLabel(this.#lastMetrics, 'finnhubd_kafka_dropped_total')
    for (const [k, v] of Object.entries(line.dropped ?? {})) this.dropped[k] = (this.dropped[k] ?? 0) + v - (scraped[k] ?? 0)
  }

  get droppedTotal (): number { return Object.values(this.dropped).reduce((a, b) => a + b, 0) }
}
