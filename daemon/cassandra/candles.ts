// The candle book: event-time candles at 1 m (candles_1m) and, by the config's
// candles.resolutions, 5 m, 15 m, 1 h and 1 d (candles_5m … candles_1d), each equal,
// at any quiet moment, to the aggregate recomputed from its period's rows in `trades`.
// The longer periods are merged from the one-minute folds (core/candle-book.ts says
// how and why that is exact); a period new to the book is loaded from candles_1m
// (one partition range: a period never spans two UTC days).
//
// Design: a candle is the fold of a *set* of trades, so the book keeps, for every
// (symbol, minute) it has touched recently, the fold and the set of trade ids in it
// (a compact id set; the state machine is core/candle-book.ts, this file its CQL).
// The first time a minute is touched (after start, after a rebalance, or after its
// state was evicted, e.g. for a late trade), its state is rebuilt from the `trades`
// rows of that minute. Batches are folded only after their trade rows are
// acknowledged, and a trade whose id is already in the set is skipped. Hence:
//  - replays (restart, crash, rebalance, an offset reset) skip trades already
//    folded or already in `trades` when the minute was rebuilt;
//  - a trade Finnhub re-sends in a later frame (same deterministic id) is folded
//    once, as `trades` stores it once;
//  - a late trade for an old minute rebuilds that minute from `trades`, where its
//    own row already is;
//  - a rebuild that races our own writes is harmless: a trade it saw is in the set,
//    one it missed is folded when its batch completes.
// Every change bumps the minute's version; a batch is done only when a snapshot at
// or past the version it produced is written. Snapshots are full-row upserts with
// strictly increasing write timestamps (`USING TIMESTAMP ?`, one per statement), so
// an older snapshot never overwrites a newer one whatever order the writes land in.
// The consumer commits a batch's offsets only after that, so a crash never leaves a
// committed trade out of its candle. Minutes untouched for candles.idleEvictMs, and
// durable, are forgotten (their id sets are the memory cost: 12–24 bytes per trade
// of the minutes held).
//
// Writes: one flush tick writes every dirty minute at once, as unlogged batches that
// span partitions but not replicas (each batch is routed to the first replica of its
// partitions, as the trade writer does) and stay within cassandra.batchMaxBytes as
// Cassandra measures a batch (core/candle-book.ts estimateCandleBytes: 362 bytes for
// a minute alone in its partition, 333 for each further minute of it), within 45 KiB
// when they span partitions (batch_size_fail_threshold) and within 10 partitions
// (unlogged_batch_across_partitions_warn_threshold). At the defaults (4,096 bytes) a
// batch holds 11 minutes, so 40 symbols' current minutes are 4 requests a flush, 8 at
// a minute's turn when the previous minute is still being written to. Ticks are at
// least candles.flushIntervalMs apart: a minute is written at most once per
// interval, and batches applied meanwhile share the next tick (their commit waits
// for it, their trade rows do not). No tick is scheduled while nothing is dirty; the
// timer never keeps the process alive. One flush at a time: while one is retrying
// (Cassandra away), changes pile up in the minutes and go out together after it.
//
// Failures. A transient failure is retried by the executor until written (or it is
// closed). A statement refused as invalid (classifyCassandraError 'rejected': our
// own values, so a bug, or a batch over batch_size_fail_threshold) is isolated by
// halving the batch, so the minutes around it are written; the minute refused alone
// stays dirty and is retried at later ticks with a backoff up to
// cassandra.retryMaxDelayMs, with an error line (rate-limited) each time and the
// book's `refused` count: its batches' offsets are not committed meanwhile, which
// is what keeps the guarantee (a candle short of trades that are committed would be
// wrong forever). When the executor closes (stop), the flush gives up and every
// waiting apply rejects with FINNHUBD_ERR_CASSANDRA_UNREACHABLE, as do later ones.

