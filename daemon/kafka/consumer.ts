// The trade consumer: node-rdkafka in non-flowing mode, batches of up to
// workers.batchSize records per consume() call (never a callback per message),
// manual offsets. The consumer owns "done": a batch's handler returns a promise, and
// its offsets are tracked per partition (core/offsets.ts) until it resolves; offsets are
// committed (every kafka.commitIntervalMs, on revocation and on close) only for
// the contiguous prefix of finished batches, as offset + 1. On revocation the
// finished prefix is committed (asynchronously, see #onRebalance) before the
// partitions go, and what is still in flight for them finishes without committing
// (the next owner reads it again; writes are idempotent). Backpressure: at workers.maxQueue batches in
// flight the loop first waits, without consuming, for one of them to finish (up to
// PAUSE_AFTER_MS; librdkafka keeps prefetching meanwhile, within
// kafka.fetchQueueMaxKbytes, so the next batch is there at once); only a longer wait
// (Cassandra away, say) pauses the assigned partitions (consume() keeps polling, so
// the group session stays alive), and they resume once half of the batches have
// finished. Pausing at every bound cost throughput: librdkafka drops a paused
// partition's prefetched records and took 0.3-1 s to fetch again after the resume,
// so a bound of 4 batches drained a backlog at 8,300 rows/s; waiting first, 25,700.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { brokerHealth, connectKafka, parseStats, type BrokerHealth, disconnectQuietly } from './admin.js'
import { kafkaClientConfig } from './client-config.js'
import { realConsumer, type ConsumerClient, type ConsumerFactory } from './clients.js'
import { OffsetTracker, type Span } from '../core/offsets.js'
import type { Logger } from '../log.js'
import { waitUntil } from '../wait.js'
import type { ProcessCounters } from '../metrics/process.js'

const ASSIGN = Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS
const REVOKE = Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS
/** How long the loop waits at the in-flight bound, not consuming, before it pauses the partitions. */
const PAUSE_AFTER_MS = 1_000

export interface ConsumedBatch {
  messages: Kafka.Message[]
  consumedAt: number
}

/** What a handler returns once a batch's trades are stored: what its commit still waits for. */
export interface BatchStored {
  durable: Promise<void>
}

export interface TradeConsumerOptions {
  kafka: Config['kafka']
  batchSize: number
  maxInFlightBatches: number
  log: Logger
  counters: ProcessCounters
  /**
   * Handles a batch in two steps. The promise resolves once the batch's trade rows are
   * stored: its in-flight slot is free then. When it resolves to a BatchStored with a
   * `durable` promise, the batch's offsets become committable only once that resolves
   * too (its candles written, its refused rows dead-lettered); otherwise at once.
   * Either rejects only when the handler gave up (the daemon is stopping): the batch
   * stays uncommitted and is read again after a restart.
   */
  onBatch: (batch: ConsumedBatch) => Promise<BatchStored | undefined | void>
  /**
   * Batches stored but not yet durable (see onBatch) at which consumption waits as it
   * does at maxInFlightBatches. Unbounded when absent.
   */
  maxWaitingBatches?: number
  /** Builds the client (the unit tests' fake); the real KafkaConsumer when absent. */
  client?: ConsumerFactory
}

interface PartitionStats { partition: number, consumer_lag: number }
interface ConsumerStats {
  topics?: Record<string, { partitions: Record<string, PartitionStats> }>
  brokers?: Record<string, { state: string, nodeid: number, nodename?: string }>
}

export class TradeConsumer {
  readonly #opts: TradeConsumerOptions
  readonly #consumer: ConsumerClient
  readonly #tracker = new OffsetTracker()
  #running = false
  #loop: Promise<void> | null = null
  #paused = false
  #inFlightBatches = 0
  /** Batches stored, waiting for their `durable` (candles) before their offsets may commit. */
  #waitingBatches = 0
  /** Set while the loop waits at the in-flight bound: called when a batch finishes or on stop. */
  #wake: (() => void) | null = null
  #commitTimer: NodeJS.Timeout | null = null
  #connected = false
  #brokers: BrokerHealth | null = null
  #batchSize: number
  #commitIntervalMs: number
  /** Per partition: the next offset to read, from consumed records and partition-EOF events. */
  readonly #positions = new Map<number, number>()

