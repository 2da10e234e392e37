// The candle book's state machine, pure: no I/O, no timers, time comes in as a
// parameter. daemon/cassandra/candles.ts runs it against Cassandra (the rebuild
// reads, the batched snapshot writes, the flush tick) and explains the guarantees;
// this module holds what they rest on.
//
// Per (symbol, minute) held, a MinuteState: the fold of the minute's trades (acc),
// the set of their ids, a version (bumped by every change), the version known
// durable in candles_1m, the version of the snapshot in flight (one at most), and
// who waits for which version. Its life:
//
//   touch() ──new──▶ loading ──loaded(rows of `trades`)──▶ ready
//                      │                                   │ fold(): only trades whose id is
//                loadFailed(): forgotten                   │ not in the set; version++
//                                                          ▼
//   dirty (version > durable) ──due()──▶ in flight ──written()──▶ durable = that version
//          ▲                                 │                     (waiters at or below it released)
//          └──── refused(retryAt) / abandoned() ◀─┘
//
//   evict(): forgotten once idle for idleEvictMs and durable, not loading, not pinned
//   by an apply between its touch and its fold, nothing in flight, nobody waiting.
//
// due() takes every dirty minute not in flight (and not backing off after a refusal)
// at once, gives each snapshot a write timestamp strictly greater than any before it
// in this book, and cuts them into batches of at most batchMaxBytes (as Cassandra
// measures a batch, see estimateCandleBytes; 45 KiB at most when a batch spans
// partitions) and batchMaxPartitions partitions, ordered by group (the shell groups
// by replica), partition and minute.
//
// Longer periods (5 m, 15 m, 1 h, 1 d; `periods` in the options) are units of their
// own with the same versions, flights, waiters and eviction, but their content is not
// a fold of trades: it is the period's one-minute candles (`parts`, minute → fold),
// and their candle the merge of those. A period holds no trade ids and is never
// rebuilt from `trades` (a day of trades is far too many to read or to remember):
// it is loaded from candles_1m (loadedPeriod), and every change of one of its
// minutes in this book replaces that minute's part (the minute's state here is never
// older than its row in candles_1m, so an in-memory part always wins over a loaded
// row). Open and close need no tie-break across minutes (two minutes never share a
// millisecond), so the merge is the aggregate of the period's trades whenever each
// minute is, in any order. A waiter waits for the periods of its minutes too, at the
// versions its fold produced; a period that is still loading is not written.
// Each resolution is flushed at most once per its interval (flushIntervalMs).

import { foldTrade, mergeAcc, MINUTE_MS, toCandle, type Candle, type CandleAcc, type CandleInput } from './candle.js'
import { bucketOf, periodStart, RESOLUTIONS, type Resolution, type ResolutionName } from './candle-periods.js'
import { TradeIdSet, tradeIdString } from './id-set.js'
import { MULTI_PARTITION_MAX_BYTES } from './write-queue.js'
import { STORED_MARK, type RedundancyTally } from './redundancy.js'

/**
 * What the book reads of a worker's partial (core/process-batch.ts CandlePartial, which
 * has this shape): one (symbol, minute)'s fold and its distinct trades in parallel arrays.
 */
export interface CandleTrades {
  symbol: string
  /** YYYY-MM-DD, the partition key's second part. */
  day: string
  /** Epoch ms of the minute start. */
  minute: number
  /** The fold of exactly the trades below. */
  acc: CandleAcc
  /** 16-byte trade ids (the UUID's bytes), concatenated. */
  ids: Uint8Array
  /** Redundant ingest: the source slot (core/redundancy.ts SourceSlots) of each, when the book keeps a tally. */
  sources?: Uint8Array
  /** Trade time (ms), price, volume of each. */
  ts: Float64Array
  price: Float64Array
  volume: Float64Array
}

/** A unit of the book: a minute (1 m) or a longer period. */
export interface MinuteState {
  readonly key: string
  readonly res: Resolution
  readonly symbol: string
  /** YYYY-MM-DD of the unit's partition: the UTC day for 1 m, the month's or year's first day for the others. */
  readonly day: string
  /** The period's start (epoch ms): the minute for 1 m. */
  readonly minute: number
  /** The fold of the trades in `ids`; null while there are none. */
  readonly acc: CandleAcc | null
  readonly ids: TradeIdSet
  /** Until loaded() or loadFailed(): nothing folds into a minute before its rebuild. */
  readonly loading: boolean
  readonly version: number
  /** The newest version known written to candles_1m. */
  readonly durable: number
  /** The version of the snapshot in flight; 0 for none. */
  readonly writing: number
  readonly touchedAt: number
  /** Writes of this minute refused as invalid in a row, and when the next may start. */
  readonly refusals: number
  readonly retryAt: number
}

