// Cassandra writes for the process role: prepared statements, rows grouped by
// partition key (symbol, day) into unlogged batches that never span partitions and
// stay under the batch size budget, at most cassandra.maxConcurrentWrites requests
// outstanding, every statement marked idempotent (a trade row is keyed by its
// deterministic id, so writing it twice writes the same row). A failed request is
// retried with backoff for as long as it takes: while Cassandra is away the
// batches stay in flight, the consumer pauses on its in-flight bound, no offset is
// committed, and writing resumes by itself when Cassandra returns. close() stops
// the retrying (what is not written then stays uncommitted and is read again).

import cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'

const cassandraTypes = cassandra.types
import { estimateRowBytes } from '../core/batching.js'
import { PartitionQueue } from '../core/write-queue.js'
import { backoffDelay } from '../core/retry.js'
import type { TradeRow } from '../core/transform.js'
import { FinnhubdError, isFinnhubdError } from '../errors.js'
import { classifyCassandraError } from './errors.js'
import type { Logger } from '../log.js'
import type { ProcessCounters } from '../metrics/process.js'

export interface WriterOptions {
  client: cassandra.Client
  cassandra: Config['cassandra']
  log: Logger
  counters: ProcessCounters
}

export interface RejectedRow { row: TradeRow, error: string }

