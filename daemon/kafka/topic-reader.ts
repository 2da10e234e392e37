// Reading a topic for people, not for the pipeline: the latest records of each
// partition (the console's Topic view) and a live follow from the end or the start
// (`finnhubd tail`). Its own consumer, assigned by hand, never joins the daemon's
// group and never commits, so looking cannot move or delay the pipeline's offsets.
// Records are decoded with the same TradeDecoder the workers use; a record that does
// not decode (the dead-letter topic holds only those) is shown with the reason.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { singleObjectFingerprint, TradeDecoder } from '../core/avro-codec.js'
import { writerSchemasFor } from '../core/process-batch.js'
import { type TradeRecord } from '../core/trade-schema.js'
import { connectKafka, disconnectQuietly } from './admin.js'
import { kafkaClientConfig } from './client-config.js'
import { realConsumer, type ConsumerClient, type ConsumerFactory } from './clients.js'
import { tradeSchemaId } from './schema-registry.js'
import { loadTradeType, resolveSchemaPath } from '../paths.js'

export interface ShownRecord {
  topic: string
  partition: number
  offset: number
  /** The record's Kafka timestamp, ms (when its trade frame arrived). */
  timestamp: number | null
  key: string | null
  size: number
  trade: TradeRecord | null
  /** Why the value does not decode as a Trade, when it does not. */
  undecodable: { reason: string, detail: string } | null
  headers: Record<string, string>
}

export interface TopicReaderOptions {
  kafka: Config['kafka']
  decoder: TradeDecoder
  /** Distinguishes this reader's client in broker logs. */
  purpose: string
  /** Builds the client (the unit tests' fake); the real KafkaConsumer when absent. */
  client?: ConsumerFactory
}

/** A record's size as read: value, key and headers. */
function rawBytes (m: Kafka.Message): number {
  let n = m.value?.length ?? 0
  n += m.key === undefined || m.key === null ? 0 : Buffer.byteLength(m.key)
  for (const h of m.headers ?? []) {
    for (const [k, v] of Object.entries(h)) n += Buffer.byteLength(k) + (Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v)))
  }
  return n
}

const newestFirst = (a: Kafka.Message, b: Kafka.Message): number => (b.timestamp ?? 0) - (a.timestamp ?? 0) || b.offset - a.offset

function oldestIndex (messages: readonly Kafka.Message[]): number {
  let at = 0
  for (let i = 1; i < messages.length; i++) if (newestFirst(messages[i] as Kafka.Message, messages[at] as Kafka.Message) > 0) at = i
  return at
}

