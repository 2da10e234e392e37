// The daemon's metrics registry: Node's process metrics, the stage latency
// histograms and the daemon's own counters. The roles add theirs when they start
// (metrics/ingest.ts, metrics/process.ts). Every name starts with finnhubd_.

import { Registry, collectDefaultMetrics } from 'prom-client'
import { labelledCounterFrom } from './collectors.js'
import { registerLatencyMetrics, type StageLatency } from './latency.js'

export interface ReloadCounts { applied: number, unchanged: number, failed: number }

export function createRegistry (latency: StageLatency, reloads: ReloadCounts): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'finnhubd_' })
  registerLatencyMetrics(registry, latency)
  labelledCounterFrom(registry, 'finnhubd_config_reloads_total', 'SIGHUP reloads by result', 'result', () => ({ ...reloads }))
  return registry
}
