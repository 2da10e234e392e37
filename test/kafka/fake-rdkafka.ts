// In-process fakes of the node-rdkafka clients, for the unit tests of the Kafka classes
// (daemon/kafka/clients.ts is the seam). Only what the classes call, with librdkafka's
// observable behaviour where the classes depend on it: consume(n) returns at most n
// records of the assigned, unpaused partitions in offset order (an empty array after a
// short wait when there are none), rebalances arrive through rebalance_cb, commit()
// reports through offset_commit_cb, produce() throws a coded error when refused.
import { EventEmitter } from 'node:events'
import Kafka from 'node-rdkafka'
import type { ConsumerClient, ConsumerFactory, ProducerClient, ProducerFactory } from '../../daemon/kafka/clients.js'

type Callback<T> = (err: Kafka.LibrdKafkaError | null, value: T) => void
interface Position { topic: string, partition: number, offset: number }

const codedError = (code: number, message: string): Error & Kafka.LibrdKafkaError =>
  Object.assign(new Error(message), { code, errno: code, origin: 'kafka' })

export const ASSIGN = Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS
export const REVOKE = Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS

export class FakeConsumer extends EventEmitter {
  global: Kafka.ConsumerGlobalConfig = {}
  topicConfig: Kafka.ConsumerTopicConfig = {}
  connectError: Error | null = null
  consumeError: Error | null = null
  /** The next commit()'s outcome, reported through offset_commit_cb. */
  commitError: Kafka.LibrdKafkaError | null = null
  subscribed: string[] = []
  assigned: Position[] = []
  paused = new Set<string>()
  pauses = 0
  resumes = 0
  consumeCalls = 0
  consumeTimeoutMs = 0
  disconnected = false
  readonly commits: Array<{ sync: boolean, positions: Position[] }> = []
  /** Per topic and partition: the records ever written, by offset from low. */
  readonly log = new Map<string, Kafka.Message[]>()
  readonly low = new Map<string, number>()
  /** Per assigned topic-partition: the next offset consume() returns. */
  readonly #next = new Map<string, number>()

  /** Writes `n` records to a partition; returns them. */
  write (topic: string, partition: number, n: number, value: (offset: number) => Buffer = o => Buffer.from(`v${o}`)): Kafka.Message[] {
    const k = `${topic}:${partition}`
    const records = this.log.get(k) ?? []
    this.log.set(k, records)
    const base = (this.low.get(k) ?? 0) + records.length
    const added = Array.from({ length: n }, (_, i) => {
      const offset = base + i
      const v = value(offset)
      return { topic, partition, offset, value: v, size: v.length, key: Buffer.from('AAPL'), timestamp: 1_700_000_000_000 + offset } as Kafka.Message
    })
    records.push(...added)
    return added
  }

  high (topic: string, partition: number): number {
    const k = `${topic}:${partition}`
    return (this.low.get(k) ?? 0) + (this.log.get(k)?.length ?? 0)
  }

  /** The group coordinator's side of a rebalance. */
  rebalance (code: number, assignment: Array<{ topic: string, partition: number }>): void {
    const cb = (this.global as { rebalance_cb?: (err: Kafka.LibrdKafkaError, a: Kafka.Assignment[]) => void }).rebalance_cb
    if (cb === undefined) throw new Error('the consumer was built without a rebalance_cb')
    cb(codedError(code, code === ASSIGN ? 'assign' : 'revoke'), assignment)
  }

  connect (_opts: unknown, cb: Callback<Kafka.Metadata>): this {
    setImmediate(() => { cb(this.connectError as Kafka.LibrdKafkaError | null, { orig_broker_id: 1, orig_broker_name: 'fake', topics: [], brokers: [] }) })
    return this
  }

  disconnect (cb?: () => void): this {
    this.disconnected = true
    setImmediate(() => cb?.())
    return this
  }

  setDefaultConsumeTimeout (ms: number): void { this.consumeTimeoutMs = ms }
  subscribe (topics: string[]): this { this.subscribed = topics; return this }

  assign (assignment: Array<{ topic: string, partition: number, offset?: number }>): this {
    this.assigned = assignment.map(a => {
      const k = `${a.topic}:${a.partition}`
      this.#next.set(k, a.offset ?? this.#next.get(k) ?? this.low.get(k) ?? 0)
      return { topic: a.topic, partition: a.partition, offset: a.offset ?? 0 }
    })
    return this
  }

  unassign (): this { this.assigned = []; return this }
  assignments (): Kafka.Assignment[] { return this.assigned.map(a => ({ topic: a.topic, partition: a.partition })) }

  pause (partitions: Array<{ topic: string, partition: number }>): void {
    this.pauses++
    for (const p of partitions) this.paused.add(`${p.topic}:${p.partition}`)
  }

  resume (partitions: Array<{ topic: string, partition: number }>): void {
    this.resumes++
    for (const p of partitions) this.paused.delete(`${p.topic}:${p.partition}`)
  }

