// The process role: Kafka `finnhub.trades` → worker pool (Avro decode, transform,
// candle pre-aggregation) → Cassandra (trades, then the candles of every resolution).
// The seed's Spark job as one pipeline stage of the daemon. For each consumed batch:
//   1. its values are packed into one buffer and moved to a Piscina worker;
//   2. poison records are copied to the dead-letter topic (acknowledged);
//   3. the rows are written as single-partition unlogged batches; the batch's
//      in-flight slot is free then (trades never wait for candles);
//   4. the candle book folds the batch and writes the periods it touched on its own
//      schedule (candles.flushIntervalMs, periodFlushIntervalMs);
//   5. only once both are durable do the batch's offsets become committable.
// Backpressure is the consumer's in-flight bound (workers.maxQueue batches between
// 1 and 3) and its waiting bound (candles.maxWaitingBatches between 3 and 5); a
// Cassandra outage holds batches at step 3 or 4 and so pauses consumption.

import { availableParallelism } from 'node:os'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getHeapStatistics } from 'node:v8'
import type cassandra from 'cassandra-driver'
import { Piscina } from 'piscina'
import type { Registry } from 'prom-client'
import type { Config } from './config/schema.js'
import { decodeIsolating } from './core/decode-isolating.js'
import { packValues, withoutRefused, type EncodedBatch, type PoisonRecord } from './core/process-batch.js'
import type { PoisonReason } from './core/avro-codec.js'
import { RowView } from './core/cql-rows.js'
import { CandleBook } from './cassandra/candles.js'
import { connectCassandra } from './cassandra/client.js'
import { missingTables } from './cassandra/migrations.js'
import { RESOLUTIONS } from './core/candle-periods.js'
import { attributeSources, RedundancyTally, SourceSlots } from './core/redundancy.js'
import { FinnhubdError } from './core/errors.js'
import { CassandraExecutor, TradeWriter } from './cassandra/writer.js'
import { ensureTopics } from './kafka/admin.js'
import { TradeConsumer, type BatchStored, type ConsumedBatch } from './kafka/consumer.js'
import { DeadLetterProducer } from './kafka/dead-letter.js'
import { tradeSchemaId } from './kafka/schema-registry.js'
import type { Logger } from './log.js'
import { heapBoundWarning } from './node-flags.js'
import type { StageLatency } from './metrics/latency.js'
import { createProcessCounters, registerCandleMetrics, registerProcessMetrics, registerRedundancyMetrics, registerWorkerPoolMetrics, type ProcessCounters } from './metrics/process.js'
import { resolveSchemaPath } from './paths.js'
import type { DecodeTask, DecodeWorkerData } from '../workers/decode-batch.js'

// The worker beside this module: dist/workers/decode-batch.js when the daemon runs from
// dist/, workers/decode-batch.ts when it runs from the sources under the tests' TypeScript
// loader (worker threads inherit its --import). So the workers always run the code the
// caller runs: an edit to core/ is not silently ignored until a rebuild.
export const WORKER_FILE = fileURLToPath(new URL(`../workers/decode-batch${extname(fileURLToPath(import.meta.url))}`, import.meta.url))

export interface ProcessDeps {
  log: Logger
  registry: Registry
  latency: StageLatency
}

export interface ProcessRole {
  consumer: TradeConsumer
  counters: ProcessCounters
  candles: CandleBook
  pool: Piscina
  cassandra: cassandra.Client
  /** Reload: applies workers.batchSize, kafka.commitIntervalMs and kafka.consumeTimeoutMs. */
  applyConfig: (next: Config) => void
  /** Shutdown with ingest: consumes up to the topic's end as of now, until the deadline (ms since epoch). */
  drainToEnd: (deadline: number) => Promise<{ drained: boolean, unread: number }>
  /** Stops consuming, drains in-flight batches (until the deadline), commits, closes everything. */
  stop: (deadline?: number) => Promise<{ abandonedBatches: number }>
}

const ignore = (): void => {}

/** Each record's source slot (its finnhubd-ingest header). */
function recordSlots (slots: SourceSlots, batch: ConsumedBatch): Uint8Array {
  const out = new Uint8Array(batch.messages.length)
  batch.messages.forEach((m, i) => { out[i] = slots.slotOf(m.headers) })
  return out
}

async function bounded (work: Promise<unknown>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>(resolve => { timer = setTimeout(() => { onTimeout(); resolve() }, ms) })
  await Promise.race([work.then(() => {}, () => {}), timeout])
  clearTimeout(timer)
}

