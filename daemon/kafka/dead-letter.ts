// The dead-letter producer: a record the workers cannot decode is copied, value and
// key unchanged, to kafka.deadLetterTopic with headers saying why and where it came
// from. Its batch completes (and its offset is committed past) only once the copy
// is acknowledged, so a poison record is never lost and never stalls a partition.
// Poison is rare, so this producer takes a delivery report per record.
// A record too large to copy (a hostile producer wrote one at the broker's size limit:
// our headers push the copy over it) would fail the same way forever and stall its
// partition, so it is copied without its key and value instead, with headers saying so;
// the source offset header still points at the original.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { connectKafka, disconnectQuietly } from './admin.js'
import { kafkaClientConfig } from './client-config.js'
import type { PoisonReason } from '../core/avro-codec.js'
import { backoffDelay, RetryScope, retryUntilDone } from '../core/retry.js'
import { FinnhubdError } from '../core/errors.js'
import type { Logger } from '../log.js'
import type { ProcessCounters } from '../metrics/process.js'

export interface PoisonCopy {
  topic: string
  partition: number
  offset: number
  key: Buffer | string | null | undefined
  value: Buffer | null | undefined
  timestamp: number | undefined
  reason: PoisonReason
  detail: string
  /** Set when the copy leaves out the key and value (too large to copy). */
  omitted?: { valueBytes: number, keyBytes: number }
}

const TOO_LARGE = Kafka.CODES.ERRORS.ERR_MSG_SIZE_TOO_LARGE

export class DeadLetterProducer {
  readonly #producer: Kafka.Producer
  readonly #kafka: Config['kafka']
  readonly #log: Logger
  readonly #counters: ProcessCounters
  readonly #pending = new Map<number, { resolve: () => void, reject: (err: Error) => void }>()
  #next = 0
  readonly #retries = new RetryScope()

  constructor (kafka: Config['kafka'], log: Logger, counters: ProcessCounters) {
    this.#kafka = kafka
    this.#log = log
    this.#counters = counters
    this.#producer = new Kafka.Producer({
      ...kafkaClientConfig(kafka, '-dlq'),
      'enable.idempotence': true,
      'linger.ms': 5,
      dr_cb: true
    } as Kafka.ProducerGlobalConfig, { 'request.required.acks': -1, 'message.timeout.ms': kafka.deliveryTimeoutMs })
    this.#producer.on('delivery-report', (err, report) => {
      const id = report.opaque as number
      const waiter = this.#pending.get(id)
      this.#pending.delete(id)
      if (err !== null && err !== undefined) waiter?.reject(Object.assign(new Error(err.message), { code: err.code }))
      else waiter?.resolve()
    })
    this.#producer.on('event.error', err => {
      log.limited('warn', 'dlq-producer-error', 'dead-letter producer error; librdkafka keeps retrying', { err })
    })
  }

  async connect (timeoutMs: number): Promise<void> {
    await connectKafka(this.#producer, this.#kafka, timeoutMs)
    this.#producer.setPollInterval(50)
  }

  /** Resolves once the copy is acknowledged; retries with backoff until then, or until close(). */
  async send (copy: PoisonCopy): Promise<void> {
    await retryUntilDone(async () => { await this.#produceOnce(copy) }, {
      scope: this.#retries,
      closedError: () => new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE', 'dead-letter copy abandoned: the daemon is stopping'),
      onFailure: (err, attempt) => {
        if ((err as { code?: unknown }).code === TOO_LARGE && copy.value !== null && copy.value !== undefined) {
          this.#log.limited('error', 'dlq-too-large', `a poison record is too large to copy to ${this.#kafka.deadLetterTopic}; copying its headers only (the original stays at its source offset until the topic's retention removes it)`,
            { topic: copy.topic, partition: copy.partition, offset: copy.offset, valueBytes: copy.value.length })
          copy = { ...copy, value: null, key: null, omitted: { valueBytes: copy.value.length, keyBytes: copy.key?.length ?? 0 } }
          return 0
        }
        this.#counters.deadLetterErrors++
        const delay = backoffDelay(attempt, 200, 10_000)
        this.#log.limited('error', 'dlq-send', `a poison record could not be copied to ${this.#kafka.deadLetterTopic}; retrying (its offset is not committed meanwhile)`,
          { err, topic: copy.topic, partition: copy.partition, offset: copy.offset, retryInMs: delay })
        return delay
      }
    })
    this.#counters.deadLettered++
  }

  async #produceOnce (copy: PoisonCopy): Promise<void> {
    const id = this.#next++
    await new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      try {
        this.#producer.produce(this.#kafka.deadLetterTopic, null, copy.value ?? null, copy.key ?? null, copy.timestamp ?? Date.now(), id, [
          { 'finnhubd-reason': copy.reason },
          { 'finnhubd-detail': copy.detail },
          { 'finnhubd-source-topic': copy.topic },
          { 'finnhubd-source-partition': String(copy.partition) },
          { 'finnhubd-source-offset': String(copy.offset) },
          { 'finnhubd-dead-lettered-at': new Date().toISOString() },
          ...(copy.omitted !== undefined ? [{ 'finnhubd-omitted': `value ${copy.omitted.valueBytes} bytes, key ${copy.omitted.keyBytes} bytes: too large to copy` }] : [])
        ])
      } catch (err) {
        this.#pending.delete(id)
        reject(err instanceof Error ? err : new Error(String(err)))
      }
    })
  }

  async close (flushTimeoutMs: number): Promise<void> {
    // A copy waiting out a backoff gives up now (its batch stays uncommitted).
    this.#retries.close()
    await new Promise<void>(resolve => { this.#producer.flush(flushTimeoutMs, () => resolve()) })
    await disconnectQuietly(this.#producer)
  }
}
