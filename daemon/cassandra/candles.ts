// The candle book: event-time one-minute candles in candles_1m that equal, at any
// quiet moment, the aggregate recomputed from that minute's rows in `trades`.
//
// Design: a candle is the fold of a *set* of trades, so the book keeps, for every
// (symbol, minute) it has touched recently, the fold and the set of trade ids in it
// (a compact id set). The first time a minute is touched (after start, after a
// rebalance, or after its state was evicted, e.g. for a late trade), its state is
// rebuilt from the `trades` rows of that minute. Batches are folded only after
// their trade rows are acknowledged, and a trade whose id is already in the set is
// skipped. Hence:
//  - replays (restart, crash, rebalance, an offset reset) skip trades already
//    folded or already in `trades` when the minute was rebuilt;
//  - a trade Finnhub re-sends in a later frame (same deterministic id) is folded
//    once, as `trades` stores it once;
//  - a late trade for an old minute rebuilds that minute from `trades`, where its
//    own row already is;
//  - a rebuild that races our own writes is harmless: a trade it saw is in the set,
//    one it missed is folded when its batch completes.
// Every change bumps the minute's version; a batch is done only when a snapshot
// at or past the version it produced is written (full-row upserts with strictly
// increasing write timestamps, so an older snapshot never overwrites a newer one,
// and concurrent batches share one write: a minute is written at most once per
// candles.flushIntervalMs). The consumer commits a batch's
// offsets only after that, so a crash never leaves a committed trade out of its
// candle. Minutes untouched for candles.idleEvictMs are forgotten (their id sets
// are the memory cost: 12–24 bytes per trade of the minutes held).

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { foldTrade, mergeAcc, MINUTE_MS, toCandle, type CandleAcc } from '../core/candle.js'
import { TradeIdSet } from '../core/id-set.js'
import type { CandlePartial } from '../core/process-batch.js'
import type { TradeRow } from '../core/transform.js'
import type { ProcessCounters } from '../metrics/process.js'
import type { CassandraExecutor } from './writer.js'

interface MinuteState {
  symbol: string
  day: string
  minute: number
  acc: CandleAcc | null
  ids: TradeIdSet
  ready: Promise<void>
  version: number
  durable: number
  writing: Promise<void> | null
  /** When the last write of this minute started (ms since epoch). */
  writtenAt: number
  touchedAt: number
}

export interface CandleBookOptions {
  exec: CassandraExecutor
  cassandra: Config['cassandra']
  candles: Config['candles']
  counters: ProcessCounters
  now?: () => number
}

export class CandleBook {
  readonly #opts: CandleBookOptions
  readonly #states = new Map<string, MinuteState>()
  readonly #insert: string
  readonly #select: string
  #lastWriteTs = 0
  #lastEvict = 0

  constructor (opts: CandleBookOptions) {
    this.#opts = opts
    const { keyspace, tradesTable } = opts.cassandra
    this.#insert = `INSERT INTO ${keyspace}.candles_1m (symbol, day, minute, open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts, updated_at) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
    this.#select = `SELECT trade_ts, trade_id, price, volume FROM ${keyspace}.${tradesTable} WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ?`
  }