  consume (n: number, cb: Callback<Kafka.Message[]>): void {
    this.consumeCalls++
    if (this.consumeError !== null) {
      const err = this.consumeError
      this.consumeError = null
      setImmediate(() => { cb(err as unknown as Kafka.LibrdKafkaError, []) })
      return
    }
    const out: Kafka.Message[] = []
    for (const a of this.assigned) {
      const k = `${a.topic}:${a.partition}`
      if (this.paused.has(k)) continue
      const records = this.log.get(k) ?? []
      const low = this.low.get(k) ?? 0
      let next = this.#next.get(k) ?? low
      while (out.length < n && next - low < records.length) out.push(records[next++ - low] as Kafka.Message)
      this.#next.set(k, next)
    }
    // Nothing to read: librdkafka waits up to the consume timeout; a short wait keeps the loop off the CPU.
    if (out.length === 0) setTimeout(() => { cb(null, out) }, 2)
    else setImmediate(() => { cb(null, out) })
  }

  commit (positions: Position[]): this {
    this.commits.push({ sync: false, positions: positions.map(p => ({ ...p })) })
    const err = this.commitError
    this.commitError = null
    const cb = (this.global as { offset_commit_cb?: (err: Kafka.LibrdKafkaError | null, p: Position[]) => void }).offset_commit_cb
    setImmediate(() => cb?.(err, positions))
    return this
  }

  commitSync (positions: Position[]): this {
    this.commits.push({ sync: true, positions: positions.map(p => ({ ...p })) })
    return this
  }

  queryWatermarkOffsets (topic: string, partition: number, _timeout: number, cb: Callback<Kafka.WatermarkOffsets>): void {
    const k = `${topic}:${partition}`
    setImmediate(() => { cb(null, { lowOffset: this.low.get(k) ?? 0, highOffset: this.high(topic, partition) }) })
  }

  getMetadata (opts: { topic?: string }, cb: Callback<Kafka.Metadata>): void {
    const partitions = [...this.log.keys()].filter(k => k.startsWith(`${opts.topic ?? ''}:`)).map(k => Number(k.split(':')[1]))
    setImmediate(() => {
      cb(null, {
        orig_broker_id: 1,
        orig_broker_name: 'fake',
        brokers: [],
        topics: partitions.length === 0 ? [] : [{ name: opts.topic ?? '', partitions: partitions.map(id => ({ id, leader: 1, replicas: [1], isrs: [1] })) }]
      })
    })
  }

  /** The factory the classes take: every client it builds is this one. */
  factory (): ConsumerFactory {
    return (global, topic) => {
      this.global = global
      this.topicConfig = topic
      return this as unknown as ConsumerClient
    }
  }
}

export interface Produced { topic: string, partition: number | null, value: Buffer | null, key: Buffer | null, timestamp: number | undefined }

export class FakeProducer extends EventEmitter {
  global: Kafka.ProducerGlobalConfig = {}
  topicConfig: Kafka.ProducerTopicConfig = {}
  connectError: Error | null = null
  pollIntervalMs: number | null = null
  disconnected = false
  readonly produced: Produced[] = []
  /** Called with each produce() call's index (from 0); an error it returns is thrown by produce(). */
  refuse: (attempt: number) => Error | null = () => null
  attempts = 0
  /** Records produced and not yet reported (reported by ack()/fail()). */
  readonly pending: Produced[] = []
  flushes = 0

  connect (_opts: unknown, cb: Callback<Kafka.Metadata>): this {
    setImmediate(() => { cb(this.connectError as Kafka.LibrdKafkaError | null, { orig_broker_id: 1, orig_broker_name: 'fake', topics: [], brokers: [] }) })
    return this
  }

  disconnect (cb?: () => void): this {
    this.disconnected = true
    setImmediate(() => cb?.())
    return this
  }

  setPollInterval (ms: number): this { this.pollIntervalMs = ms; return this }

  produce (topic: string, partition: number | null, value: Buffer | null, key: Buffer | null, timestamp?: number): boolean {
    const err = this.refuse(this.attempts++)
    if (err !== null) throw err
    // librdkafka copies the value and key (the producer encodes into a reused scratch buffer).
    const record = { topic, partition, value: value === null ? null : Buffer.from(value), key: key === null ? null : Buffer.from(key), timestamp }
    this.produced.push(record)
    this.pending.push(record)
    return true
  }

  /** Delivery reports for the `n` oldest pending records: success, or the given error. */
  report (n: number, err: Kafka.LibrdKafkaError | null = null): void {
    for (const r of this.pending.splice(0, n)) {
      this.emit('delivery-report', err, { topic: r.topic, partition: 0, offset: 0, key: r.key, size: r.value?.length ?? 0, timestamp: r.timestamp })
    }
  }

  stats (json: string): void { this.emit('event.stats', { message: json }) }

  flush (_timeout: number, cb: (err: Kafka.LibrdKafkaError | null) => void): this {
    this.flushes++
    setImmediate(() => { cb(null) })
    return this
  }

  factory (): ProducerFactory {
    return (global, topic) => {
      this.global = global
      this.topicConfig = topic
      return this as unknown as ProducerClient
    }
  }
}

export { codedError }