import type { RedundancyTally } from '../core/redundancy.js'
import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { MINUTE_MS, type CandleAcc, type CandleInput } from '../core/candle.js'
import { CandleBookState, type CandleSnapshot, type CandleTrades, type MinuteState } from '../core/candle-book.js'
import { RESOLUTION_NAMES, RESOLUTIONS, type ResolutionName } from '../core/candle-periods.js'
import { FinnhubdError, isFinnhubdError } from '../core/errors.js'
import type { Logger } from '../log.js'
import { zeros } from '../metrics/collectors.js'
import type { ProcessCounters } from '../metrics/process.js'
import { readConsistency } from './client.js'
import { ReplicaGroups, type ReplicaGroup } from './replicas.js'
import type { CassandraExecutor } from './writer.js'

export interface CandleBookOptions {
  exec: CassandraExecutor
  /** Redundant ingest: the per-source counts (core/redundancy.ts); partials then carry their sources. */
  tally?: RedundancyTally
  cassandra: Config['cassandra']
  candles: Config['candles']
  counters: ProcessCounters
  log: Logger
  /**
   * The executor's client, for its token map only: statements are batched per replica
   * (the first of their partition's) and routed to it. Without it, one group, routed
   * as the driver likes.
   */
  client?: cassandra.Client
  /** The clock of the book's state (touch, eviction, updated_at, write timestamps); Date.now by default. */
  now?: () => number
}

/** What the book has done since it started. */
export interface CandleBookStats {
  /** Flush ticks that wrote something. */
  flushes: number
  /** Write requests acknowledged (batches and single statements). */
  requests: number
  /** Statements acknowledged (= counters.candlesWritten's share of this book). */
  statements: number
  /** The same, by resolution. */
  byResolution: Record<ResolutionName, number>
  /** Periods loaded from candles_1m. */
  periodLoads: number
  /** Statements Cassandra refused as invalid, alone (each retried later). */
  refused: number
  /** Minutes evicted. */
  evicted: number
}

interface Waiter { resolve: () => void, reject: (err: Error) => void }

const DAY_MS = 86_400_000

export class CandleBook {
  readonly #opts: CandleBookOptions
  readonly #now: () => number
  readonly #state: CandleBookState<Waiter>
  readonly #loads = new Map<MinuteState, Promise<void>>()
  readonly #insert: Record<ResolutionName, string>
  readonly #select: string
  readonly #selectMinutes: string
  readonly #stats: CandleBookStats = { flushes: 0, requests: 0, statements: 0, byResolution: zeros(RESOLUTION_NAMES), periodLoads: 0, refused: 0, evicted: 0 }
  /** Partition → the replica group its statements are batched in (cleared when the ring changes). */
  readonly #groups: ReplicaGroups
  #timer: NodeJS.Timeout | null = null
  /** When #timer fires. */
  #timerAt = 0
  #flushing = false
  #closed: Error | null = null