/** The log line for a dead-lettered record, by reason: what happened and what it means. */
const POISON_MESSAGES: Record<PoisonReason, string> = {
  empty: 'a record in the trades topic has no value; it goes to the dead-letter topic',
  unknown_framing: 'a record in the trades topic is not Avro in either framing finnhubd reads; it goes to the dead-letter topic',
  truncated: 'a record in the trades topic is shorter than its framing header; it goes to the dead-letter topic',
  unknown_schema: 'a record in the trades topic names a schema finnhubd does not know; it goes to the dead-letter topic',
  invalid_body: 'a record in the trades topic is not a valid Avro Trade body; it goes to the dead-letter topic',
  invalid_trade: 'a record in the trades topic decodes but is not a valid trade (the field is named); it goes to the dead-letter topic, nothing of it is stored',
  internal: 'processing a record failed unexpectedly (a finnhubd bug: please report it with this line); the record goes to the dead-letter topic',
  cassandra_rejected: 'Cassandra refused a record\'s row as invalid; the record goes to the dead-letter topic, the rest of its batch is stored'
}

/** The end-to-end histograms, from each row's frame receive time and its trade time. */
function recordSince (latency: StageLatency, writtenAt: number, rows: RowView): void {
  latency.recordSinceEach('end_to_end', writtenAt, rows.count, i => rows.ingestTs(i))
  latency.recordSinceEach('source_to_written', writtenAt, rows.count, i => rows.tradeTs(i))
}