export class TopicReader {
  readonly #opts: TopicReaderOptions
  #consumer: ConsumerClient | null = null
  #connecting: Promise<ConsumerClient> | null = null
  /** One read at a time: the consumer's assignment is the read's state. */
  #turn: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor (opts: TopicReaderOptions) {
    this.#opts = opts
  }

  /** The newest `limit` records of the topic over all partitions, newest first. */
  async latest (topic: string, limit: number, timeoutMs = 5_000): Promise<ShownRecord[]> {
    return (await this.latestWithin(topic, limit, Number.POSITIVE_INFINITY, timeoutMs)).records
  }

  /**
   * As latest(), holding at most about `maxBytes` of records (value, key and headers)
   * at any time and decoding only those: a producer chooses how large its records are,
   * and a view of the dead-letter topic must not make the daemon hold or decode
   * hundreds of megabytes. The oldest are let go first; `truncated` says some were.
   */
  async latestWithin (topic: string, limit: number, maxBytes: number, timeoutMs = 5_000): Promise<{ records: ShownRecord[], truncated: boolean }> {
    return await this.#exclusive(async consumer => {
      const partitions = await partitionsOf(consumer, topic)
      const ranges = new Map<number, { from: number, to: number }>()
      for (const partition of partitions) {
        const w = await watermarks(consumer, topic, partition)
        if (w.highOffset > w.lowOffset) ranges.set(partition, { from: Math.max(w.lowOffset, w.highOffset - limit), to: w.highOffset })
      }
      const kept: Kafka.Message[] = []
      let held = 0
      let truncated = false
      if (ranges.size === 0) return { records: [], truncated }
      consumer.assign([...ranges].map(([partition, r]) => ({ topic, partition, offset: r.from })))
      try {
        const deadline = Date.now() + timeoutMs
        while (ranges.size > 0 && Date.now() < deadline) {
          for (const m of await consume(consumer, 500, 200)) {
            const r = ranges.get(m.partition)
            if (r === undefined || m.offset >= r.to) continue
            if (m.offset + 1 >= r.to) ranges.delete(m.partition)
            kept.push(m)
            held += rawBytes(m)
            while (held > maxBytes && kept.length > 0) {
              const oldest = oldestIndex(kept)
              held -= rawBytes(kept[oldest] as Kafka.Message)
              kept.splice(oldest, 1)
              truncated = true
            }
          }
        }
      } finally {
        consumer.unassign()
      }
      const records = kept.sort(newestFirst).slice(0, limit).map(m => this.show(m))
      return { records, truncated: truncated || kept.length > limit }
    })
  }

  /**
   * Every record from the end (or the beginning) of each partition on, until the
   * signal aborts; partitions are those the topic has when following starts.
   */
  async follow (topic: string, fromBeginning: boolean, onRecord: (r: ShownRecord) => void, signal: AbortSignal): Promise<void> {
    await this.#exclusive(async consumer => {
      const partitions = await partitionsOf(consumer, topic)
      const starts = await Promise.all(partitions.map(async partition => {
        const w = await watermarks(consumer, topic, partition)
        return { topic, partition, offset: fromBeginning ? w.lowOffset : w.highOffset }
      }))
      consumer.assign(starts)
      try {
        while (!signal.aborted) {
          for (const m of await consume(consumer, 500, 200)) onRecord(this.show(m))
        }
      } finally {
        consumer.unassign()
      }
    })
  }

  /** A consumed record as people read it. */
  show (m: Kafka.Message): ShownRecord {
    const decoded = this.#opts.decoder.decode(m.value)
    const headers: Record<string, string> = {}
    for (const h of m.headers ?? []) {
      for (const [k, v] of Object.entries(h)) headers[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v)
    }
    return {
      topic: m.topic,
      partition: m.partition,
      offset: m.offset,
      timestamp: m.timestamp ?? null,
      key: m.key === undefined || m.key === null ? null : String(m.key),
      size: m.size,
      trade: decoded.ok ? decoded.trade : null,
      undecodable: decoded.ok ? null : { reason: decoded.reason, detail: decoded.detail },
      headers
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    const consumer = this.#consumer ?? await this.#connecting?.catch(() => null) ?? null
    this.#consumer = null
    if (consumer !== null) await disconnectQuietly(consumer)
  }

  async #exclusive<T> (fn: (consumer: ConsumerClient) => Promise<T>): Promise<T> {
    const run = this.#turn.then(async () => await fn(await this.#connect()))
    this.#turn = run.catch(() => {})
    return await run
  }

  async #connect (): Promise<ConsumerClient> {
    if (this.#closed) throw new Error('the topic reader is closed')
    if (this.#consumer !== null) return this.#consumer
    this.#connecting ??= (async () => {
      const { kafka, purpose } = this.#opts
      const consumer = (this.#opts.client ?? realConsumer)({
        ...kafkaClientConfig(kafka, `-${purpose}`),
        // Required by librdkafka, never used: the reader assigns partitions itself and never commits.
        'group.id': `${kafka.groupId}-${purpose}-${process.pid}`,
        'enable.auto.commit': false,
        'fetch.wait.max.ms': 100
      }, { 'auto.offset.reset': 'latest' })
      try {
        await connectKafka(consumer, kafka, kafka.connectTimeoutMs)
      } catch (err) {
        this.#connecting = null
        throw err
      }
      this.#consumer = consumer
      return consumer
    })()
    return await this.#connecting
  }
}

/**
 * A decoder for what the daemon writes to the topic: the configured schema, known by
 * its single-object fingerprint and, with a schema registry, by its registered id.
 */
export async function tradeDecoderFor (config: Config): Promise<TradeDecoder> {
  const schemaPath = resolveSchemaPath(config.schemaPath)
  const type = loadTradeType(schemaPath)
  const schemaId = await tradeSchemaId(config.kafka, schemaPath)
  return new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), schemaId === null ? [] : [schemaId]))
}

/** The topic's partition ids, sorted (none for a topic that does not exist). */
export async function partitionsOf (consumer: ConsumerClient, topic: string): Promise<number[]> {
  const meta = await new Promise<Kafka.Metadata>((resolve, reject) => {
    consumer.getMetadata({ topic, timeout: 10_000 }, (err, m) => { err ? reject(err) : resolve(m) })
  })
  return (meta.topics.find(t => t.name === topic)?.partitions ?? []).map(p => p.id).sort((a, b) => a - b)
}

export function watermarks (consumer: ConsumerClient, topic: string, partition: number): Promise<Kafka.WatermarkOffsets> {
  return new Promise((resolve, reject) => { consumer.queryWatermarkOffsets(topic, partition, 10_000, (err, o) => { err ? reject(err) : resolve(o) }) })
}

function consume (consumer: ConsumerClient, max: number, timeoutMs: number): Promise<Kafka.Message[]> {
  consumer.setDefaultConsumeTimeout(timeoutMs)
  return new Promise((resolve, reject) => { consumer.consume(max, (err, msgs) => { err ? reject(err) : resolve(msgs) }) })
}