/** One candle upsert of a flush (into res.table). */
export interface CandleSnapshot {
  readonly state: MinuteState
  readonly res: Resolution
  readonly symbol: string
  readonly day: string
  readonly minute: number
  readonly candle: Candle
  readonly version: number
  /** USING TIMESTAMP, µs since the epoch: strictly greater than every earlier snapshot's of this book. */
  readonly writeTs: number
  /** updated_at, ms since the epoch. */
  readonly updatedAt: number
  readonly bytes: number
}

export interface CandleBookStateOptions {
  idleEvictMs: number
  /** Bytes a batch of snapshots may hold, by estimateCandleBytes (cassandra.batchMaxBytes). */
  batchMaxBytes: number
  /**
   * Partitions a batch may span: 10 by default, Cassandra's
   * unlogged_batch_across_partitions_warn_threshold (above it every such batch is a
   * warning in Cassandra's log).
   */
  batchMaxPartitions?: number
  /** Eviction scans run at most this often (ms); 1,000 by default. */
  evictEveryMs?: number
  /** The longer resolutions kept beside 1 m (none by default). */
  periods?: readonly Resolution[]
  /** Per resolution, the least time between two flushes of its units (ms); 0 when absent. */
  flushIntervalMs?: Partial<Record<ResolutionName, number>>
  /** Redundant ingest: counts each partial's trades (with `sources`) as first or duplicate per source, and single-source ones at eviction. */
  tally?: RedundancyTally
}

/**
 * A candle row's share of a batch, bytes, as Cassandra 5 measures a batch against
 * batch_size_warn_threshold (the sum of its mutations' data sizes: per row the
 * clustering, liveness and deletion info, per cell its timestamp, TTL and local
 * deletion time beside the value; the partition key does not count). Measured on the
 * stack: 20 rows in 20 partitions are 7,240 bytes, 40 rows in 20 partitions 13,900,
 * i.e. 333 bytes a row and 29 more for each partition (as core/cql-rows.ts sizes trade rows).
 */
export const CANDLE_ROW_BYTES = 333
export const CANDLE_PARTITION_BYTES = 29

/** The statement's size in a batch: a row, plus the partition's share when the batch has no row of it yet. */
export function estimateCandleBytes (newPartition: boolean): number {
  return CANDLE_ROW_BYTES + (newPartition ? CANDLE_PARTITION_BYTES : 0)
}

class Minute implements MinuteState {
  acc: CandleAcc | null = null
  readonly ids: TradeIdSet
  /** A period's one-minute folds, by minute start (null for a 1 m unit). */
  readonly parts: Map<number, CandleAcc> | null
  /** A period whose acc is older than its parts. */
  stale = false
  /** A minute's periods, as of its last touch (they stay pinned until its fold or release). */
  periods: Minute[] = []
  loading = true
  version = 0
  durable = 0
  writing = 0
  refusals = 0
  retryAt = 0
  /** Applies between their touch() and their fold(). */
  pins = 0
  /** In version order (a waiter registers the version current at its fold, and versions only grow). */
  readonly waiters: Array<{ version: number, waiter: unknown }> = []

  constructor (readonly key: string, readonly res: Resolution, readonly symbol: string, readonly day: string, readonly minute: number, public touchedAt: number) {
    const isMinute = res.name === '1m'
    this.ids = isMinute ? new TradeIdSet() : EMPTY_IDS
    this.parts = isMinute ? null : new Map()
  }

  /** The candle's fold now (a period's merged from its parts when they changed). */
  current (): CandleAcc | null {
    if (this.parts !== null && this.stale) {
      let acc: CandleAcc | null = null
      for (const part of this.parts.values()) acc = acc === null ? { ...part } : mergeAcc(acc, part)
      this.acc = acc
      this.stale = false
    }
    return this.acc
  }

  get writable (): boolean { return !this.loading && (this.parts === null ? this.acc !== null : this.parts.size > 0) }
}