  constructor (opts: CandleBookOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    const c = opts.candles
    const periods = RESOLUTION_NAMES.filter(n => n !== '1m' && c.resolutions.includes(n)).map(n => RESOLUTIONS[n])
    this.#state = new CandleBookState<Waiter>({
      idleEvictMs: c.idleEvictMs,
      batchMaxBytes: opts.cassandra.batchMaxBytes,
      periods,
      ...(opts.tally !== undefined ? { tally: opts.tally } : {}),
      flushIntervalMs: Object.fromEntries(RESOLUTION_NAMES.map(n => [n, n === '1m' ? c.flushIntervalMs : c.periodFlushIntervalMs]))
    })
    const { keyspace, tradesTable } = opts.cassandra
    const insert = (n: ResolutionName): string => {
      const r = RESOLUTIONS[n]
      return `INSERT INTO ${keyspace}.${r.table} (symbol, ${r.bucketColumn}, ${r.startColumn}, open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts, updated_at) ` +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?'
    }
    this.#insert = { '1m': insert('1m'), '5m': insert('5m'), '15m': insert('15m'), '1h': insert('1h'), '1d': insert('1d') }
    this.#selectMinutes = `SELECT minute, open, high, low, close, volume, notional, trade_count, open_ts, close_ts FROM ${keyspace}.candles_1m WHERE symbol = ? AND day = ? AND minute >= ? AND minute < ?`
    this.#select = `SELECT trade_ts, trade_id, price, volume FROM ${keyspace}.${tradesTable} WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ?`
    this.#groups = new ReplicaGroups(opts.client, keyspace)
  }

  /** Minutes held in memory. */
  get size (): number { return this.#state.size }

  get stats (): Readonly<CandleBookStats> { return { ...this.#stats, byResolution: { ...this.#stats.byResolution } } }

  /** The state machine, read-only use (tests, status). */
  get state (): Pick<CandleBookState<Waiter>, 'size' | 'dirty' | 'waiting' | 'idBytes' | 'get'> { return this.#state }

  /**
   * Folds a batch whose trade rows are already written, then waits until candles_1m
   * holds every minute it touched at (or past) the state this batch produced. Rejects
   * (FINNHUBD_ERR_CASSANDRA_UNREACHABLE) only once the book or its executor is closed.
   */
  async apply (partials: readonly CandleTrades[]): Promise<void> {
    this.#checkOpen()
    if (partials.length === 0) return
    const { minutes, load, loadPeriods } = this.#state.touch(partials, this.#now())
    for (const m of load) this.#loads.set(m, this.#rebuild(m))
    // Not waited for here: the fold needs its minutes only; the periods are written,
    // and this apply released, once they are loaded.
    for (const p of loadPeriods) this.#loadPeriod(p).catch(() => {}) // #loadPeriod handles its own failure
    try {
      const loading = new Set<Promise<void>>()
      for (const m of minutes) {
        const l = this.#loads.get(m)
        if (l !== undefined) loading.add(l)
      }
      if (loading.size > 0) await Promise.all(loading)
      this.#checkOpen()
    } catch (err) {
      this.#state.release(minutes)
      throw err
    }
    let waiter: Waiter | undefined
    const durable = new Promise<void>((resolve, reject) => { waiter = { resolve, reject } })
    if (this.#state.fold(minutes, partials, waiter as Waiter)) {
      this.#schedule()
      await durable
    }
    this.#stats.evicted += this.#state.evict(this.#now())
  }

  /**
   * Stops the book: no more ticks, every apply waiting for a write rejects with
   * FINNHUBD_ERR_CASSANDRA_UNREACHABLE (their batches stay uncommitted), and so do
   * later ones. A write in flight may still land. Called by stop after the
   * executor's close(); the book also closes itself when a flush finds the executor closed.
   */
  close (): void {
    this.#close(new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE', 'candle write abandoned: the writer is closing'))
  }

  #close (err: Error): void {
    if (this.#closed !== null) return
    this.#closed = err
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    for (const w of this.#state.close()) w.reject(err)
  }

  #checkOpen (): void {
    if (this.#closed === null && this.#opts.exec.closed) this.close()
    if (this.#closed !== null) throw this.#closed
  }

  async #rebuild (m: MinuteState): Promise<void> {
    try {
      const rows = await this.#opts.exec.run('candle rebuild', async client => await readMinute(client, this.#select, m, this.#opts.candles.rebuildFetchSize, readConsistency(this.#opts.cassandra)), { lane: 'candles' })
      this.#opts.counters.candleLoads++
      this.#state.loaded(m, rows)
    } catch (err) {
      this.#state.loadFailed(m)
      throw err
    } finally {
      this.#loads.delete(m)
    }
  }

  /**
   * A period new to the book, from its minutes in candles_1m. Retried by the executor
   * until it reads; given up only when the executor closes, which closes the book
   * (the applies waiting for the period reject, as every other waiting apply does).
   */
  async #loadPeriod (p: MinuteState): Promise<void> {
    try {
      const rows = await this.#opts.exec.run('candle period load', async client => await readMinuteCandles(client, this.#selectMinutes, p, this.#opts.candles.rebuildFetchSize, readConsistency(this.#opts.cassandra)), { lane: 'candles' })
      if (this.#closed !== null) return
      this.#stats.periodLoads++
      this.#state.loadedPeriod(p, rows)
      this.#schedule()
    } catch (err) {
      this.#state.loadFailed(p)
      this.#close(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /**
   * A tick when something is due (the state knows each resolution's interval); sooner
   * than the one set, if any (a minute backing off after a refusal must not hold back
   * the others).
   */
  #schedule (): void {
    if (this.#closed !== null || this.#flushing) return
    const now = this.#now()
    const at = this.#state.nextDue(now)
    if (at === null) return
    if (this.#timer !== null) {
      if (this.#timerAt <= at) return
      clearTimeout(this.#timer)
    }
    this.#timerAt = at
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#flush().catch(() => {}) // #flush handles its own failures
    }, Math.max(0, at - now))
    this.#timer.unref()
  }

  async #flush (): Promise<void> {
    if (this.#closed !== null) return
    if (this.#opts.exec.closed) {
      this.close()
      return
    }
    this.#flushing = true
    try {
      const now = this.#now()
      const batches = this.#state.due(now, m => this.#groupOf(m).group)
      if (batches.length > 0) this.#stats.flushes++
      await Promise.all(batches.map(async b => { await this.#sendIsolating(b) }))
    } catch (err) {
      // Not a Cassandra failure (those are handled per batch): a bug of ours. Say so, then stop.
      this.#opts.log.error('candle flush failed; candle writes stop and no batch commits until restart', { err })
      this.#close(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.#flushing = false
      this.#schedule()
    }
  }

  /**
   * Writes the batch; a refused one is halved until the refused statement stands
   * alone, which is parked (see the header). Never throws: a write given up because
   * the executor closed closes the book.
   */
  async #sendIsolating (batch: readonly CandleSnapshot[]): Promise<void> {
    try {
      await this.#send(batch)
    } catch (err) {
      if (!isFinnhubdError(err, 'FINNHUBD_ERR_CASSANDRA_REJECTED')) {
        this.#state.abandoned(batch)
        this.#close(err instanceof Error ? err : new Error(String(err)))
        return
      }
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2)
        await this.#sendIsolating(batch.slice(0, half))
        await this.#sendIsolating(batch.slice(half))
        return
      }
      const s = batch[0] as CandleSnapshot
      const { retryInitialDelayMs, retryMaxDelayMs } = this.#opts.cassandra
      const retryInMs = Math.min(retryMaxDelayMs, retryInitialDelayMs * 2 ** Math.min(s.state.refusals, 20))
      this.#state.refused(s, this.#now() + retryInMs)
      this.#stats.refused++
      this.#opts.log.limited('error', 'candle-write-refused',
        'Cassandra refused a candle write as invalid; retrying it, and the batches of this minute stay uncommitted until it is written',
        { err: err.message, symbol: s.symbol.slice(0, 64), minute: new Date(s.minute).toISOString(), version: s.version, refusals: s.state.refusals, retryInMs })
      return
    }
    this.#stats.requests++
    this.#stats.statements += batch.length
    for (const s of batch) this.#stats.byResolution[s.res.name]++
    this.#opts.counters.candlesWritten += batch.length
    for (const w of this.#state.written(batch)) w.resolve()
  }

  async #send (batch: readonly CandleSnapshot[]): Promise<void> {
    const first = batch[0] as CandleSnapshot
    const { routingKey } = this.#groupOf(first.state)
    await this.#opts.exec.run('candle write', async client => {
      if (batch.length === 1) {
        await client.execute(this.#insert[first.res.name], params(first), { prepare: true, isIdempotent: true })
      } else {
        // No batch-level timestamp: each statement carries its own (USING TIMESTAMP ?).
        const queries = batch.map(s => ({ query: this.#insert[s.res.name], params: params(s) }))
        await client.batch(queries, { prepare: true, logged: false, isIdempotent: true, ...(routingKey !== undefined ? { routingKey } : {}) })
      }
    }, { rejectInvalid: true, lane: 'candles' })
  }

  /** The replica group of a minute's partition. */
  #groupOf (m: MinuteState): ReplicaGroup {
    return this.#groups.of(`${m.symbol}\u0000${m.day}`, () => partitionKey(m.symbol, m.day))
  }
}

/** The bind values of a snapshot's insert, the write timestamp last. */
function params (s: CandleSnapshot): unknown[] {
  const c = s.candle
  return [s.symbol, dateValue(s.day), s.minute, c.open, c.high, c.low, c.close, c.volume, c.notional, c.vwap, c.trade_count, c.open_ts, c.close_ts, s.updatedAt, s.writeTs]
}

/** A `date` as the protocol carries it (uint32: days since the epoch + 2^31); the driver sends a Buffer parameter as is. */
function dateValue (day: string): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(daysOf(day) + 2 ** 31, 0)
  return b
}

function daysOf (day: string): number {
  const ms = Date.parse(`${day}T00:00:00Z`)
  if (!Number.isFinite(ms)) throw new TypeError(`not a day: ${day.slice(0, 40)}`)
  return Math.floor(ms / DAY_MS)
}

/** The routing key of a (symbol, day) partition: each component as [uint16 length][bytes][0]. */
function partitionKey (symbol: string, day: string): Buffer {
  const s = Buffer.from(symbol, 'utf8')
  const out = Buffer.allocUnsafe(s.length + 4 + 6)
  let at = out.writeUInt16BE(s.length, 0)
  at += s.copy(out, at)
  at = out.writeUInt8(0, at)
  at = out.writeUInt16BE(4, at)
  at = out.writeUInt32BE(daysOf(day) + 2 ** 31, at)
  out.writeUInt8(0, at)
  return out
}

/** The one-minute folds of a period (one candles_1m partition range), paged. */
async function readMinuteCandles (client: cassandra.Client, query: string, p: Pick<MinuteState, 'symbol' | 'minute' | 'res'>, fetchSize: number, consistency: number): Promise<Array<{ minute: number, acc: CandleAcc }>> {
  const out: Array<{ minute: number, acc: CandleAcc }> = []
  const day = new Date(p.minute).toISOString().slice(0, 10)
  let pageState: string | undefined
  do {
    const rs = await client.execute(query, [p.symbol, dateValue(day), p.minute, p.minute + p.res.ms], { prepare: true, fetchSize, consistency, ...(pageState !== undefined ? { pageState } : {}) })
    for (const row of rs.rows) out.push({ minute: (row['minute'] as Date).getTime(), acc: accOfRow(row) })
    pageState = rs.pageState ?? undefined
  } while (pageState !== undefined)
  return out
}

/** A candles_1m row as a fold. No trade ids: open and close never tie across minutes. */
function accOfRow (row: cassandra.types.Row): CandleAcc {
  return {
    open: row['open'] as number,
    open_ts: (row['open_ts'] as Date).getTime(),
    open_id: '',
    close: row['close'] as number,
    close_ts: (row['close_ts'] as Date).getTime(),
    close_id: '',
    high: row['high'] as number,
    low: row['low'] as number,
    volume: row['volume'] as number,
    notional: row['notional'] as number,
    trade_count: row['trade_count'] as number
  }
}

/** Every trade of one symbol-minute, paged. */
async function readMinute (client: cassandra.Client, query: string, s: Pick<MinuteState, 'symbol' | 'day' | 'minute'>, fetchSize: number, consistency: number): Promise<CandleInput[]> {
  const out: CandleInput[] = []
  let pageState: string | undefined
  do {
    const rs = await client.execute(query, [s.symbol, dateValue(s.day), s.minute, s.minute + MINUTE_MS], { prepare: true, fetchSize, consistency, ...(pageState !== undefined ? { pageState } : {}) })
    for (const row of rs.rows) {
      out.push({ trade_ts: (row['trade_ts'] as Date).getTime(), trade_id: String(row['trade_id']), price: row['price'] as number, volume: row['volume'] as number })
    }
    pageState = rs.pageState ?? undefined
  } while (pageState !== undefined)
  return out
}
