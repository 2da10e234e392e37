// One-minute OHLCV + VWAP candles, pure. The process role recomputes a minute's
// candle from that minute's stored `trades` rows (not by adding increments), so a
// candle equals its recomputation by construction, after replays, restarts and
// late trades alike. Open and close are the first and last trade by (trade_ts,
// trade_id): a total order, so ties in the same millisecond resolve the same way
// every time. v = 0 price updates count for price and trade count but add no volume;
// vwap is null while the minute has no volume.

export interface CandleInput { trade_ts: number, trade_id: string, price: number, volume: number }

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

const before = (a: CandleInput, b: CandleInput): boolean =>
  a.trade_ts < b.trade_ts || (a.trade_ts === b.trade_ts && a.trade_id < b.trade_id)

/** The candle of `rows`, all of one symbol and one minute; null for no rows. */
export function aggregateCandle (rows: readonly CandleInput[]): Candle | null {
  const first = rows[0]
  if (first === undefined) return null
  let open = first
  let close = first
  let high = first.price
  let low = first.price
  let volume = 0
  let notional = 0
  for (const row of rows) {
    if (before(row, open)) open = row
    if (before(close, row)) close = row
    if (row.price > high) high = row.price
    if (row.price < low) low = row.price
    volume += row.volume
    notional += row.price * row.volume
  }
  return {
    minute: minuteOf(first.trade_ts),
    open: open.price,
    high,
    low,
    close: close.price,
    volume,
    notional,
    vwap: volume > 0 ? notional / volume : null,
    trade_count: rows.length,
    open_ts: open.trade_ts,
    close_ts: close.trade_ts
  }
}
