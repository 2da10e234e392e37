// The ledger of gaps' metrics (daemon/ingest/gap-ledger.ts), read from its counters at scrape time.

import type { Registry } from 'prom-client'
import { counterFrom, gaugeFrom, labelledCounterFrom, labelledGaugeFrom, zeros } from './collectors.js'
import { GAP_REASONS, type GapReason } from '../core/gaps.js'

export interface GapCounters {
  opened: Record<GapReason, number>
  open: Record<GapReason, number>
  pendingWrites: number
  writeErrors: number
  writesDropped: number
}

export function createGapCounters (): GapCounters {
  return { opened: zeros(GAP_REASONS), open: zeros(GAP_REASONS), pendingWrites: 0, writeErrors: 0, writesDropped: 0 }
}

export function registerGapMetrics (registry: Registry, c: GapCounters): void {
  labelledCounterFrom(registry, 'finnhubd_gaps_total', 'Gaps opened (stretches where trades may be missing from the store), by reason', 'reason', () => c.opened)
  labelledGaugeFrom(registry, 'finnhubd_gap_open', 'Gaps open now, by reason (1 while the socket is down, stalled or refused, or drops go on)', 'reason', () => Object.entries(c.open))
  gaugeFrom(registry, 'finnhubd_gap_writes_pending', 'Gap rows waiting to be written to Cassandra (kept in the state directory)', () => c.pendingWrites)
  counterFrom(registry, 'finnhubd_gap_write_errors_total', 'Failed attempts to write gap rows to Cassandra (retried)', () => c.writeErrors)
  counterFrom(registry, 'finnhubd_gap_writes_dropped_total', 'Gap rows dropped unwritten past gaps.maxPendingWrites', () => c.writesDropped)
}
