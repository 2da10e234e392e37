// The ceilings the pipeline is measured against, on the same machine, the same
// stack and the same rows:
//  - raw Kafka produce: pre-encoded Avro values, keyed by symbol, produced as fast as
//    librdkafka takes them with the daemon's producer settings (idempotent, acks=all,
//    the configured compression, linger and batch size), until the last one is
//    acknowledged;
//  - raw Cassandra write: the same trades as rows, written straight from the main
//    thread with the daemon's prepared, batched TradeWriter and as many requests in
//    flight as the pipeline allows batches in flight (no Kafka, no decode, no candles).

import { readFileSync } from 'node:fs'
import Kafka from 'node-rdkafka'
import type { Config } from '../daemon/config/schema.js'
import { runMigrate } from '../daemon/cassandra/migrate-command.js'
import { connectCassandra } from '../daemon/cassandra/client.js'
import { CassandraExecutor, TradeWriter } from '../daemon/cassandra/writer.js'
import type { TradeRecord } from '../daemon/core/trade-schema.js'
import { toTradeRow } from '../daemon/core/transform.js'
import { createLogger } from '../daemon/log.js'
import { createProcessCounters } from '../daemon/metrics/process.js'
import { CQL_DIR } from '../daemon/paths.js'

/** CPU time (user + system) from a /proc stat file, in ms; NaN when it cannot be read. */
export function procCpuMs (statFile: string): number {
  try {
    const fields = readFileSync(statFile, 'utf8').split(') ')[1]?.split(' ') ?? []
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return NaN
  }
}

/** CPU seconds (user + system, all threads) a process has used, from /proc. */
export function cpuSeconds (pid: number | null): number {
  return pid === null ? NaN : procCpuMs(`/proc/${pid}/stat`) / 1000
}

/** Waits (at most 60 s) until a process uses under 10 % of a core for two samples in a row. */
export async function quiet (pid: number | null): Promise<void> {
  if (pid === null) return
  let calm = 0
  const until = Date.now() + 60_000
  let last = cpuSeconds(pid)
  while (calm < 2 && Date.now() < until) {
    await new Promise(resolve => setTimeout(resolve, 500))
    const now = cpuSeconds(pid)
    calm = now - last < 0.05 ? calm + 1 : 0
    last = now
  }
}

export interface RawKafkaResult { records: number, seconds: number, recordsPerSec: number }

/** Produces every value (keyed) with the daemon's producer settings; timed from the first produce to the last acknowledgement. */
export async function rawKafkaProduce (kafka: Config['kafka'], topic: string, records: ReadonlyArray<{ key: Buffer, value: Buffer }>): Promise<RawKafkaResult> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': kafka.bootstrapServers.join(','),
    'enable.idempotence': true,
    'compression.codec': kafka.compression,
    'linger.ms': kafka.lingerMs,
    'batch.size': kafka.batchSizeBytes,
    'queue.buffering.max.messages': 2_000_000,
    'queue.buffering.max.kbytes': 2_097_151,
    dr_cb: true,
    'delivery.report.only.error': true
  } as Kafka.ProducerGlobalConfig, { 'request.required.acks': -1 })
  await new Promise<void>((resolve, reject) => { producer.connect({ timeout: 15_000 }, err => { err ? reject(err) : resolve() }) })
  producer.setPollInterval(25)
  let failed: Error | null = null
  producer.on('delivery-report', err => { if (err) failed = new Error(`raw produce: a record was not acknowledged: ${err.message}`) })
  const started = process.hrtime.bigint()
  for (const r of records) {
    for (;;) {
      try {
        producer.produce(topic, null, r.value, r.key, Date.now())
        break
      } catch (err) {
        if ((err as { code?: number }).code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) throw err
        await new Promise(resolve => setTimeout(resolve, 1))
      }
    }
  }
  await new Promise<void>((resolve, reject) => { producer.flush(120_000, err => { err ? reject(err) : resolve() }) })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })
  if (failed !== null) throw failed
  return { records: records.length, seconds: round(seconds, 2), recordsPerSec: Math.round(records.length / seconds) }
}

/** CPU µs per row by process. */
export interface CpuShare { node: number, kafka: number, cassandra: number }

export interface RawCassandraResult { rows: number, seconds: number, rowsPerSec: number, rowsPerRequest: number }

/** Writes the trades as rows into `config`'s keyspace (migrated here) the way the daemon does; timed from the first write to the last acknowledgement. */
export async function rawCassandraWrite (config: Config, trades: readonly TradeRecord[]): Promise<RawCassandraResult> {
  await runMigrate(config, CQL_DIR, () => {})
  const client = await connectCassandra(config.cassandra)
  try {
    const counters = createProcessCounters()
    const opts = { client, cassandra: config.cassandra, log: createLogger({ level: 'warn' }), counters }
    const writer = new TradeWriter(new CassandraExecutor(opts), opts)
    const started = process.hrtime.bigint()
    // As many chunks in flight as the pipeline allows batches in flight, rows made as they go.
    let next = 0
    await Promise.all(Array.from({ length: config.workers.maxQueue }, async () => {
      while (next < trades.length) {
        const from = next
        next += config.workers.batchSize
        await writer.write(trades.slice(from, from + config.workers.batchSize).map(tr => toTradeRow(tr, Date.now())))
      }
    }))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    return {
      rows: trades.length,
      seconds: round(seconds, 2),
      rowsPerSec: Math.round(trades.length / seconds),
      rowsPerRequest: round(counters.rowsWritten / Math.max(1, counters.cassandraBatches), 1)
    }
  } finally {
    await client.shutdown()
  }
}

export function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
