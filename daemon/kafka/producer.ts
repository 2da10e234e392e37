// The trade producer: one Kafka record per trade, key = symbol, Avro value, on an
// idempotent librdkafka producer (enable.idempotence, acks=all). librdkafka's own
// queue is the buffer while Kafka is slow or away, bounded by
// kafka.maxBufferedMessages / maxBufferedKbytes: past the bound produce() refuses,
// and the trade is dropped with a counted, logged reason (queue_full), so memory
// never grows without bound. A record still unacknowledged after
// kafka.deliveryTimeoutMs is dropped as delivery_failed.
//
// kafka.deliveryReports chooses how acknowledgements are learnt:
//  - `all` (the default): a delivery report per record. Each acknowledged record is
//    counted exactly and its frame → ack time (the record's timestamp is the frame's
//    receive time) goes into the frame_to_ack histogram. node-rdkafka hands the
//    reports to JavaScript one by one, ~4.5 µs of main-thread time each (measured
//    here): noise at Finnhub's rates, a few per cent of a core at bench rates.
//  - `errors`: reports for failures only (delivery.report.only.error). Acknowledged
//    records are then counted from librdkafka's statistics: msg_cnt is every record
//    produced and not yet acknowledged or failed, so delivered = produced − failed −
//    msg_cnt, taken against the produced count of the previous statistics event (a
//    lower bound while records flow, exact when quiet and after flush()); there is no
//    frame_to_ack histogram, only librdkafka's own queue and round-trip windows.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { brokerHealth, connectKafka, parseStats, type BrokerHealth, disconnectQuietly } from './admin.js'
import { kafkaClientConfig } from './client-config.js'
import { realProducer, type ProducerClient, type ProducerFactory } from './clients.js'
import { TradeEncoder } from '../core/avro-codec.js'
import type { TradeRecord } from '../core/trade-schema.js'
import { SOURCE_HEADER } from '../core/redundancy.js'
import type { Logger } from '../log.js'
import type { IngestCounters } from '../metrics/ingest.js'
import type { StageLatency } from '../metrics/latency.js'

const ERR_QUEUE_FULL = Kafka.CODES.ERRORS.ERR__QUEUE_FULL

export interface TradeProducerOptions {
  kafka: Config['kafka']
  encoder: TradeEncoder
  log: Logger
  counters: IngestCounters
  /** Called with each librdkafka statistics event (every kafka.statsIntervalMs). */
  onStats?: (stats: ProducerStats) => void
  pollIntervalMs?: number
  /** Where frame → ack times go (kafka.deliveryReports = all). */
  latency?: StageLatency
  /** A record was acknowledged or failed: its timestamp, the receive time of its frame (the ledger of gaps). */
  onSettled?: (ingestTs: number) => void
  /** A trade dropped because librdkafka's queue is full. */
  onQueueFull?: (trade: TradeRecord) => void
  /** Builds the client (the unit tests' fake); the real Producer when absent. */
  client?: ProducerFactory
  /** Redundant ingest: the `group/member` tag every record carries in its SOURCE_HEADER header; none when null or absent. */
  sourceTag?: string | null
}

/** The parts of librdkafka's statistics we use (times in microseconds). */
export interface ProducerStats {
  msg_cnt: number
  msg_size: number
  brokers: Record<string, {
    state: string
    nodeid: number
    nodename?: string
    int_latency?: LatencyWindow
    outbuf_latency?: LatencyWindow
    rtt?: LatencyWindow
  }>
}

export interface LatencyWindow { min: number, max: number, avg: number, p50: number, p95: number, p99: number, p99_99: number, cnt: number }

export class TradeProducer {
  readonly #opts: TradeProducerOptions
  readonly #producer: ProducerClient
  readonly #topic: string
  #ready = false
  readonly #keys = new Map<string, Buffer>()
  #buffered = 0
  #producedAtLastStats = 0
  #brokers: BrokerHealth | null = null
  readonly #reportsAll: boolean
  readonly #headers: Kafka.MessageHeader[] | undefined

