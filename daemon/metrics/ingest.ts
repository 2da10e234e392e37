// The ingest role's Prometheus metrics. Hot-path code increments plain numbers on
// `IngestCounters` (one add per frame or per poll, not a prom-client call per trade);
// the registered collectors copy them into the registry when Prometheus scrapes.

import type { Registry } from 'prom-client'
import { counterFrom, gaugeFrom, labelledCounterFrom, zeros } from './collectors.js'
import { FRAME_REJECT_REASONS, TRADE_REJECT_REASONS } from '../core/frame.js'

/** Results of a Finnhub REST request (finnhub/rest.ts), a label of finnhubd_finnhub_rest_requests_total. */
export const REST_RESULTS = ['ok', 'unauthorized', 'rate_limited', 'server_error', 'client_error', 'network_error'] as const
export type RestResult = typeof REST_RESULTS[number]

/** Results of a symbol-discovery run (finnhub/discovery.ts). */
export const DISCOVERY_RUN_RESULTS = ['ok', 'failed', 'cached'] as const
export type DiscoveryRunResult = typeof DISCOVERY_RUN_RESULTS[number]

export interface DiscoveryCounters {
  restRequests: Record<RestResult, number>
  runs: Record<DiscoveryRunResult, number>
  /** Symbols the last good result holds. */
  symbols: number
  /** Unix seconds of the last good run (0: none yet). */
  lastSuccessSeconds: number
  cacheErrors: number
}

export const RECONNECT_CAUSES = ['closed', 'error', 'stale', 'unauthorized', 'rate_limited', 'handshake_failed', 'oversized', 'reload'] as const
export type ReconnectCause = typeof RECONNECT_CAUSES[number]

export const PRODUCE_DROP_REASONS = ['queue_full', 'delivery_failed', 'produce_refused', 'not_connected', 'encode_failed', 'overload'] as const
export type ProduceDropReason = typeof PRODUCE_DROP_REASONS[number]

type Reasons<R extends string> = Record<R, number>

export interface IngestCounters {
  framesTrade: number
  framesPing: number
  framesError: number
  framesOther: number
  malformed: Reasons<typeof FRAME_REJECT_REASONS[number] | 'oversized'>
  tradesReceived: number
  tradesRejected: Reasons<typeof TRADE_REJECT_REASONS[number]>
  reconnects: Reasons<ReconnectCause>
  connected: number
  produced: number
  delivered: number
  dropped: Reasons<ProduceDropReason>
  /** Records librdkafka held (queued or awaiting an ack) at its last statistics event. */
  producerQueue: number
  /** The share of arriving trades dropped for overload now (0–1; daemon/overload.ts). */
  shedShare: number
  /** Symbols the socket is (to be) subscribed to: static plus discovered. */
  subscribedSymbols: number
  discovery: DiscoveryCounters
}

export function createIngestCounters (): IngestCounters {
  return {
    framesTrade: 0,
    framesPing: 0,
    framesError: 0,
    framesOther: 0,
    malformed: zeros([...FRAME_REJECT_REASONS, 'oversized']),
    tradesReceived: 0,
    tradesRejected: zeros(TRADE_REJECT_REASONS),
    reconnects: zeros(RECONNECT_CAUSES),
    connected: 0,
    produced: 0,
    delivered: 0,
    dropped: zeros(PRODUCE_DROP_REASONS),
    producerQueue: 0,
    shedShare: 0,
    subscribedSymbols: 0,
    discovery: { restRequests: zeros(REST_RESULTS), runs: zeros(DISCOVERY_RUN_RESULTS), symbols: 0, lastSuccessSeconds: 0, cacheErrors: 0 }
  }
}

/** Registers the ingest metrics in `registry`, read from `counters` at scrape time. */
export function registerIngestMetrics (registry: Registry, counters: IngestCounters): void {
  labelledCounterFrom(registry, 'finnhubd_ws_frames_total', 'WebSocket frames received from Finnhub, by kind', 'kind', () => ({
    trade: counters.framesTrade,
    ping: counters.framesPing,
    error: counters.framesError,
    other: counters.framesOther,
    malformed: Object.values(counters.malformed).reduce((a, b) => a + b, 0)
  }))
  labelledCounterFrom(registry, 'finnhubd_ws_malformed_frames_total', 'Frames refused whole, by reason', 'reason', () => counters.malformed)
  counterFrom(registry, 'finnhubd_trades_received_total', 'Valid trades received from Finnhub', () => counters.tradesReceived)
  labelledCounterFrom(registry, 'finnhubd_trades_rejected_total', 'Trades dropped by validation, by reason', 'reason', () => counters.tradesRejected)
  labelledCounterFrom(registry, 'finnhubd_ws_reconnects_total', 'Finnhub connections ended and retried, by cause', 'cause', () => counters.reconnects)
  gaugeFrom(registry, 'finnhubd_ws_connected', '1 while the Finnhub WebSocket is open', () => counters.connected)
  counterFrom(registry, 'finnhubd_kafka_produced_total', 'Trade records handed to the Kafka producer', () => counters.produced)
  counterFrom(registry, 'finnhubd_kafka_delivered_total', 'Trade records acknowledged by Kafka (acks=all)', () => counters.delivered)
  labelledCounterFrom(registry, 'finnhubd_kafka_dropped_total', 'Trade records lost before Kafka acknowledged them, by reason', 'reason', () => counters.dropped)
  gaugeFrom(registry, 'finnhubd_kafka_producer_queue_messages', 'Records held by librdkafka (queued or awaiting an ack), from its statistics every kafka.statsIntervalMs',
    () => counters.producerQueue)
  gaugeFrom(registry, 'finnhubd_overload_shed_share', 'Share of arriving trades dropped because the daemon is overloaded (0 to 1; see overload.* in the config)', () => counters.shedShare)
  gaugeFrom(registry, 'finnhubd_subscribed_symbols', 'Symbols subscribed on the Finnhub socket (finnhub.symbols plus discovered ones)', () => counters.subscribedSymbols)
  const d = counters.discovery
  labelledCounterFrom(registry, 'finnhubd_rest_requests_total', 'Requests to Finnhub\'s REST API (symbol discovery), by result', 'result', () => d.restRequests)
  labelledCounterFrom(registry, 'finnhubd_discovery_runs_total', 'Symbol discovery runs by result (cached: a saved result used at start without asking)', 'result', () => d.runs)
  gaugeFrom(registry, 'finnhubd_discovery_symbols', 'Symbols in the last good discovery result', () => d.symbols)
  gaugeFrom(registry, 'finnhubd_discovery_last_success_timestamp_seconds', 'Unix time of the last good discovery run (0: none yet)', () => d.lastSuccessSeconds)
  counterFrom(registry, 'finnhubd_discovery_state_errors_total', 'Saved discovery results that could not be written or read', () => d.cacheErrors)
  gaugeFrom(registry, 'finnhubd_kafka_in_flight', 'Trade records produced but not yet acknowledged or dropped',
    () => counters.produced - counters.delivered - counters.dropped.delivery_failed)
}