  constructor (opts: TradeConsumerOptions) {
    this.#opts = opts
    this.#batchSize = opts.batchSize
    this.#commitIntervalMs = opts.kafka.commitIntervalMs
    const k = opts.kafka
    this.#consumer = (opts.client ?? realConsumer)({
      ...kafkaClientConfig(k, '-consumer'),
      'group.id': k.groupId,
      'session.timeout.ms': k.sessionTimeoutMs,
      ...(k.groupInstanceId !== null ? { 'group.instance.id': k.groupInstanceId } : {}),
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'fetch.wait.max.ms': k.fetchWaitMaxMs,
      'queued.max.messages.kbytes': k.fetchQueueMaxKbytes,
      // consume(n) waits kafka.consumeTimeoutMs for *each* next message, so at a steady
      // moderate rate a batch would only return when full (2000 trades at 500/s: 4 s).
      // With partition EOF events, node-rdkafka returns what it has once it caught up.
      'enable.partition.eof': true,
      'socket.keepalive.enable': true,
      'statistics.interval.ms': k.statsIntervalMs,
      offset_commit_cb: (err: Kafka.LibrdKafkaError | null) => { this.#onCommitted(err) },
      rebalance_cb: (err: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]) => { this.#onRebalance(err, assignment) }
    } as Kafka.ConsumerGlobalConfig, { 'auto.offset.reset': k.autoOffsetReset })
    this.#consumer.on('event.error', err => {
      opts.log.limited('warn', 'kafka-consumer-error', 'Kafka consumer error; librdkafka keeps retrying', { err })
    })
    this.#consumer.on('event.stats', event => { this.#onStats(event.message) })
    this.#consumer.on('partition.eof', eof => {
      if (eof.topic === k.topic) this.#advance(eof.partition, eof.offset)
    })
  }

  get connected (): boolean { return this.#connected }
  /** Brokers up at the last statistics event (null before the first). */
  get brokers (): BrokerHealth | null { return this.#brokers }
  get paused (): boolean { return this.#paused }
  get inFlightBatches (): number { return this.#inFlightBatches }
  get waitingBatches (): number { return this.#waitingBatches }

  /** At a bound: consuming more now would only pile up batches. */
  #full (): boolean {
    return this.#inFlightBatches >= this.#opts.maxInFlightBatches || this.#waitingBatches >= (this.#opts.maxWaitingBatches ?? Infinity)
  }

  async connect (timeoutMs: number): Promise<void> {
    await connectKafka(this.#consumer, this.#opts.kafka, timeoutMs)
    this.#connected = true
    this.#consumer.setDefaultConsumeTimeout(this.#opts.kafka.consumeTimeoutMs)
  }

  start (): void {
    this.#consumer.subscribe([this.#opts.kafka.topic])
    this.#running = true
    this.#loop = this.#run()
    this.#armCommitTimer()
  }

  /** Reload: records per consume() call from the next batch on. */
  setBatchSize (n: number): void { this.#batchSize = n }

  /** Reload: how long consume() waits for each next record. */
  setConsumeTimeout (ms: number): void { this.#consumer.setDefaultConsumeTimeout(ms) }

  /** Reload: the periodic commit's interval. */
  setCommitInterval (ms: number): void {
    this.#commitIntervalMs = ms
    if (this.#commitTimer !== null) this.#armCommitTimer()
  }

  #armCommitTimer (): void {
    if (this.#commitTimer !== null) clearInterval(this.#commitTimer)
    this.#commitTimer = setInterval(() => { this.commit() }, this.#commitIntervalMs)
    this.#commitTimer.unref()
  }

  /**
   * Shutdown of a daemon that also ingests: keeps consuming until every assigned
   * partition is read up to its high watermark as of now (the records our producer
   * just flushed) and every batch read is finished, or until the deadline. Returns
   * how many records were left unread (0 when drained).
   */
  async drainToEnd (deadline: number): Promise<{ drained: boolean, unread: number }> {
    const topic = this.#opts.kafka.topic
    const targets = new Map<number, number>()
    for (const a of this.#consumer.assignments()) {
      if (a.topic !== topic) continue
      const left = Math.max(1, deadline - Date.now())
      try {
        const w = await new Promise<Kafka.WatermarkOffsets>((resolve, reject) => {
          this.#consumer.queryWatermarkOffsets(topic, a.partition, Math.min(left, 5_000), (err, offsets) => { err ? reject(err) : resolve(offsets) })
        })
        targets.set(a.partition, w.highOffset)
      } catch (err) {
        this.#opts.log.warn('could not read a partition\'s end offset while draining; not waiting for it', { err, partition: a.partition })
      }
    }
    const unread = (): number => {
      // A partition revoked meanwhile is the new owner's to read.
      const assigned = new Set(this.#consumer.assignments().filter(a => a.topic === topic).map(a => a.partition))
      let n = 0
      for (const [p, high] of targets) if (assigned.has(p)) n += Math.max(0, high - (this.#positions.get(p) ?? 0))
      return n
    }
    const idle = (): boolean => this.#inFlightBatches === 0 && this.#waitingBatches === 0
    await waitUntil(() => unread() === 0 && idle(), deadline, 10)
    const left = unread()
    return { drained: left === 0 && idle(), unread: left }
  }

  #advance (partition: number, next: number): void {
    if (next > (this.#positions.get(partition) ?? -1)) this.#positions.set(partition, next)
  }

  /** Commits the finished prefix of every partition (asynchronously). */
  commit (): void {
    this.#commit(false)
  }

  /** Stops consuming; waits (up to drainTimeoutMs) for in-flight batches, commits what finished, leaves the group. */
  async close (drainTimeoutMs: number): Promise<{ abandonedBatches: number }> {
    this.#running = false
    this.#wake?.()
    await this.#loop
    if (this.#commitTimer !== null) clearInterval(this.#commitTimer)
    await waitUntil(() => this.#inFlightBatches === 0 && this.#waitingBatches === 0, Date.now() + drainTimeoutMs)
    const abandonedBatches = this.#inFlightBatches + this.#waitingBatches
    this.#commit(true)
    await disconnectQuietly(this.#consumer)
    this.#connected = false
    return { abandonedBatches }
  }

  async #run (): Promise<void> {
    while (this.#running) {
      if (!this.#paused && this.#full()) {
        // Woken by any batch that moves on (stored or durable); a wake that frees neither bound waits on, up to PAUSE_AFTER_MS in all.
        const until = Date.now() + PAUSE_AFTER_MS
        while (this.#running && this.#full() && Date.now() < until) await this.#waitForSlot(until - Date.now())
        if (!this.#full() || !this.#running) continue
      }
      this.#applyBackpressure()
      let messages: Kafka.Message[]
      try {
        messages = await new Promise<Kafka.Message[]>((resolve, reject) => {
          this.#consumer.consume(this.#batchSize, (err, msgs) => { err ? reject(err) : resolve(msgs) })
        })
      } catch (err) {
        this.#opts.log.limited('warn', 'kafka-consume', 'consume failed; retrying', { err })
        await new Promise(resolve => setTimeout(resolve, 200))
        continue
      }
      if (messages.length > 0) this.#dispatch(messages)
    }
  }

  #dispatch (messages: Kafka.Message[]): void {
    const c = this.#opts.counters
    // One span per partition: the batch's records of a partition are consecutive offsets in order.
    const ranges = new Map<string, { topic: string, partition: number, first: number, last: number }>()
    for (const m of messages) {
      const k = `${m.topic}\u0000${m.partition}`
      const r = ranges.get(k)
      if (r === undefined) ranges.set(k, { topic: m.topic, partition: m.partition, first: m.offset, last: m.offset })
      else r.last = m.offset
    }
    const spans: Span[] = []
    for (const r of ranges.values()) {
      if (r.topic === this.#opts.kafka.topic) this.#advance(r.partition, r.last + 1)
      const span = this.#tracker.track(r.topic, r.partition, r.first, r.last)
      if (span !== null) spans.push(span)
    }
    this.#inFlightBatches++
    c.consumed += messages.length
    c.batches++
    c.inFlightBatches = this.#inFlightBatches
    c.inFlightRecords = this.#tracker.inFlight
    const records = messages.length
    const done = (): void => {
      for (const span of spans) this.#tracker.done(span)
      c.inFlightRecords = this.#tracker.inFlight
    }
    const failed = (err: unknown): void => {
      // The batch stays uncommitted: it is read again after a restart.
      this.#opts.log[this.#running ? 'error' : 'debug'](this.#running
        ? 'a batch handler failed while running; its records stay uncommitted and are read again after a restart (a finnhubd bug: please report it)'
        : 'batch abandoned while stopping; it is read again after a restart', { err, records })
    }
    let handling: Promise<BatchStored | undefined | void>
    try {
      handling = this.#opts.onBatch({ messages, consumedAt: Date.now() })
    } catch (err) {
      handling = Promise.reject(err)
    }
    // The messages are not referenced past this point: a batch waiting for its candles holds no records.
    handling.then(stored => {
      this.#inFlightBatches--
      c.inFlightBatches = this.#inFlightBatches
      if (stored === undefined || stored === null) {
        done()
      } else {
        this.#waitingBatches++
        c.waitingBatches = this.#waitingBatches
        stored.durable.then(done, failed).finally(() => {
          this.#waitingBatches--
          c.waitingBatches = this.#waitingBatches
          this.#wake?.()
        })
      }
      this.#wake?.()
    }, failed)
  }

  /** Resolves when a batch finishes, on stop, or after `ms`. */
  async #waitForSlot (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { this.#wake = null; resolve() }, ms)
      this.#wake = () => { clearTimeout(timer); this.#wake = null; resolve() }
    })
  }

  #applyBackpressure (): void {
    const high = this.#opts.maxInFlightBatches
    const waitingHigh = this.#opts.maxWaitingBatches ?? Infinity
    if (!this.#paused && this.#full()) {
      this.#setPaused(true)
    } else if (this.#paused && this.#inFlightBatches <= Math.floor(high / 2) && this.#waitingBatches <= Math.floor(waitingHigh / 2)) {
      this.#setPaused(false)
    }
  }

  #setPaused (paused: boolean): void {
    const partitions = this.#consumer.assignments()
    try {
      if (paused) this.#consumer.pause(partitions)
      else this.#consumer.resume(partitions)
    } catch (err) {
      this.#opts.log.limited('warn', 'kafka-pause', `could not ${paused ? 'pause' : 'resume'} the assigned partitions`, { err })
      return
    }
    this.#paused = paused
    this.#opts.counters.paused = paused ? 1 : 0
    this.#opts.log.debug(paused ? 'consumer paused: in-flight bound reached' : 'consumer resumed', { inFlightBatches: this.#inFlightBatches })
  }

  #onRebalance (err: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]): void {
    try {
      if (err.code === ASSIGN) {
        for (const a of assignment) this.#tracker.assign(a.topic, a.partition)
        this.#consumer.assign(assignment)
        if (this.#paused) this.#consumer.pause(assignment)
        this.#opts.log.info('partitions assigned', { partitions: assignment.map(a => a.partition) })
      } else if (err.code === REVOKE) {
        // Commit what is finished while the partitions are still ours, then let them
        // go. Asynchronously: a synchronous commit blocks the main thread until the
        // coordinator answers, and when the rebalance comes from a lost session over a
        // slow network that took 5 s in the fault suite, long enough for the Finnhub
        // watchdog to call the silent socket stale. A commit that fails here costs a
        // re-read of finished records (idempotent writes), never a loss.
        this.#commit(false)
        for (const a of assignment) {
          this.#tracker.revoke(a.topic, a.partition)
          if (a.topic === this.#opts.kafka.topic) this.#positions.delete(a.partition)
        }
        this.#consumer.unassign()
        this.#opts.log.info('partitions revoked', { partitions: assignment.map(a => a.partition) })
      } else {
        this.#opts.log.error('rebalance error', { err })
      }
    } catch (e) {
      this.#opts.log.error('rebalance handling failed', { err: e })
    }
  }

  /** Commits the finished prefix; synchronously on close. */
  #commit (sync: boolean): void {
    const positions = this.#tracker.takeCommits()
    if (positions.length === 0 || !this.#connected) return
    this.#opts.log.debug(sync ? 'committing (sync)' : 'committing', { positions })
    try {
      if (sync) this.#consumer.commitSync(positions)
      else this.#consumer.commit(positions)
      this.#opts.counters.commits++
    } catch (err) {
      this.#onCommitted(err as Kafka.LibrdKafkaError)
    }
  }

  #onCommitted (err: Kafka.LibrdKafkaError | null): void {
    // -168 (no offset to commit) is not a failure.
    if (err === null || err === undefined || err.code === Kafka.CODES.ERRORS.ERR__NO_OFFSET) return
    this.#opts.counters.commitErrors++
    this.#tracker.retryCommits()
    this.#opts.log.limited('warn', 'kafka-commit', 'offset commit failed; it is retried at the next interval (records may be read again, never lost)', { err })
  }

  #onStats (json: string): void {
    const stats = parseStats<ConsumerStats>(json)
    if (stats === null) return
    this.#brokers = brokerHealth(stats.brokers)
    const partitions = stats.topics?.[this.#opts.kafka.topic]?.partitions ?? {}
    const lag = new Map<number, number>()
    let total = 0
    for (const p of Object.values(partitions)) {
      if (p.partition < 0 || p.consumer_lag < 0) continue
      lag.set(p.partition, p.consumer_lag)
      total += p.consumer_lag
    }
    this.#opts.counters.lagByPartition = lag
    this.#opts.counters.lag = total
  }
}
