// Cassandra writes for the process role: prepared statements, rows grouped by
// partition key (symbol, day) into unlogged batches that never span partitions and
// stay under the batch size budget, at most cassandra.maxConcurrentWrites requests
// outstanding, every statement marked idempotent (a trade row is keyed by its
// deterministic id, so writing it twice writes the same row). A failed request is
// retried with backoff for as long as it takes: while Cassandra is away the
// batches stay in flight, the consumer pauses on its in-flight bound, no offset is
// committed, and writing resumes by itself when Cassandra returns. close() stops
// the retrying (what is not written then stays uncommitted and is read again).

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { encodeRows, RowView, TRADE_COLUMNS } from '../core/cql-rows.js'
import { PartitionQueue } from '../core/write-queue.js'
import { backoffDelay, RetryScope, retryUntilDone } from '../core/retry.js'
import type { TradeRow } from '../core/transform.js'
import { FinnhubdError, isFinnhubdError } from '../core/errors.js'
import { classifyCassandraError } from './errors.js'
import { compositeKey, ReplicaGroups, type ReplicaGroup } from './replicas.js'
import type { Logger } from '../log.js'
import type { ProcessCounters } from '../metrics/process.js'

export interface WriterOptions {
  client: cassandra.Client
  cassandra: Config['cassandra']
  log: Logger
  counters: ProcessCounters
}

/** A row Cassandra refused as invalid: its index in the written batch, and Cassandra's word for why. */
export interface RejectedRow { index: number, error: string }

/**
 * The requests a lane may have in flight at most, of cassandra.maxConcurrentWrites: candle
 * writes, rebuild reads and period loads (the `candles` lane) take at most a quarter, so
 * a burst of them (a restart rebuilds every symbol's current minute from `trades`:
 * thousands of rows each after a busy minute) never holds the slots trade writes need.
 */
export function laneLimit (maxConcurrentWrites: number): number {
  return Math.max(1, Math.floor(maxConcurrentWrites / 4))
}

export type Lane = 'trades' | 'candles'

/**
 * A counting bound whose freed slot goes straight to the oldest waiter (so a request
 * woken never finds it taken again); close() wakes every waiter without one.
 */
class Slots {
  active = 0
  readonly #waiting: Array<(handedOver: boolean) => void> = []

  constructor (readonly limit: () => number) {}

