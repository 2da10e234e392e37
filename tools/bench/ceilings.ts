// The ceilings the pipeline is measured against, on the same machine, the same
// stack and the same rows:
//  - raw Kafka produce: pre-encoded Avro values, keyed by symbol, produced as fast as
//    librdkafka takes them with the daemon's producer settings (idempotent, acks=all,
//    the configured compression, linger and batch size), until the last one is
//    acknowledged;
//  - raw Cassandra write: the same trades as rows, written straight from the main
//    thread with the daemon's prepared, batched TradeWriter and as many requests in
//    flight as the pipeline allows batches in flight (no Kafka, no decode, no candles).
// Before each, settle(): the stack waits until Cassandra has no compaction pending
// or running and Kafka and Cassandra are idle, so a freshly started stack (still
// compacting its system tables) does not flatter the ratio with a low ceiling.

import { CLOCK_TICKS_PER_SEC, readProcTicks } from './proc-stat.js'
import type cassandra from 'cassandra-driver'
import Kafka from 'node-rdkafka'
import type { Config } from '../../daemon/config/schema.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { CassandraExecutor, TradeWriter } from '../../daemon/cassandra/writer.js'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'
import { toTradeRow } from '../../daemon/core/transform.js'
import { createLogger } from '../../daemon/log.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { CQL_DIR } from '../../daemon/paths.js'

/** CPU time (user + system) from a /proc stat file, in ms; NaN when it cannot be read. */
export function procCpuMs (statFile: string): number {
  const ticks = readProcTicks(null, statFile)
  return ticks === null ? NaN : ticks * 1000 / CLOCK_TICKS_PER_SEC
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

/** Compaction tasks Cassandra is running or has queued (system_views, Cassandra 4+); null when it does not say. */
export async function compactionTasks (client: cassandra.Client): Promise<number | null> {
  try {
    const pool = (await client.execute('SELECT active_tasks, pending_tasks FROM system_views.thread_pools WHERE name = ?', ['CompactionExecutor'], { prepare: true })).first()
    const running = (await client.execute('SELECT task_id FROM system_views.sstable_tasks')).rowLength
    return Number(pool?.get('active_tasks') ?? 0) + Number(pool?.get('pending_tasks') ?? 0) + running
  } catch {
    return null
  }
}

export interface SettleResult {
  /** What the wait was for, in words. */
  waitedFor: string[]
  seconds: number
  boundSeconds: number
  timedOut: boolean
  /** What was still not settled when the wait gave up (empty when it did not). */
  pending: string[]
  /** Compaction tasks (running + pending) at the start and the most seen; null when Cassandra does not expose them. */
  compactionsAtStart: number | null
  compactionsMax: number | null
}

/** CPU below this share of one core over a sample counts as idle. */
const IDLE_SHARE = 0.1
const SETTLE_SAMPLE_MS = 500

/**
 * Waits (at most `boundMs`) until Cassandra runs and queues no compaction and each
 * of `pids` uses under 10 % of a core, for two samples in a row 0.5 s apart.
 */
export async function settle (cassandraConfig: Config['cassandra'], pids: Record<string, number | null>, boundMs: number): Promise<SettleResult> {
  const started = Date.now()
  const client = await connectCassandra(cassandraConfig)
  const watched = Object.entries(pids).filter((e): e is [string, number] => e[1] !== null)
  const waitedFor = ['Cassandra compactions: none running or pending', ...watched.map(([name]) => `${name} CPU < ${IDLE_SHARE * 100} % of a core`)]
  try {
    const atStart = await compactionTasks(client)
    let max = atStart
    let last = watched.map(([, pid]) => cpuSeconds(pid))
    let calm = 0
    let pending: string[] = []
    while (calm < 2) {
      if (Date.now() - started > boundMs) {
        if (pending.length === 0) pending = ['not yet settled for two samples in a row']
        return { waitedFor, seconds: round((Date.now() - started) / 1000, 1), boundSeconds: boundMs / 1000, timedOut: true, pending, compactionsAtStart: atStart, compactionsMax: max }
      }
      await new Promise(resolve => setTimeout(resolve, SETTLE_SAMPLE_MS))
      const now = watched.map(([, pid]) => cpuSeconds(pid))
      const tasks = await compactionTasks(client)
      if (tasks !== null) max = Math.max(max ?? 0, tasks)
      pending = [
        ...(tasks !== null && tasks > 0 ? [`${tasks} compaction tasks`] : []),
        ...watched.filter((_, i) => !((now[i] as number) - (last[i] as number) < IDLE_SHARE * SETTLE_SAMPLE_MS / 1000)).map(([name]) => `${name} busy`)
      ]
      calm = pending.length === 0 ? calm + 1 : 0
      last = now
    }
    return { waitedFor, seconds: round((Date.now() - started) / 1000, 1), boundSeconds: boundMs / 1000, timedOut: false, pending: [], compactionsAtStart: atStart, compactionsMax: max }
  } finally {
    await client.shutdown()
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

export interface RawCassandraResult {
  rows: number
  seconds: number
  rowsPerSec: number
  rowsPerRequest: number
  /** CPU seconds the `cpuPid` process (Cassandra) used during the timed writes; NaN without one. */
  cpuSeconds: number
}

export interface RawCassandraOptions {
  /** Runs after the keyspace is migrated and the client connected, right before the timed writes (the bench settles the stack here). */
  beforeTimed?: () => Promise<void>
  /** The Cassandra process, whose CPU is measured over the timed writes. */
  cpuPid?: number | null
}

/** Writes the trades as rows into `config`'s keyspace (migrated here) the way the daemon does; timed from the first write to the last acknowledgement. */
export async function rawCassandraWrite (config: Config, trades: readonly TradeRecord[], options: RawCassandraOptions = {}): Promise<RawCassandraResult> {
  await runMigrate(config, CQL_DIR, () => {})
  const client = await connectCassandra(config.cassandra)
  try {
    const counters = createProcessCounters()
    const opts = { client, cassandra: config.cassandra, log: createLogger({ level: 'warn' }), counters }
    const writer = new TradeWriter(new CassandraExecutor(opts), opts)
    await options.beforeTimed?.()
    const cpu0 = cpuSeconds(options.cpuPid ?? null)
    const started = process.hrtime.bigint()
    // As many chunks in flight as the pipeline allows batches in flight, rows made as they go.
    let next = 0
    await Promise.all(Array.from({ length: config.workers.maxQueue }, async () => {
      while (next < trades.length) {
        const from = next
        next += config.workers.batchSize
        await writer.writeRows(trades.slice(from, from + config.workers.batchSize).map(tr => toTradeRow(tr, Date.now())))
      }
    }))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    return {
      rows: trades.length,
      seconds: round(seconds, 2),
      rowsPerSec: Math.round(trades.length / seconds),
      rowsPerRequest: round(counters.rowsWritten / Math.max(1, counters.cassandraBatches), 1),
      cpuSeconds: round(cpuSeconds(options.cpuPid ?? null) - cpu0, 2)
    }
  } finally {
    await client.shutdown()
  }
}

export function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
