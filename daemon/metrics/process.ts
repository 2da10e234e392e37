// The process role's Prometheus metrics: plain numbers on `ProcessCounters`
// incremented per batch on the hot path, copied into the registry at scrape time.

import { Counter, Gauge, type Registry } from 'prom-client'
import { POISON_REASONS, type PoisonReason } from '../core/avro-codec.js'

export interface ProcessCounters {
  consumed: number
  batches: number
  rowsWritten: number
  cassandraBatches: number
  cassandraErrors: number
  candlesWritten: number
  candleLoads: number
  poison: Record<PoisonReason, number>
  deadLettered: number
  deadLetterErrors: number
  commits: number
  commitErrors: number
  inFlightRecords: number
  inFlightBatches: number
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
    candlesWritten: 0,
    candleLoads: 0,
    poison: Object.fromEntries(POISON_REASONS.map(r => [r, 0])) as Record<PoisonReason, number>,
    deadLettered: 0,
    deadLetterErrors: 0,
    commits: 0,
    commitErrors: 0,
    inFlightRecords: 0,
    inFlightBatches: 0,
    paused: 0,
    cassandraInFlight: 0,
    cassandraUp: 0,
    lag: 0,
    lagByPartition: new Map()
  }
}

export function registerProcessMetrics (registry: Registry, c: ProcessCounters): void {
  const counter = (name: string, help: string, read: () => number): void => {
    // eslint-disable-next-line no-new -- registered through `registers`
    new Counter({ name, help, registers: [registry], collect () { this.reset(); this.inc(read()) } })
  }
  const gauge = (name: string, help: string, read: () => number): void => {
    // eslint-disable-next-line no-new -- registered through `registers`
    new Gauge({ name, help, registers: [registry], collect () { this.set(read()) } })
  }
  counter('finnhubd_kafka_consumed_total', 'Records consumed from the trades topic', () => c.consumed)
  counter('finnhubd_cassandra_rows_written_total', 'Trade rows acknowledged by Cassandra', () => c.rowsWritten)
  counter('finnhubd_cassandra_batches_total', 'Single-partition unlogged batches acknowledged by Cassandra', () => c.cassandraBatches)
  counter('finnhubd_cassandra_errors_total', 'Cassandra requests that failed (each is retried)', () => c.cassandraErrors)
  counter('finnhubd_candles_written_total', 'Candle rows written', () => c.candlesWritten)
  counter('finnhubd_candle_rebuilds_total', 'Candle minutes rebuilt from the trades table', () => c.candleLoads)
  // eslint-disable-next-line no-new -- registered through `registers`
  new Counter({
    name: 'finnhubd_poison_records_total',
    help: 'Kafka records that could not be decoded, by reason (sent to the dead-letter topic)',
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [reason, n] of Object.entries(c.poison)) this.inc({ reason }, n)
    }
  })
  counter('finnhubd_dlq_produced_total', 'Poison records acknowledged by the dead-letter topic', () => c.deadLettered)
  counter('finnhubd_kafka_commits_total', 'Offset commits sent', () => c.commits)
  counter('finnhubd_kafka_commit_errors_total', 'Offset commits that failed (retried at the next interval)', () => c.commitErrors)
  gauge('finnhubd_process_in_flight_records', 'Records consumed and not yet stored', () => c.inFlightRecords)
  gauge('finnhubd_process_in_flight_batches', 'Batches consumed and not yet stored', () => c.inFlightBatches)
  gauge('finnhubd_kafka_consumer_paused', '1 while consumption is paused for backpressure', () => c.paused)
  gauge('finnhubd_cassandra_in_flight', 'Cassandra requests outstanding', () => c.cassandraInFlight)
  gauge('finnhubd_cassandra_up', '1 while the last Cassandra request succeeded', () => c.cassandraUp)
  // eslint-disable-next-line no-new -- registered through `registers`
  new Gauge({
    name: 'finnhubd_kafka_consumer_lag',
    help: 'Records behind the partition end, per assigned partition (librdkafka statistics)',
    labelNames: ['partition'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [partition, lag] of c.lagByPartition) this.set({ partition: String(partition) }, lag)
    }
  })
}
