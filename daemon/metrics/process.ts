// The process role's Prometheus metrics: plain numbers on `ProcessCounters`
// incremented per batch on the hot path, copied into the registry at scrape time.

import type { Registry } from 'prom-client'
import { counterFrom, gaugeFrom, labelledCounterFrom, labelledGaugeFrom, zeros } from './collectors.js'
import type { RedundancyTally } from '../core/redundancy.js'
import { POISON_REASONS, type PoisonReason } from '../core/avro-codec.js'

export interface ProcessCounters {
  consumed: number
  batches: number
  rowsWritten: number
  cassandraBatches: number
  cassandraErrors: number
  /** Trade rows Cassandra refused as invalid (dead-lettered, never retried). */
  cassandraRejectedRows: number
  candlesWritten: number
  candleLoads: number
  poison: Record<PoisonReason, number>
  deadLettered: number
  deadLetterErrors: number
  commits: number
  commitErrors: number
  inFlightRecords: number
  inFlightBatches: number
  /** Batches stored and waiting for their candles before their offsets may commit. */
  waitingBatches: number
  paused: number
  cassandraInFlight: number
  /** 1 while the last Cassandra request succeeded. */
  cassandraUp: number
  /** Sum of librdkafka's consumer_lag over the assigned partitions (last statistics). */
  lag: number
  lagByPartition: Map<number, number>
}

export function createProcessCounters (): ProcessCounters {
  return {
    consumed: 0,
    batches: 0,
    rowsWritten: 0,
    cassandraBatches: 0,
    cassandraErrors: 0,
    cassandraRejectedRows: 0,
    candlesWritten: 0,
    candleLoads: 0,
    poison: zeros(POISON_REASONS),
    deadLettered: 0,
    deadLetterErrors: 0,
    commits: 0,
    commitErrors: 0,
    inFlightRecords: 0,
    inFlightBatches: 0,
    waitingBatches: 0,
    paused: 0,
    cassandraInFlight: 0,
    cassandraUp: 0,
    lag: 0,
    lagByPartition: new Map()
  }
}

export function registerProcessMetrics (registry: Registry, c: ProcessCounters): void {
  counterFrom(registry, 'finnhubd_kafka_consumed_total', 'Records consumed from the trades topic', () => c.consumed)
  counterFrom(registry, 'finnhubd_process_batches_total', 'Batches consumed and handed to the worker pool (records per batch = consumed ÷ batches)', () => c.batches)
  counterFrom(registry, 'finnhubd_cassandra_rows_written_total', 'Trade rows acknowledged by Cassandra', () => c.rowsWritten)
  counterFrom(registry, 'finnhubd_cassandra_batches_total', 'Single-partition unlogged batches acknowledged by Cassandra', () => c.cassandraBatches)
  counterFrom(registry, 'finnhubd_cassandra_errors_total', 'Cassandra requests that failed (retried, or split when Cassandra refused them as invalid)', () => c.cassandraErrors)
  counterFrom(registry, 'finnhubd_cassandra_rejected_rows_total', 'Trade rows Cassandra refused as invalid (not retried: their records go to the dead-letter topic)', () => c.cassandraRejectedRows)
  counterFrom(registry, 'finnhubd_candles_written_total', 'Candle rows written', () => c.candlesWritten)
  counterFrom(registry, 'finnhubd_candle_rebuilds_total', 'Candle minutes rebuilt from the trades table', () => c.candleLoads)
  labelledCounterFrom(registry, 'finnhubd_poison_records_total', 'Kafka records sent to the dead-letter topic, by reason: not decodable, not a valid trade, processing failed, or refused by Cassandra', 'reason', () => c.poison)
  counterFrom(registry, 'finnhubd_dlq_produced_total', 'Poison records acknowledged by the dead-letter topic', () => c.deadLettered)
  counterFrom(registry, 'finnhubd_kafka_commits_total', 'Offset commits sent', () => c.commits)
  counterFrom(registry, 'finnhubd_kafka_commit_errors_total', 'Offset commits that failed (retried at the next interval)', () => c.commitErrors)
  gaugeFrom(registry, 'finnhubd_process_in_flight_records', 'Records consumed and not yet stored', () => c.inFlightRecords)
  gaugeFrom(registry, 'finnhubd_process_in_flight_batches', 'Batches consumed and not yet stored', () => c.inFlightBatches)
  gaugeFrom(registry, 'finnhubd_process_waiting_batches', 'Batches whose trades are stored and whose candles are not yet durable (their offsets wait)', () => c.waitingBatches)
  gaugeFrom(registry, 'finnhubd_kafka_consumer_paused', '1 while consumption is paused for backpressure', () => c.paused)
  gaugeFrom(registry, 'finnhubd_cassandra_in_flight', 'Cassandra requests outstanding', () => c.cassandraInFlight)
  gaugeFrom(registry, 'finnhubd_cassandra_up', '1 while the last Cassandra request succeeded', () => c.cassandraUp)
  labelledGaugeFrom(registry, 'finnhubd_kafka_consumer_lag', 'Records behind the committed position, per assigned partition (librdkafka statistics)', 'partition',
    () => [...c.lagByPartition].map(([partition, lag]): [string, number] => [String(partition), lag]))
}