/** The id set of every period unit: never written to. */
const EMPTY_IDS = new TradeIdSet()

export class CandleBookState<W> {
  readonly #opts: Required<Omit<CandleBookStateOptions, 'flushIntervalMs' | 'tally'>> & Pick<CandleBookStateOptions, 'tally'>
  readonly #interval: Record<ResolutionName, number>
  /** When each resolution was last flushed. */
  readonly #lastFlush: Record<ResolutionName, number>
  readonly #minutes = new Map<string, Minute>()
  /** Minutes with version > durable. */
  readonly #dirty = new Set<Minute>()
  /** Per waiter, how many of its minutes are not yet durable at the version it waits for. */
  readonly #remaining = new Map<W, number>()
  #lastTs = 0
  #lastEvict = -Infinity

  constructor (opts: CandleBookStateOptions) {
    const { flushIntervalMs, ...rest } = opts
    this.#opts = { evictEveryMs: 1000, batchMaxPartitions: 10, periods: [], ...rest }
    if (this.#opts.periods.some(r => r.name === '1m')) throw new TypeError('candle book: 1m is not a longer period')
    this.#interval = { '1m': 0, '5m': 0, '15m': 0, '1h': 0, '1d': 0, ...flushIntervalMs }
    this.#lastFlush = { '1m': -Infinity, '5m': -Infinity, '15m': -Infinity, '1h': -Infinity, '1d': -Infinity }
  }

  /** The longer resolutions kept. */
  get periods (): readonly Resolution[] { return this.#opts.periods }

  /** Minutes held. */
  get size (): number { return this.#minutes.size }
  /** Minutes with a change not yet durable. */
  get dirty (): number { return this.#dirty.size }
  /** Applies waiting for a write. */
  get waiting (): number { return this.#remaining.size }
  /** Bytes of the id sets held (the book's memory cost). */
  get idBytes (): number {
    let n = 0
    for (const m of this.#minutes.values()) n += m.ids.bytes
    return n
  }

  get (symbol: string, minute: number): MinuteState | undefined {
    return this.#minutes.get(keyOf(symbol, minute))
  }

  /** The unit of a longer period, by its start. */
  getPeriod (res: Resolution, symbol: string, start: number): MinuteState | undefined {
    return this.#minutes.get(periodKeyOf(res, symbol, start))
  }

  /**
   * An apply's first step: the state of each partial's minute (parallel to `partials`),
   * pinned against eviction until fold() or release(), and the minutes new to the book,
   * which the caller rebuilds from `trades` (then loaded() or loadFailed()). Minutes in
   * `minutes` still loading (new, or another apply's) must be waited for before fold().
   */
  touch (partials: readonly CandleTrades[], now: number): { minutes: MinuteState[], load: MinuteState[], loadPeriods: MinuteState[] } {
    const minutes: Minute[] = []
    const load: Minute[] = []
    const loadPeriods: Minute[] = []
    for (const p of partials) {
      const key = keyOf(p.symbol, p.minute)
      let m = this.#minutes.get(key)
      if (m === undefined) {
        m = new Minute(key, RESOLUTIONS['1m'], p.symbol, p.day, p.minute, now)
        this.#minutes.set(key, m)
        load.push(m)
      }
      m.touchedAt = now
      m.pins++
      m.periods = this.#opts.periods.map(res => {
        const start = periodStart(res, p.minute)
        const pk = periodKeyOf(res, p.symbol, start)
        let u = this.#minutes.get(pk)
        if (u === undefined) {
          u = new Minute(pk, res, p.symbol, bucketOf(res, start), start, now)
          this.#minutes.set(pk, u)
          loadPeriods.push(u)
        }
        u.touchedAt = now
        u.pins++
        return u
      })
      minutes.push(m)
    }
    return { minutes, load, loadPeriods }
  }

  /** A rebuild's rows (every trade of the minute in `trades`): folded, once each. Returns how many were new. */
  loaded (state: MinuteState, rows: Iterable<CandleInput>): number {
    const m = this.#own(state)
    if (m.parts !== null) throw new TypeError(`candle book: ${m.res.name} ${m.symbol} ${m.minute} is a period; loadedPeriod() loads it`)
    if (!m.loading) throw new Error(`candle book: ${m.symbol} ${m.minute} loaded twice`)
    let n = 0
    const mark = this.#opts.tally === undefined ? 0 : STORED_MARK
    for (const row of rows) {
      if (m.ids.add(row.trade_id, mark)) {
        m.acc = foldTrade(m.acc, row)
        n++
      }
    }
    m.loading = false
    // What was rebuilt may be newer than the stored candle (a crash between the trade
    // and the candle write): the first apply writes it.
    if (m.acc !== null) this.#bump(m)
    return n
  }

  /**
   * A period's load: its minutes' folds as candles_1m holds them (one-minute candle
   * rows carry no trade ids; none are needed across minutes). A minute this book
   * holds, or that changed while the load ran, keeps the book's fold. Returns how
   * many rows were taken.
   */
  loadedPeriod (state: MinuteState, rows: Iterable<{ minute: number, acc: CandleAcc }>): number {
    const p = this.#own(state)
    if (p.parts === null) throw new TypeError(`candle book: ${p.symbol} ${p.minute} is a minute; loaded() rebuilds it`)
    if (!p.loading) throw new Error(`candle book: ${p.res.name} ${p.symbol} ${p.minute} loaded twice`)
    let n = 0
    for (const row of rows) {
      if (row.minute < p.minute || row.minute >= p.minute + p.res.ms || p.parts.has(row.minute)) continue
      p.parts.set(row.minute, row.acc)
      n++
    }
    for (let t = p.minute; t < p.minute + p.res.ms; t += MINUTE_MS) {
      const u = this.#minutes.get(keyOf(p.symbol, t))
      if (u !== undefined && !u.loading && u.acc !== null) p.parts.set(t, u.acc)
    }
    p.loading = false
    if (p.parts.size > 0) this.#bump(p)
    return n
  }

  /** A rebuild that could not run (the executor closed): the minute is forgotten, the next touch rebuilds it. */
  loadFailed (state: MinuteState): void {
    const m = this.#own(state)
    if (this.#minutes.get(m.key) === m) this.#minutes.delete(m.key)
  }

  /**
   * An apply's second step, once none of `minutes` is loading: folds each partial into
   * its minute (only its trades not yet in the minute's id set), unpins the minutes,
   * and registers `waiter` for every minute not yet durable at its version now.
   * True when the waiter has to wait (for written()); false when all is durable already.
   */
  fold (minutes: readonly MinuteState[], partials: readonly CandleTrades[], waiter: W): boolean {
    const own = minutes.map(s => this.#own(s))
    try {
      own.forEach((m, i) => { this.#fold(m, partials[i] as CandleTrades) })
    } finally {
      for (const m of own) unpin(m)
    }
    let remaining = 0
    const units = new Set<Minute>()
    for (const m of own) {
      units.add(m)
      for (const p of m.periods) units.add(p)
    }
    for (const m of units) {
      if (m.durable >= m.version) continue
      m.waiters.push({ version: m.version, waiter })
      remaining++
    }
    if (remaining === 0) return false
    this.#remaining.set(waiter, remaining)
    return true
  }

  /** Unpins an apply's minutes without folding (its rebuild failed). */
  release (minutes: readonly MinuteState[]): void {
    for (const s of minutes) unpin(this.#own(s))
  }

  #fold (m: Minute, p: CandleTrades): void {
    if (m.loading) throw new Error(`candle book: fold into ${m.symbol} ${m.minute} before its rebuild`)
    const n = p.ts.length
    if (p.ids.length !== n * 16 || p.price.length !== n || p.volume.length !== n) {
      throw new TypeError(`candle partial ${p.symbol} ${p.minute}: ${p.ids.length} id bytes, ${n} times, ${p.price.length} prices, ${p.volume.length} volumes`)
    }
    if (n === 0) return
    const tally = this.#opts.tally
    if (tally !== undefined && p.sources !== undefined) {
      this.#foldCounted(m, p, tally, p.sources)
      return
    }
    let i = 0
    while (i < n && m.ids.addBytes(p.ids, i * 16)) i++
    if (i === n) {
      // The common case: nothing of this partial was in the minute yet, take the worker's fold whole.
      m.acc = m.acc === null ? { ...p.acc } : mergeAcc(m.acc, p.acc)
      this.#bump(m)
      return
    }
    // Some were (a replay, a re-send, a rebuild that saw them): fold the others one by one.
    let fresh = 0
    for (let k = 0; k < n; k++) {
      if (k === i) continue
      if (k > i && !m.ids.addBytes(p.ids, k * 16)) continue
      m.acc = foldTrade(m.acc, { trade_ts: p.ts[k] as number, trade_id: tradeIdString(p.ids, k * 16), price: p.price[k] as number, volume: p.volume[k] as number })
      fresh++
    }
    if (fresh > 0) this.#bump(m)
  }

  /** #fold with each trade counted for its source, first or duplicate, and marked with its member's bit. */
  #foldCounted (m: Minute, p: CandleTrades, tally: RedundancyTally, sources: Uint8Array): void {
    const n = p.ts.length
    if (sources.length !== n) throw new TypeError(`candle partial ${p.symbol} ${p.minute}: ${n} trades, ${sources.length} sources`)
    const fresh: number[] = []
    for (let k = 0; k < n; k++) {
      const slot = sources[k] as number
      if (m.ids.addBytes(p.ids, k * 16, tally.bit(slot))) {
        tally.first[slot] = (tally.first[slot] ?? 0) + 1
        fresh.push(k)
      } else {
        tally.duplicate[slot] = (tally.duplicate[slot] ?? 0) + 1
      }
    }
    if (fresh.length === 0) return
    if (fresh.length === n) {
      m.acc = m.acc === null ? { ...p.acc } : mergeAcc(m.acc, p.acc)
    } else {
      for (const k of fresh) m.acc = foldTrade(m.acc, { trade_ts: p.ts[k] as number, trade_id: tradeIdString(p.ids, k * 16), price: p.price[k] as number, volume: p.volume[k] as number })
    }
    this.#bump(m)
  }

  #bump (m: Minute): void {
    m.version++
    this.#dirty.add(m)
    if (m.parts !== null) {
      m.stale = true
      return
    }
    // A minute's change is its periods' change: its fold replaces its part in each.
    for (const p of m.periods) {
      (p.parts as Map<number, CandleAcc>).set(m.minute, m.acc as CandleAcc)
      this.#bump(p)
    }
  }

  /** When a unit may be written next, its resolution's interval and its backoff considered (a clock that stepped back counts from now). */
  #eligibleAt (m: Minute, now: number): number {
    return Math.max(m.retryAt, Math.min(this.#lastFlush[m.res.name], now) + this.#interval[m.res.name])
  }

  /**
   * When the next flush has something to write: `now` if a dirty minute is writable,
   * the earliest retryAt of those backing off after a refusal, null when nothing is
   * dirty outside a write in flight (the caller looks again when that write ends).
   */
  nextDue (now: number): number | null {
    let at: number | null = null
    for (const m of this.#dirty) {
      if (m.writing !== 0 || !m.writable) continue
      const eligible = this.#eligibleAt(m, now)
      if (eligible <= now) return now
      if (at === null || eligible < at) at = eligible
    }
    return at
  }

  /**
   * A flush: a snapshot of every dirty minute not in flight and not backing off, in
   * batches of at most batchMaxBytes that never span two groups (a minute alone over
   * the budget is a batch of one). The minutes are in flight until written(),
   * refused() or abandoned().
   */
  due (now: number, groupOf: (state: MinuteState) => string = () => ''): CandleSnapshot[][] {
    const picked: Array<{ m: Minute, group: string }> = []
    for (const m of this.#dirty) {
      if (m.writing !== 0 || !m.writable || this.#eligibleAt(m, now) > now) continue
      picked.push({ m, group: groupOf(m) })
    }
    if (picked.length === 0) return []
    for (const { m } of picked) this.#lastFlush[m.res.name] = now
    picked.sort((a, b) => compare(a.group, b.group) || a.m.res.ms - b.m.res.ms || compare(a.m.symbol, b.m.symbol) || compare(a.m.day, b.m.day) || a.m.minute - b.m.minute)
    const batches: CandleSnapshot[][] = []
    let batch: CandleSnapshot[] = []
    let bytes = 0
    let group = ''
    let partition = ''
    let partitions = 0
    for (const { m, group: g } of picked) {
      const p = `${m.res.name}\u0000${m.symbol}\u0000${m.day}`
      const newPartition = batch.length === 0 || p !== partition
      let size = estimateCandleBytes(newPartition)
      // One partition's batch may take the whole budget; one that spans partitions stays
      // under batch_size_fail_threshold too (core/write-queue.ts).
      const limit = partitions + (newPartition ? 1 : 0) > 1 ? Math.min(this.#opts.batchMaxBytes, MULTI_PARTITION_MAX_BYTES) : this.#opts.batchMaxBytes
      if (batch.length > 0 && (g !== group || bytes + size > limit || (newPartition && partitions >= this.#opts.batchMaxPartitions))) {
        batches.push(batch)
        batch = []
        bytes = 0
        partitions = 0
        size = estimateCandleBytes(true)
      }
      if (batch.length === 0 || p !== partition) partitions++
      group = g
      partition = p
      // Strictly increasing: the newest snapshot wins whatever order the writes land in.
      const writeTs = Math.max(Math.floor(now * 1000), this.#lastTs + 1)
      this.#lastTs = writeTs
      m.writing = m.version
      batch.push({ state: m, res: m.res, symbol: m.symbol, day: m.day, minute: m.minute, candle: toCandle(m.minute, m.current() as CandleAcc), version: m.version, writeTs, updatedAt: now, bytes: size })
      bytes += size
    }
    batches.push(batch)
    return batches
  }

  /** Snapshots acknowledged by Cassandra: their versions are durable. Returns the waiters now fully released. */
  written (snapshots: readonly CandleSnapshot[]): W[] {
    const released: W[] = []
    for (const s of snapshots) {
      const m = this.#own(s.state)
      if (m.writing === s.version) m.writing = 0
      m.refusals = 0
      m.retryAt = 0
      if (s.version <= m.durable) continue
      m.durable = s.version
      if (m.durable >= m.version) this.#dirty.delete(m)
      let k = 0
      while (k < m.waiters.length && (m.waiters[k] as { version: number }).version <= m.durable) k++
      for (const { waiter } of m.waiters.splice(0, k)) {
        const w = waiter as W
        const left = (this.#remaining.get(w) ?? 0) - 1
        if (left > 0) {
          this.#remaining.set(w, left)
        } else if (this.#remaining.delete(w)) {
          released.push(w)
        }
      }
    }
    return released
  }

  /** A snapshot Cassandra refused as invalid: not in flight any more, still dirty, not due again before `retryAt`. */
  refused (snapshot: CandleSnapshot, retryAt: number): void {
    const m = this.#own(snapshot.state)
    if (m.writing === snapshot.version) m.writing = 0
    m.refusals++
    m.retryAt = retryAt
  }

  /** Snapshots whose write was given up (the executor closed): not in flight any more, still dirty. */
  abandoned (snapshots: readonly CandleSnapshot[]): void {
    for (const s of snapshots) {
      const m = this.#own(s.state)
      if (m.writing === s.version) m.writing = 0
    }
  }

  /** Forgets the minutes idle for idleEvictMs and durable (a scan at most every evictEveryMs). Returns how many. */
  evict (now: number): number {
    if (now - this.#lastEvict < this.#opts.evictEveryMs) return 0
    this.#lastEvict = now
    let n = 0
    for (const [key, m] of this.#minutes) {
      if (now - m.touchedAt <= this.#opts.idleEvictMs) continue
      if (m.loading || m.pins > 0 || m.writing !== 0 || m.durable < m.version || m.waiters.length > 0) continue
      this.#minutes.delete(key)
      this.#opts.tally?.closeMarks(m.ids)
      n++
    }
    return n
  }

  /** Every waiter still waiting (for the caller to reject), forgotten here. */
  close (): W[] {
    const out = [...this.#remaining.keys()]
    this.#remaining.clear()
    for (const m of this.#minutes.values()) m.waiters.length = 0
    return out
  }

  #own (s: MinuteState): Minute {
    if (!(s instanceof Minute)) throw new TypeError('candle book: not a minute of this book')
    return s
  }
}

const keyOf = (symbol: string, minute: number): string => `${symbol}\u0000${minute}`
const periodKeyOf = (res: Resolution, symbol: string, start: number): string => `${res.name}\u0000${symbol}\u0000${start}`

/** An apply's pins on a minute and on the periods its touch gave it. */
function unpin (m: Minute): void {
  m.pins--
  for (const p of m.periods) p.pins--
}

const compare = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
