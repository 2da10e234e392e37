// The trade producer: one Kafka record per trade, key = symbol, Avro value, on an
// idempotent librdkafka producer (enable.idempotence, acks=all). librdkafka's own
// queue is the buffer while Kafka is slow or away, bounded by
// kafka.maxBufferedMessages / maxBufferedKbytes: past the bound produce() refuses,
// and the trade is dropped with a counted, logged reason (queue_full), so memory
// never grows without bound. A record still unacknowledged after
// kafka.deliveryTimeoutMs is dropped as delivery_failed. Delivery reports are
// polled on one interval (no timer per message) and carry the record timestamp
// (= the frame's receive time), from which frame → ack latency is measured.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { TradeEncoder } from '../core/avro-codec.js'
import { FinnhubdError } from '../errors.js'
import type { TradeRecord } from '../core/trade-schema.js'
import type { Logger } from '../log.js'
import type { IngestCounters } from '../metrics/ingest.js'

const ERR_QUEUE_FULL = Kafka.CODES.ERRORS.ERR__QUEUE_FULL

export interface TradeProducerOptions {
  kafka: Config['kafka']
  encoder: TradeEncoder
  log: Logger
  counters: IngestCounters
  /** Called with frame-receive → ack latency in ms for each acknowledged record. */
  onAck?: (latencyMs: number) => void
  pollIntervalMs?: number
}

export class TradeProducer {
  readonly #opts: TradeProducerOptions
  readonly #producer: Kafka.Producer
  readonly #topic: string
  #ready = false
  readonly #keys = new Map<string, Buffer>()

  constructor (opts: TradeProducerOptions) {
    this.#opts = opts
    this.#topic = opts.kafka.topic
    this.#producer = new Kafka.Producer({
      'metadata.broker.list': opts.kafka.bootstrapServers.join(','),
      'client.id': opts.kafka.clientId,
      'enable.idempotence': true,
      'compression.codec': opts.kafka.compression,
      'linger.ms': opts.kafka.lingerMs,
      'batch.size': opts.kafka.batchSizeBytes,
      'queue.buffering.max.messages': opts.kafka.maxBufferedMessages,
      'queue.buffering.max.kbytes': opts.kafka.maxBufferedKbytes,
      'socket.keepalive.enable': true,
      dr_cb: true
    }, { 'request.required.acks': -1, 'message.timeout.ms': opts.kafka.deliveryTimeoutMs })
    this.#producer.on('delivery-report', (err, report) => { this.#onDelivery(err, report) })
    this.#producer.on('event.error', err => {
      // Broker-down and transport errors: librdkafka keeps retrying by itself.
      opts.log.limited('warn', 'kafka-producer-error', 'Kafka producer error; librdkafka keeps retrying while records stay buffered',
        { err, inFlight: this.inFlight })
    })
  }

  /** Connects and fetches metadata; rejects with a clear message when Kafka cannot be reached. */
  async connect (timeoutMs = 30_000): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#producer.connect({ timeout: timeoutMs }, err => {
        if (err !== null && err !== undefined) {
          reject(new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
            `cannot reach Kafka at ${this.#opts.kafka.bootstrapServers.join(',')} (${err.message}); ` +
            'start the local stack with `npm run stack -- up` or set kafka.bootstrapServers / KAFKA_BOOTSTRAP_SERVERS', { cause: err }))
        } else {
          resolve()
        }
      })
    })
    this.#producer.setPollInterval(this.#opts.pollIntervalMs ?? 25)
    this.#ready = true
  }

  /** Records handed to librdkafka and not yet acknowledged or failed. */
  get inFlight (): number {
    const c = this.#opts.counters
    return c.produced - c.delivered - c.dropped.delivery_failed
  }

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
        this.#producer.produce(this.#topic, null, value, this.#key(trade.s), trade.ingest_ts)
        produced++
      } catch (err) {
        if ((err as { code?: number }).code === ERR_QUEUE_FULL) {
          queueFull++
        } else {
          counters.dropped.delivery_failed++
          this.#opts.log.limited('error', 'kafka-produce', 'Kafka refused a record; it was dropped', { err, symbol: trade.s })
        }
      }
    }
    counters.produced += produced
    if (queueFull > 0) {
      counters.dropped.queue_full += queueFull
      this.#opts.log.limited('error', 'kafka-queue-full',
        'trades dropped: the Kafka buffer is full (Kafka down or too slow); raise kafka.maxBufferedMessages / maxBufferedKbytes to buffer more',
        { dropped: queueFull, bufferedMessages: this.inFlight, maxBufferedMessages: this.#opts.kafka.maxBufferedMessages })
    }
  }

  /** Waits until every produced record is acknowledged or failed, or the timeout passes. */
  async flush (timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#producer.flush(timeoutMs, err => { err ? reject(err) : resolve() })
    })
  }

  async disconnect (): Promise<void> {
    if (!this.#ready) return
    this.#ready = false
    await new Promise<void>(resolve => { this.#producer.disconnect(() => resolve()) })
  }

  #key (symbol: string): Buffer {
    let key = this.#keys.get(symbol)
    if (key === undefined) {
      key = Buffer.from(symbol, 'utf8')
      if (this.#keys.size < 10_000) this.#keys.set(symbol, key)
    }
    return key
  }

  #onDelivery (err: Kafka.LibrdKafkaError | null, report: Kafka.DeliveryReport): void {
    const counters = this.#opts.counters
    if (err !== null && err !== undefined) {
      counters.dropped.delivery_failed++
      this.#opts.log.limited('error', 'kafka-delivery', 'a trade record was not acknowledged by Kafka within kafka.deliveryTimeoutMs and is lost',
        { err, deliveryTimeoutMs: this.#opts.kafka.deliveryTimeoutMs })
      return
    }
    counters.delivered++
    this.#opts.onAck?.(Date.now() - (report.timestamp ?? Date.now()))
  }
}
