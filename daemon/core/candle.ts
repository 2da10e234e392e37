// One-minute OHLCV + VWAP candles, pure: the fold of a minute's trades. Open and
// close are the first and last trade by (trade_ts, trade_id): a total order, so
// ties in one millisecond resolve the same way in any fold order, and folding a
// trade twice changes neither (only the sums need duplicate detection, which the
// candle book does with trade ids; see daemon/cassandra/candles.ts). v = 0 price
// updates count for price and trade count but add no volume; vwap is null while the
// minute has no volume. Sums are floating point: two folds of the same trades in
// different orders agree to about 1e-12 relative, not bit for bit.

export interface CandleInput { trade_ts: number, trade_id: string, price: number, volume: number }

/** A running fold; merge() of two folds of disjoint trade sets is the fold of their union. */
export interface CandleAcc {
  open: number
  open_ts: number
  open_id: string
  close: number
  close_ts: number
  close_id: string
  high: number
  low: number
  volume: number
  notional: number
  trade_count: number
}

export interface Candle {
  minute: number
  open: number
  high: number
  low: number
  close: number
  volume: number
  notional: number
  vwap: number | null
  trade_count: number
  open_ts: number
  close_ts: number
}

export const MINUTE_MS = 60_000

export function minuteOf (epochMs: number): number {
  return Math.floor(epochMs / MINUTE_MS) * MINUTE_MS
}

const before = (ts: number, id: string, otherTs: number, otherId: string): boolean =>
  ts < otherTs || (ts === otherTs && id < otherId)

/** The fold of one trade. */
export function accOf (row: CandleInput): CandleAcc {
  return {
    open: row.price,
    open_ts: row.trade_ts,
    open_id: row.trade_id,
    close: row.price,
    close_ts: row.trade_ts,
    close_id: row.trade_id,
    high: row.price,
    low: row.price,
    volume: row.volume,
    notional: row.price * row.volume,
    trade_count: 1
  }
}

/** Adds `b` into `a` (mutates and returns `a`). */
export function mergeAcc (a: CandleAcc, b: CandleAcc): CandleAcc {
  if (before(b.open_ts, b.open_id, a.open_ts, a.open_id)) {
    a.open = b.open
    a.open_ts = b.open_ts
    a.open_id = b.open_id
  }
  if (before(a.close_ts, a.close_id, b.close_ts, b.close_id)) {
    a.close = b.close
    a.close_ts = b.close_ts
    a.close_id = b.close_id
  }
  if (b.high > a.high) a.high = b.high
  if (b.low < a.low) a.low = b.low
  a.volume += b.volume
  a.notional += b.notional
  a.trade_count += b.trade_count
  return a
}

/** Adds one trade into `acc` (null starts a new fold). */
export function foldTrade (acc: CandleAcc | null, row: CandleInput): CandleAcc {
  return acc === null ? accOf(row) : mergeAcc(acc, accOf(row))
}

export function toCandle (minute: number, acc: CandleAcc): Candle {
  return {
    minute,
    open: acc.open,
    high: acc.high,
    low: acc.low,
    close: acc.close,
    volume: acc.volume,
    notional: acc.notional,
    vwap: acc.volume > 0 ? acc.notional / acc.volume : null,
    trade_count: acc.trade_count,
    open_ts: acc.open_ts,
    close_ts: acc.close_ts
  }
}

/** The candle of `rows`, all of one symbol and one minute; null for no rows. */
export function aggregateCandle (rows: readonly CandleInput[]): Candle | null {
  const first = rows[0]
  if (first === undefined) return null
  let acc: CandleAcc | null = null
  for (const row of rows) acc = foldTrade(acc, row)
  return toCandle(minuteOf(first.trade_ts), acc as CandleAcc)
}