  /** Minutes held in memory. */
  get size (): number { return this.#states.size }

  /**
   * Folds a batch whose rows are already written, then waits until candles_1m holds
   * every minute it touched at (or past) the state this batch produced.
   */
  async apply (partials: readonly CandlePartial[], rows: readonly TradeRow[]): Promise<void> {
    const now = (this.#opts.now ?? Date.now)()
    const touched = partials.map(p => this.#state(p, now))
    await Promise.all(touched.map(async s => await s.ready))
    partials.forEach((p, i) => { this.#fold(touched[i] as MinuteState, p, rows) })
    await Promise.all(touched.map(async s => { await this.#durable(s, s.version) }))
    this.#evict(now)
  }

  #state (p: CandlePartial, now: number): MinuteState {
    const key = `${p.symbol}\u0000${p.minute}`
    let state = this.#states.get(key)
    if (state === undefined) {
      const s: MinuteState = {
        symbol: p.symbol,
        day: p.day,
        minute: p.minute,
        acc: null,
        ids: new TradeIdSet(),
        ready: Promise.resolve(),
        version: 0,
        durable: 0,
        writing: null,
        writtenAt: 0,
        touchedAt: now
      }
      s.ready = this.#rebuild(s)
      this.#states.set(key, s)
      state = s
    }
    state.touchedAt = now
    return state
  }

  async #rebuild (s: MinuteState): Promise<void> {
    const rows = await this.#opts.exec.run('candle rebuild', async client => await readMinute(client, this.#select, s, this.#opts.candles.rebuildFetchSize))
    this.#opts.counters.candleLoads++
    for (const row of rows) {
      if (s.ids.add(row.trade_id)) s.acc = foldTrade(s.acc, row)
    }
    // What was rebuilt may be newer than the stored candle (a crash between the trade
    // and the candle write): the first apply writes it.
    if (s.acc !== null) s.version++
  }

  #fold (s: MinuteState, p: CandlePartial, rows: readonly TradeRow[]): void {
    const fresh: number[] = []
    for (const r of p.rows) if (s.ids.add((rows[r] as TradeRow).trade_id)) fresh.push(r)
    if (fresh.length === 0) return
    if (fresh.length === p.rows.length) {
      // The common case: nothing of this batch was in the minute yet, take the worker's fold whole.
      s.acc = s.acc === null ? { ...p.acc } : mergeAcc(s.acc, p.acc)
    } else {
      for (const r of fresh) s.acc = foldTrade(s.acc, rows[r] as TradeRow)
    }
    s.version++
  }

  async #durable (s: MinuteState, version: number): Promise<void> {
    while (s.durable < version) {
      if (s.writing === null) {
        // At most one write per minute per candles.flushIntervalMs: batches arriving
        // meanwhile share the next one (their commit waits for it, their trade rows do not).
        const w = this.#writeWhenDue(s).finally(() => { s.writing = null })
        s.writing = w
      }
      await s.writing
    }
  }

  async #writeWhenDue (s: MinuteState): Promise<void> {
    const wait = s.writtenAt + this.#opts.candles.flushIntervalMs - Date.now()
    if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    await this.#write(s)
  }

  async #write (s: MinuteState): Promise<void> {
    s.writtenAt = Date.now()
    const version = s.version
    const acc = s.acc as CandleAcc
    const c = toCandle(s.minute, acc)
    // Strictly increasing write timestamps (µs): the newest snapshot wins whatever order the writes land in.
    const ts = Math.max(Date.now() * 1000, this.#lastWriteTs + 1)
    this.#lastWriteTs = ts
    const params = [s.symbol, s.day, s.minute, c.open, c.high, c.low, c.close, c.volume, c.notional, c.vwap, c.trade_count, c.open_ts, c.close_ts, Date.now()]
    await this.#opts.exec.run('candle write', async client => {
      await client.execute(this.#insert, params, { prepare: true, isIdempotent: true, timestamp: ts })
    })
    this.#opts.counters.candlesWritten++
    if (version > s.durable) s.durable = version
  }

  #evict (now: number): void {
    if (now - this.#lastEvict < 1000) return
    this.#lastEvict = now
    for (const [key, s] of this.#states) {
      if (now - s.touchedAt > this.#opts.candles.idleEvictMs && s.writing === null && s.durable >= s.version) this.#states.delete(key)
    }
  }
}

/** Every trade of one symbol-minute, paged. */
async function readMinute (client: cassandra.Client, query: string, s: Pick<MinuteState, 'symbol' | 'day' | 'minute'>, fetchSize: number): Promise<Array<{ trade_ts: number, trade_id: string, price: number, volume: number }>> {
  const out: Array<{ trade_ts: number, trade_id: string, price: number, volume: number }> = []
  let pageState: string | undefined
  do {
    const rs = await client.execute(query, [s.symbol, s.day, s.minute, s.minute + MINUTE_MS], { prepare: true, fetchSize, ...(pageState !== undefined ? { pageState } : {}) })
    for (const row of rs.rows) {
      out.push({ trade_ts: (row['trade_ts'] as Date).getTime(), trade_id: String(row['trade_id']), price: row['price'] as number, volume: row['volume'] as number })
    }
    pageState = rs.pageState ?? undefined
  } while (pageState !== undefined)
  return out
}