export async function startProcess (config: Config, deps: ProcessDeps): Promise<ProcessRole> {
  const log = deps.log.child({ component: 'process' })
  const schemaPath = resolveSchemaPath(config.schemaPath)
  const schemaId = await tradeSchemaId(config.kafka, schemaPath)
  const schemaIds = schemaId === null ? [] : [schemaId]
  const counters = createProcessCounters()
  registerProcessMetrics(deps.registry, counters)
  await ensureTopics(config.kafka, [config.kafka.topic, config.kafka.deadLetterTopic], (msg, fields) => { deps.log.info(msg, { component: 'kafka-admin', ...fields }) })

  const client = await connectCassandra(config.cassandra)
  // A schema older than this build (new candle tables, say) would have every write of
  // theirs retried for ever and no offset committed: refuse to start instead, by name.
  const needed = [config.cassandra.tradesTable, ...config.candles.resolutions.map(r => RESOLUTIONS[r].table)]
  const missing = await missingTables(client, config.cassandra.keyspace, needed).catch(async (err: unknown) => { await client.shutdown().catch(() => {}); throw err })
  if (missing.length > 0) {
    await client.shutdown().catch(() => {})
    throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
      `keyspace ${config.cassandra.keyspace} has no table ${missing.join(', ')}: its schema is older than this finnhubd; run \`finnhubd migrate\` with this config, then start again`)
  }
  counters.cassandraUp = 1
  const writerOpts = { client, cassandra: config.cassandra, log: log.child({ component: 'cassandra' }), counters }
  const exec = new CassandraExecutor(writerOpts)
  const writer = new TradeWriter(exec, writerOpts)
  // Redundant ingest: each record's source (its finnhubd-ingest header) is counted per member.
  const tally = config.redundancy === null ? undefined : new RedundancyTally(new SourceSlots(config.redundancy))
  if (tally !== undefined) registerRedundancyMetrics(deps.registry, tally)
  const candles = new CandleBook({ ...(tally !== undefined ? { tally } : {}), exec, client, cassandra: config.cassandra, candles: config.candles, counters, log: log.child({ component: 'candles' }) })

  registerCandleMetrics(deps.registry, () => {
    const stats = candles.stats
    return { requests: stats.requests, refused: stats.refused, idBytes: candles.state.idBytes, byResolution: stats.byResolution, periodLoads: stats.periodLoads }
  })

  const dlq = new DeadLetterProducer(config.kafka, log.child({ component: 'dlq' }), counters)
  try {
    await dlq.connect(config.kafka.connectTimeoutMs)
  } catch (err) {
    await client.shutdown().catch(() => {})
    throw err
  }

  const workerData: DecodeWorkerData = { schemaPath, schemaIds }
  const poolSize = config.workers.poolSize ?? Math.max(1, availableParallelism() - 1)
  const warnHeap = (c: Config): void => {
    const warning = heapBoundWarning(c.workers.batchSize, c.workers.maxQueue, getHeapStatistics().heap_size_limit)
    if (warning !== null) log.warn(warning)
  }
  warnHeap(config)
  const pool = new Piscina({ filename: WORKER_FILE, workerData, minThreads: poolSize, maxThreads: poolSize, maxQueue: config.workers.maxQueue * 2 })

  registerWorkerPoolMetrics(deps.registry, () => ({ utilization: pool.utilization, queueSize: pool.queueSize, threads: pool.threads.length }))

  let stopping = false
  const deadLetter = async (batch: ConsumedBatch, p: PoisonRecord): Promise<void> => {
    const m = batch.messages[p.index]
    if (m === undefined) return
    counters.poison[p.reason]++
    log.limited('warn', `poison-${p.reason}`, POISON_MESSAGES[p.reason],
      { reason: p.reason, detail: p.detail, partition: m.partition, offset: m.offset, deadLetterTopic: config.kafka.deadLetterTopic })
    await dlq.send({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key, value: m.value, timestamp: m.timestamp, reason: p.reason, detail: p.detail })
  }

  const handle = async (batch: ConsumedBatch): Promise<BatchStored | undefined> => {
    const decoded = await decode(batch)
    const decodedAt = Date.now()
    deps.latency.record('consume_to_decoded', decodedAt - batch.consumedAt, batch.messages.length)
    deps.latency.record('worker_decode', decoded.decodeNs / 1e6, batch.messages.length)
    const rows = new RowView(decoded.rows)
    const poisoned = Promise.all(decoded.poison.map(async p => { await deadLetter(batch, p) }))
    if (rows.count === 0) {
      await poisoned
      return undefined
    }
    const rejected = await writer.write(rows)
    // The trades are stored (queryable) now: the batch's in-flight slot frees once the
    // poison above is acknowledged too. Its candles follow on their own schedule, and
    // the batch is committed only once they are durable.
    const writtenAt = Date.now()
    deps.latency.record('decoded_to_written', writtenAt - decodedAt, rows.count)
    deps.latency.record('consume_to_written', writtenAt - batch.consumedAt, rows.count)
    recordSince(deps.latency, writtenAt, rows)
    // A refused row is not in `trades`, so it must not be in a candle either.
    const kept = withoutRefused(decoded, rejected)
    const poison = kept.poison
    const partials = tally === undefined ? kept.partials : attributeSources(kept.partials, decoded.rowRecord, recordSlots(tally.slots, batch), rejected, tally)
    const refusedLettered = poison.length === 0 ? [] : [Promise.all(poison.map(async p => { await deadLetter(batch, p) }))]
    // Module-level callbacks: a closure made here would keep this batch's records alive until its candles are durable.
    const durable = Promise.all([candles.apply(partials), ...refusedLettered]).then(ignore)
    // Not awaited here: an apply that rejects (the daemon stopping) rejects `durable`, which the consumer handles.
    durable.catch(ignore)
    await poisoned
    return { durable }
  }

  const runTask = async (messages: readonly ConsumedBatch['messages'][number][]): Promise<EncodedBatch> => {
    // Packed afresh for each run: a moved buffer is detached on this side.
    const packed = packValues(messages.map(m => m.value))
    const task: DecodeTask = { packed }
    return await pool.run(task, { transferList: [packed.buffer] }) as EncodedBatch
  }

  const decode = async (batch: ConsumedBatch): Promise<EncodedBatch> => await decodeIsolating(batch.messages, runTask, {
    stopping: () => stopping,
    onRetry: err => { log.limited('error', 'worker-task', 'a decode task failed in the worker pool; retrying the batch once, then record by record', { err, records: batch.messages.length }) },
    onSplit: err => { log.limited('error', 'worker-split', 'a decode task failed twice; splitting the batch to isolate the records that fail', { err, records: batch.messages.length }) },
    pause: async ms => { await new Promise(resolve => setTimeout(resolve, ms)) }
  })

  const consumer = new TradeConsumer({
    kafka: config.kafka,
    batchSize: config.workers.batchSize,
    maxInFlightBatches: config.workers.maxQueue,
    maxWaitingBatches: config.candles.maxWaitingBatches,
    log: log.child({ component: 'kafka-consumer' }),
    counters,
    onBatch: handle
  })
  try {
    await consumer.connect(config.kafka.connectTimeoutMs)
  } catch (err) {
    await dlq.close(1_000)
    await pool.destroy()
    await client.shutdown().catch(() => {})
    throw err
  }
  consumer.start()
  log.info('process started', { topic: config.kafka.topic, groupId: config.kafka.groupId, workers: poolSize, keyspace: config.cassandra.keyspace })

  return {
    consumer,
    counters,
    candles,
    pool,
    cassandra: client,
    applyConfig (next: Config) {
      warnHeap(next)
      consumer.setBatchSize(next.workers.batchSize)
      consumer.setCommitInterval(next.kafka.commitIntervalMs)
      consumer.setConsumeTimeout(next.kafka.consumeTimeoutMs)
    },
    drainToEnd: async deadline => await consumer.drainToEnd(deadline),
    async stop (deadline = Date.now() + config.shutdown.drainTimeoutMs) {
      const { abandonedBatches } = await consumer.close(Math.max(0, deadline - Date.now()))
      stopping = true
      if (abandonedBatches > 0) {
        log.error('stopped with batches still in flight; they were not committed and will be read again', { abandonedBatches })
      }
      exec.close()
      candles.close()
      await dlq.close(5_000)
      await pool.destroy()
      // A driver whose hosts are gone may wait on reconnections: bounded, the rest is the OS's.
      await bounded(client.shutdown(), 5_000, () => log.warn('the Cassandra client did not shut down within 5 s; leaving it'))
      log.info('process stopped', { consumed: counters.consumed, rowsWritten: counters.rowsWritten, candlesWritten: counters.candlesWritten, deadLettered: counters.deadLettered })
      return { abandonedBatches }
    }
  }
}
