// The shed controller (core/overload.ts) at work in a daemon that runs both roles:
// once a second it reads the main thread's event-loop utilization, the process
// role's backlog (records not yet committed, from the consumer's statistics), what it
// stored and what the socket admitted, and sets the share of arriving trades the
// ingest role drops.

import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import type { Config } from './config/schema.js'
import { ShedController } from './core/overload.js'
import type { Logger } from './log.js'
import type { IngestCounters } from './metrics/ingest.js'
import type { ProcessCounters } from './metrics/process.js'

export interface Shedder {
  /** Of `n` trades just parsed, how many to drop (counted by the caller). */
  drop: (n: number) => number
  stop: () => void
}

export function startShedding (config: () => Config, ingest: IngestCounters, process: ProcessCounters, log: Logger): Shedder {
  let controller = new ShedController(config().overload)
  let settings = config().overload
  let prev: EventLoopUtilization = performance.eventLoopUtilization()
  let rows = process.rowsWritten
  let admitted = ingest.tradesReceived - ingest.dropped.overload
  let at = Date.now()
  const timer = setInterval(() => {
    const now = Date.now()
    const next = config().overload
    if (next !== settings) { settings = next; controller = new ShedController(next) }
    const elu = performance.eventLoopUtilization(prev)
    prev = performance.eventLoopUtilization()
    const storedPerSec = (process.rowsWritten - rows) * 1000 / Math.max(1, now - at)
    rows = process.rowsWritten
    const admittedNow = ingest.tradesReceived - ingest.dropped.overload
    const admittedPerSec = (admittedNow - admitted) * 1000 / Math.max(1, now - at)
    admitted = admittedNow
    at = now
    const before = controller.share
    const share = settings.shed ? controller.update({ utilization: elu.utilization, backlog: process.lag, storedPerSec, admittedPerSec }) : 0
    ingest.shedShare = share
    if (before === 0 && share > 0) {
      log.warn('overloaded: the main thread is saturated and the process role is behind; dropping a share of the arriving trades (finnhubd_kafka_dropped_total{reason="overload"}) until it catches up',
        { share, eventLoopUtilization: Math.round(elu.utilization * 100) / 100, backlog: process.lag, storedPerSec: Math.round(storedPerSec), backlogSeconds: settings.backlogSeconds })
    } else if (before > 0 && share === 0) {
      log.info('no longer overloaded: every arriving trade is produced again', { dropped: ingest.dropped.overload })
    }
  }, 1000)
  timer.unref()
  return {
    drop: n => settings.shed ? controller.drop(n) : 0,
    stop: () => { clearInterval(timer); ingest.shedShare = 0 }
  }
}