  constructor (opts: TradeProducerOptions) {
    this.#opts = opts
    this.#topic = opts.kafka.topic
    this.#producer = (opts.client ?? realProducer)({
      ...kafkaClientConfig(opts.kafka),
      'enable.idempotence': true,
      'compression.codec': opts.kafka.compression,
      'linger.ms': opts.kafka.lingerMs,
      'batch.size': opts.kafka.batchSizeBytes,
      'queue.buffering.max.messages': opts.kafka.maxBufferedMessages,
      'queue.buffering.max.kbytes': opts.kafka.maxBufferedKbytes,
      'socket.keepalive.enable': true,
      'statistics.interval.ms': opts.kafka.statsIntervalMs,
      dr_cb: true,
      'delivery.report.only.error': opts.kafka.deliveryReports === 'errors'
    } as Kafka.ProducerGlobalConfig, { 'request.required.acks': -1, 'message.timeout.ms': opts.kafka.deliveryTimeoutMs })
    this.#reportsAll = opts.kafka.deliveryReports === 'all'
    this.#headers = opts.sourceTag === null || opts.sourceTag === undefined ? undefined : [{ [SOURCE_HEADER]: opts.sourceTag }]
    this.#producer.on('delivery-report', (err, report) => { this.#onDelivery(err, report) })
    this.#producer.on('event.stats', event => { this.#onStats(event.message) })
    this.#producer.on('event.error', err => {
      // Broker-down and transport errors: librdkafka keeps retrying by itself.
      opts.log.limited('warn', 'kafka-producer-error', 'Kafka producer error; librdkafka keeps retrying while records stay buffered',
        { err, inFlight: this.inFlight })
    })
  }

  /** Connects and fetches metadata; rejects with a clear message when Kafka cannot be reached. */
  async connect (timeoutMs: number): Promise<void> {
    await connectKafka(this.#producer, this.#opts.kafka, timeoutMs)
    this.#producer.setPollInterval(this.#opts.pollIntervalMs ?? 25)
    this.#ready = true
  }

  get connected (): boolean { return this.#ready }
  /** Brokers up at the last statistics event (null before the first). */
  get brokers (): BrokerHealth | null { return this.#brokers }

  /** Records produced and not yet known to be acknowledged or failed. */
  get inFlight (): number {
    const c = this.#opts.counters
    return c.produced - c.delivered - c.dropped.delivery_failed
  }

  /** Records librdkafka held at its last statistics event (queued or awaiting an ack). */
  get buffered (): number { return this.#buffered }

  /** Produces one record per trade; never throws: refusals are counted drops. */
  send (trades: readonly TradeRecord[]): void {
    const counters = this.#opts.counters
    if (!this.#ready) {
      counters.dropped.not_connected += trades.length
      this.#opts.log.limited('error', 'kafka-not-connected', 'trades dropped: the Kafka producer is not connected', { dropped: trades.length })
      return
    }
    let produced = 0
    let queueFull = 0
    for (const trade of trades) {
      let value: Buffer
      try {
        value = this.#opts.encoder.encodeView(trade)
      } catch (err) {
        counters.dropped.encode_failed++
        this.#opts.log.limited('error', 'kafka-encode', 'a trade could not be Avro-encoded and was dropped', { err, symbol: trade.s })
        continue
      }
      try {
        this.#producer.produce(this.#topic, null, value, this.#key(trade.s), trade.ingest_ts, undefined, this.#headers)
        produced++
      } catch (err) {
        if ((err as { code?: number }).code === ERR_QUEUE_FULL) {
          queueFull++
          this.#opts.onQueueFull?.(trade)
        } else {
          counters.dropped.produce_refused++
          this.#opts.log.limited('error', 'kafka-produce', 'librdkafka refused a record; it was dropped', { err, symbol: trade.s })
        }
      }
    }
    counters.produced += produced
    if (queueFull > 0) {
      counters.dropped.queue_full += queueFull
      this.#opts.log.limited('error', 'kafka-queue-full',
        'trades dropped: the Kafka buffer is full (Kafka down or too slow); raise kafka.maxBufferedMessages / maxBufferedKbytes to buffer more',
        { dropped: queueFull, bufferedMessages: this.#buffered, maxBufferedMessages: this.#opts.kafka.maxBufferedMessages })
    }
  }

  /** Waits until every produced record is acknowledged or failed, or the timeout passes. */
  async flush (timeoutMs: number): Promise<void> {
    const produced = this.#opts.counters.produced
    const deadline = Date.now() + timeoutMs
    await new Promise<void>((resolve, reject) => {
      this.#producer.flush(timeoutMs, err => { err ? reject(err) : resolve() })
    })
    if (this.#reportsAll) {
      // librdkafka's queue is empty; the last reports may still be on their way to JavaScript.
      const c = this.#opts.counters
      while (c.delivered + c.dropped.delivery_failed < produced && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
      return
    }
    // An empty queue: everything produced before the flush was acknowledged or reported failed.
    this.#settle(produced, 0)
  }

  async disconnect (): Promise<void> {
    if (!this.#ready) return
    this.#ready = false
    await disconnectQuietly(this.#producer)
  }

  #key (symbol: string): Buffer {
    let key = this.#keys.get(symbol)
    if (key === undefined) {
      key = Buffer.from(symbol, 'utf8')
      if (this.#keys.size < 10_000) this.#keys.set(symbol, key)
    }
    return key
  }

  #onDelivery (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport | undefined): void {
    if (report?.timestamp !== undefined) this.#opts.onSettled?.(report.timestamp)
    if (err === null || err === undefined) {
      // Success reports come only with kafka.deliveryReports = all.
      this.#opts.counters.delivered++
      if (report?.timestamp !== undefined) this.#opts.latency?.record('frame_to_ack', Date.now() - report.timestamp)
      return
    }
    this.#opts.counters.dropped.delivery_failed++
    this.#opts.log.limited('error', 'kafka-delivery', 'a trade record was not acknowledged by Kafka within kafka.deliveryTimeoutMs and is lost',
      { err, deliveryTimeoutMs: this.#opts.kafka.deliveryTimeoutMs })
  }

  #onStats (json: string): void {
    const stats = parseStats<ProducerStats>(json)
    if (stats === null) return
    this.#buffered = stats.msg_cnt
    this.#opts.counters.producerQueue = stats.msg_cnt
    this.#brokers = brokerHealth(stats.brokers)
    // With a report per record, delivered is counted exactly from the reports.
    if (!this.#reportsAll) this.#settle(this.#producedAtLastStats, stats.msg_cnt)
    this.#producedAtLastStats = this.#opts.counters.produced
    this.#opts.onStats?.(stats)
  }

  /** delivered ≥ (records produced before the snapshot) − failed − (records still held). */
  #settle (producedBefore: number, held: number): void {
    const c = this.#opts.counters
    const delivered = producedBefore - c.dropped.delivery_failed - held
    if (delivered > c.delivered) c.delivered = delivered
  }
}