export interface WorkerPoolState { utilization: number, queueSize: number, threads: number }

/** The decode worker pool, read at scrape time from Piscina. */
export function registerWorkerPoolMetrics (registry: Registry, read: () => WorkerPoolState): void {
  gaugeFrom(registry, 'finnhubd_worker_pool_utilization', 'Share of the worker pool\'s capacity used since start (Piscina utilization, 0 to 1)', () => read().utilization)
  gaugeFrom(registry, 'finnhubd_worker_queue_tasks', 'Decode tasks waiting for a free worker', () => read().queueSize)
  gaugeFrom(registry, 'finnhubd_worker_threads', 'Worker threads in the decode pool', () => read().threads)
}

/** What the candle book counts of its own (daemon/cassandra/candles.ts). */
export interface CandleBookMetricsSource { requests: number, refused: number, idBytes: number, byResolution: Record<string, number>, periodLoads: number }

export function registerCandleMetrics (registry: Registry, read: () => CandleBookMetricsSource): void {
  counterFrom(registry, 'finnhubd_candle_requests_total', 'Cassandra requests that wrote candles (each an unlogged batch of the minutes due at a flush)', () => read().requests)
  counterFrom(registry, 'finnhubd_candle_writes_refused_total', 'Candle writes Cassandra refused as invalid (the minute is retried with backoff and its batches stay uncommitted; a finnhubd bug)', () => read().refused)
  gaugeFrom(registry, 'finnhubd_candle_id_set_bytes', 'Bytes of trade-id sets the candle book holds (the minutes in memory)', () => read().idBytes)
  labelledCounterFrom(registry, 'finnhubd_candle_rows_written_total', 'Candle rows written, by resolution', 'resolution', () => read().byResolution)
  counterFrom(registry, 'finnhubd_candle_period_loads_total', 'Candle periods (5m and longer) loaded from candles_1m', () => read().periodLoads)
}

/** Redundant ingest (core/redundancy.ts RedundancyTally): per source, the members of the group, `none` and `other`. */
export function registerRedundancyMetrics (registry: Registry, tally: RedundancyTally): void {
  const bySource = (counts: readonly number[]) => (): Record<string, number> => Object.fromEntries(tally.slots.labels.map((l, i) => [l, counts[i] ?? 0]))
  labelledCounterFrom(registry, 'finnhubd_redundant_first_total', 'Trades whose copy from this source was the first the store got, by source (a member of the redundancy group; none: no source header; other: another group\'s or unknown member)', 'source', bySource(tally.first))
  labelledCounterFrom(registry, 'finnhubd_redundant_duplicate_total', 'Trade copies from this source that were already stored (or earlier in the same batch), by source', 'source', bySource(tally.duplicate))
  labelledCounterFrom(registry, 'finnhubd_redundant_single_source_total', 'Trades of closed candle minutes that exactly one member delivered, by that member (counted when the minute leaves the candle book; trades read back from the store after a restart are not counted)', 'source', bySource(tally.single))
}