  get waiting (): number { return this.#waiting.length }

  /** Resolves false when closed while waiting. */
  async take (): Promise<boolean> {
    if (this.active < this.limit()) {
      this.active++
      return true
    }
    return await new Promise<boolean>(resolve => this.#waiting.push(resolve))
  }

  /** True when the slot went to a waiter, false when it is free now. */
  release (): boolean {
    const next = this.#waiting.shift()
    if (next !== undefined) {
      next(true)
      return true
    }
    this.active--
    return false
  }

  close (): void {
    for (const wake of this.#waiting.splice(0)) wake(false)
  }
}

export class CassandraExecutor {
  readonly #opts: WriterOptions
  readonly #slots: Slots
  /** The candles lane: requests in it (waiting for a global slot or holding one), and those waiting to enter. */
  readonly #candleLane: Slots
  readonly #retries = new RetryScope()
  readonly #slotListeners: Array<() => void> = []

  constructor (opts: WriterOptions) {
    this.#opts = opts
    this.#slots = new Slots(() => opts.cassandra.maxConcurrentWrites)
    this.#candleLane = new Slots(() => laneLimit(opts.cassandra.maxConcurrentWrites))
  }

  get closed (): boolean { return this.#retries.closed }

  /** Request slots free now (cassandra.maxConcurrentWrites less those in use or waited for). */
  get freeSlots (): number { return this.#retries.closed ? 0 : this.#opts.cassandra.maxConcurrentWrites - this.#slots.active - this.#slots.waiting }

  /** Called whenever a slot frees: a queue that cuts requests only when a slot is free pumps here. */
  onSlotFree (listener: () => void): void { this.#slotListeners.push(listener) }

  /**
   * Runs `fn` under the concurrency bound, retrying with backoff until it succeeds or
   * close() is called. With `rejectInvalid`, a failure that retrying cannot cure (the
   * request itself is invalid, see ./errors.ts) rejects at once with
   * FINNHUBD_ERR_CASSANDRA_REJECTED instead, for the caller to isolate its rows.
   */
  async run<T> (what: string, fn: (client: cassandra.Client) => Promise<T>, options: { rejectInvalid?: boolean, lane?: Lane } = {}): Promise<T> {
    const c = this.#opts.counters
    const closedError = (): Error => new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE', `${what} abandoned: the writer is closing`)
    const candles = options.lane === 'candles'
    const result = await retryUntilDone(async () => {
      if (candles) await this.#take(this.#candleLane, what)
      try {
        await this.#take(this.#slots, what)
        c.cassandraInFlight++
        try {
          return await fn(this.#opts.client)
        } finally {
          this.#release()
          c.cassandraInFlight--
        }
      } finally {
        if (candles) this.#candleLane.release()
      }
    }, {
      scope: this.#retries,
      closedError,
      onFailure: (error, attempt) => {
        if (isFinnhubdError(error, 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE') && this.#retries.closed) return { fail: error }
        c.cassandraErrors++
        const failure = classifyCassandraError(error)
        if (failure.kind === 'rejected') {
          if (options.rejectInvalid === true) return { fail: new FinnhubdError('FINNHUBD_ERR_CASSANDRA_REJECTED', failure.message, { cause: error }) }
        } else {
          c.cassandraUp = 0
        }
        const delay = backoffDelay(attempt, this.#opts.cassandra.retryInitialDelayMs, this.#opts.cassandra.retryMaxDelayMs)
        this.#opts.log.limited('warn', `cassandra-${what}`,
          `Cassandra ${what} failed; retrying (nothing is committed until it is written): ${failure.kind === 'transient' ? failure.hint : failure.message}`,
          { err: error, attempt, retryInMs: delay })
        return delay
      }
    })
    c.cassandraUp = 1
    return result
  }

  /** Stops retrying; requests waiting for a slot or a retry reject. */
  close (): void {
    this.#retries.close()
    this.#slots.close()
    this.#candleLane.close()
  }

  /** Requests of the candles lane now (in flight or waiting for a global slot). */
  get candleLaneActive (): number { return this.#candleLane.active }

  /** A slot of `slots`, or FINNHUBD_ERR_CASSANDRA_UNREACHABLE once the executor is closed. */
  async #take (slots: Slots, what: string): Promise<void> {
    if (this.#retries.closed || !await slots.take()) throw new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE', `${what} abandoned: the writer is closing`)
  }

  #release (): void {
    // A slot handed to a waiter is not free: only a freed one is announced.
    if (!this.#slots.release()) for (const listener of this.#slotListeners) listener()
  }
}

/** A row of a batch, as the write queue holds it. */
interface RowRef { view: RowView, index: number }

/**
 * Writes trade rows as unlogged batches of prepared inserts, cut from a queue of rows
 * grouped by the replica that owns their partition (core/write-queue.ts), when a
 * request slot of the executor frees: at most cassandra.maxConcurrentWrites requests
 * in flight (trades, candles and rebuild reads together), and while all are busy the
 * rows of later writes join the ones waiting for their replica, so requests grow
 * with the load instead of multiplying. A batch spans the partitions of one replica
 * (its first replica in ring order, which the request is routed to), so every
 * mutation of it is local to the coordinator; it stays under cassandra.batchMaxBytes
 * (below Cassandra's batch_size_warn_threshold, which, with batch_size_fail_threshold,
 * applies to batches that span partitions).
 */
export class TradeWriter {
  readonly #exec: CassandraExecutor
  readonly #insert: string
  readonly #counters: ProcessCounters
  readonly #queue: PartitionQueue<RowRef>
  readonly #log: Logger
  /** Rows Cassandra refused (by view, then index), until the write() that holds them collects them. */
  readonly #rejected = new Map<RowView, Map<number, string>>()
  readonly #groups: ReplicaGroups

  constructor (exec: CassandraExecutor, opts: WriterOptions) {
    this.#exec = exec
    this.#counters = opts.counters
    this.#log = opts.log
    this.#queue = new PartitionQueue<RowRef>({
      partition: r => r.view.partition(r.index),
      group: r => this.#groupOf(r).group,
      size: r => r.view.size(r.index)
    }, opts.cassandra.batchMaxBytes)
    const { keyspace, tradesTable } = opts.cassandra
    this.#insert = `INSERT INTO ${keyspace}.${tradesTable} (${TRADE_COLUMNS.join(', ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
    this.#groups = new ReplicaGroups(opts.client, opts.cassandra.keyspace)
    exec.onSlotFree(() => { this.#pump() })
  }

  /** Rows waiting for a request slot. */
  get pending (): number { return this.#queue.pending }

  /**
   * Resolves once every row is acknowledged (retrying as long as needed) or refused
   * by Cassandra as invalid; rejects only when the writer is closed. Resolves to the
   * refused rows (by index) with why (usually none): the caller dead-letters them.
   */
  async write (view: RowView): Promise<RejectedRow[]> {
    const refs: RowRef[] = new Array(view.count)
    for (let i = 0; i < view.count; i++) refs[i] = { view, index: i }
    await new Promise<void>((resolve, reject) => {
      this.#queue.push(refs, resolve, reject)
      this.#pump()
    })
    const refused = this.#rejected.get(view)
    if (refused === undefined) return []
    this.#rejected.delete(view)
    return [...refused].map(([index, error]) => ({ index, error })).sort((a, b) => a.index - b.index)
  }

  /** write() for rows made on this thread (the bench's ceiling, tests): encoded first, as the worker does. */
  async writeRows (rows: readonly TradeRow[]): Promise<RejectedRow[]> {
    return await this.write(new RowView(encodeRows(rows)))
  }

  #groupOf (r: RowRef): ReplicaGroup {
    return this.#groups.of(r.view.partition(r.index), () => {
      const p = r.view.params(r.index)
      return compositeKey(p[0] as Buffer, p[1] as Buffer)
    })
  }

  #pump (): void {
    while (this.#exec.freeSlots > 0) {
      const request = this.#queue.take()
      if (request === null) return
      this.#sendIsolating(request.rows).then(() => {
        this.#queue.complete(request)
      }, err => {
        // Only when the executor is closed: nothing more will be written.
        this.#queue.fail(request, err)
        this.#queue.failAll(err)
      })
    }
  }

  /**
   * Writes the rows; when Cassandra refuses the request as invalid, halves it until
   * the refused rows stand alone (each row that cannot be written is set aside with
   * the error, the others are written), so one bad row never holds back the good ones
   * around it (a batch over batch_size_fail_threshold is written in halves the same way).
   */
  async #sendIsolating (batch: readonly RowRef[]): Promise<void> {
    try {
      await this.#send(batch)
      this.#counters.cassandraBatches++
      this.#counters.rowsWritten += batch.length
    } catch (err) {
      if (!isFinnhubdError(err, 'FINNHUBD_ERR_CASSANDRA_REJECTED')) throw err
      if (batch.length === 1) {
        const { view, index } = batch[0] as RowRef
        this.#counters.cassandraRejectedRows++
        let refused = this.#rejected.get(view)
        if (refused === undefined) this.#rejected.set(view, refused = new Map())
        refused.set(index, err.message)
        this.#log.limited('error', 'cassandra-rejected-row', 'Cassandra refused a trade row as invalid; its record goes to the dead-letter topic',
          { err: err.message, symbol: view.symbol(index).slice(0, 64), trade_ts: view.tradeTs(index), trade_id: view.tradeId(index) })
        return
      }
      const half = Math.ceil(batch.length / 2)
      await this.#sendIsolating(batch.slice(0, half))
      await this.#sendIsolating(batch.slice(half))
    }
  }

  async #send (batch: readonly RowRef[]): Promise<void> {
    const first = batch[0] as RowRef
    const { routingKey } = this.#groupOf(first)
    await this.#exec.run('trade write', async client => {
      if (batch.length === 1) {
        await client.execute(this.#insert, first.view.params(first.index), { prepare: true, isIdempotent: true })
      } else {
        const queries = batch.map(r => ({ query: this.#insert, params: r.view.params(r.index) }))
        await client.batch(queries, { prepare: true, logged: false, isIdempotent: true, ...(routingKey !== undefined ? { routingKey } : {}) })
      }
    }, { rejectInvalid: true })
  }
}