export class CassandraExecutor {
  readonly #opts: WriterOptions
  #active = 0
  readonly #waiting: Array<() => void> = []
  #closed = false
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout, wake: () => void }>()

  constructor (opts: WriterOptions) {
    this.#opts = opts
  }

  get closed (): boolean { return this.#closed }

  /**
   * Runs `fn` under the concurrency bound, retrying with backoff until it succeeds or
   * close() is called. With `rejectInvalid`, a failure that retrying cannot cure (the
   * request itself is invalid, see ./errors.ts) rejects at once with
   * FINNHUBD_ERR_CASSANDRA_REJECTED instead, for the caller to isolate its rows.
   */
  async run<T> (what: string, fn: (client: cassandra.Client) => Promise<T>, options: { rejectInvalid?: boolean } = {}): Promise<T> {
    const c = this.#opts.counters
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE', `${what} abandoned: the writer is closing`)
      await this.#acquire()
      c.cassandraInFlight++
      let ok = false
      let result: T | undefined
      let error: unknown
      try {
        result = await fn(this.#opts.client)
        ok = true
      } catch (err) {
        error = err
      } finally {
        this.#release()
        c.cassandraInFlight--
      }
      if (ok) {
        c.cassandraUp = 1
        return result as T
      }
      c.cassandraErrors++
      const failure = classifyCassandraError(error)
      if (failure.kind === 'rejected') {
        if (options.rejectInvalid === true) throw new FinnhubdError('FINNHUBD_ERR_CASSANDRA_REJECTED', failure.message, { cause: error })
      } else {
        c.cassandraUp = 0
      }
      const delay = backoffDelay(attempt, this.#opts.cassandra.retryInitialDelayMs, this.#opts.cassandra.retryMaxDelayMs)
      this.#opts.log.limited('warn', `cassandra-${what}`,
        `Cassandra ${what} failed; retrying (nothing is committed until it is written): ${failure.kind === 'transient' ? failure.hint : failure.message}`,
        { err: error, attempt, retryInMs: delay })
      await this.#sleep(delay)
    }
  }

  /** Stops retrying; requests waiting for a retry reject. */
  close (): void {
    this.#closed = true
    for (const s of this.#sleeps) { clearTimeout(s.timer); s.wake() }
    for (const wake of this.#waiting.splice(0)) wake()
  }

  async #acquire (): Promise<void> {
    if (this.#active < this.#opts.cassandra.maxConcurrentWrites) {
      this.#active++
      return
    }
    await new Promise<void>(resolve => this.#waiting.push(resolve))
    this.#active++
  }

  #release (): void {
    this.#active--
    this.#waiting.shift()?.()
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const s = { timer: setTimeout(() => { this.#sleeps.delete(s); resolve() }, ms), wake: resolve }
      this.#sleeps.add(s)
    })
  }
}

/**
 * Writes trade rows as single-partition unlogged batches of prepared inserts, cut
 * from a per-partition queue when a request slot frees (core/write-queue.ts): at
 * most cassandra.maxConcurrentWrites trade requests in flight, and while all are
 * busy, the rows of later writes join the ones waiting for their partition, so
 * requests grow with the load instead of multiplying.
 */
export class TradeWriter {
  readonly #exec: CassandraExecutor
  readonly #insert: string
  readonly #counters: ProcessCounters
  readonly #queue: PartitionQueue<TradeRow>
  readonly #limit: number
  readonly #log: Logger
  /** Rows Cassandra refused, until the write() that holds them collects them. */
  readonly #rejected = new Map<TradeRow, string>()
  #active = 0

  constructor (exec: CassandraExecutor, opts: WriterOptions) {
    this.#exec = exec
    this.#counters = opts.counters
    this.#limit = opts.cassandra.maxConcurrentWrites
    this.#log = opts.log
    this.#queue = new PartitionQueue<TradeRow>(row => `${row.symbol}\u0000${row.day}`, estimateRowBytes, opts.cassandra.batchMaxBytes)
    const { keyspace, tradesTable } = opts.cassandra
    this.#insert = `INSERT INTO ${keyspace}.${tradesTable} (symbol, day, trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'
  }

  /**
   * Resolves once every row is acknowledged (retrying as long as needed) or refused
   * by Cassandra as invalid; rejects only when the writer is closed. Resolves to the
   * refused rows with why (usually none): the caller dead-letters them.
   */
  async write (rows: readonly TradeRow[]): Promise<RejectedRow[]> {
    await new Promise<void>((resolve, reject) => {
      this.#queue.push(rows, resolve, reject)
      this.#pump()
    })
    if (this.#rejected.size === 0) return []
    const out: RejectedRow[] = []
    for (const row of rows) {
      const error = this.#rejected.get(row)
      if (error === undefined) continue
      this.#rejected.delete(row)
      out.push({ row, error })
    }
    return out
  }

  #pump (): void {
    while (this.#active < this.#limit) {
      const request = this.#queue.take()
      if (request === null) return
      this.#active++
      this.#sendIsolating(request.rows).then(() => {
        this.#queue.complete(request)
      }, err => {
        // Only when the executor is closed: nothing more will be written.
        this.#queue.fail(request, err)
        this.#queue.failAll(err)
      }).finally(() => {
        this.#active--
        this.#pump()
      })
    }
  }

  /**
   * Writes the rows; when Cassandra refuses the request as invalid, halves it until
   * the refused rows stand alone (each row that cannot be written is set aside with
   * the error, the others are written), so one bad row never holds back the good ones
   * around it. (batch_size_fail_threshold does not apply here: Cassandra enforces it
   * only on batches that span partitions, CASSANDRA-10876, and ours never do.)
   */
  async #sendIsolating (batch: readonly TradeRow[]): Promise<void> {
    try {
      await this.#send(batch)
      this.#counters.cassandraBatches++
      this.#counters.rowsWritten += batch.length
    } catch (err) {
      if (!isFinnhubdError(err, 'FINNHUBD_ERR_CASSANDRA_REJECTED')) throw err
      if (batch.length === 1) {
        const row = batch[0] as TradeRow
        this.#counters.cassandraRejectedRows++
        this.#rejected.set(row, err.message)
        this.#log.limited('error', 'cassandra-rejected-row', 'Cassandra refused a trade row as invalid; its record goes to the dead-letter topic',
          { err: err.message, symbol: row.symbol.slice(0, 64), trade_ts: row.trade_ts, trade_id: row.trade_id })
        return
      }
      const half = Math.ceil(batch.length / 2)
      await this.#sendIsolating(batch.slice(0, half))
      await this.#sendIsolating(batch.slice(half))
    }
  }

  async #send (batch: readonly TradeRow[]): Promise<void> {
    await this.#exec.run('trade write', async client => {
      if (batch.length === 1) {
        await client.execute(this.#insert, params(batch[0] as TradeRow), { prepare: true, isIdempotent: true })
      } else {
        await client.batch(batch.map(row => ({ query: this.#insert, params: params(row) })), { prepare: true, logged: false, isIdempotent: true })
      }
    }, { rejectInvalid: true })
  }
}

// The driver parses a date string on every bind; trades come from a handful of days.
const localDates = new Map<string, cassandra.types.LocalDate>()

function localDate (day: string): cassandra.types.LocalDate {
  let d = localDates.get(day)
  if (d === undefined) {
    d = cassandraTypes.LocalDate.fromString(day)
    if (localDates.size > 1000) localDates.clear()
    localDates.set(day, d)
  }
  return d
}

function params (row: TradeRow): unknown[] {
  return [row.symbol, localDate(row.day), row.trade_ts, row.trade_id, row.price, row.volume, row.conditions, row.ingest_ts, row.process_ts]
}
