// `finnhubd query SYMBOL [--candles] [--since T] [--limit N]`: the stored trades or
// candles of one symbol, newest first, without cqlsh. Reads one (symbol, day)
// partition at a time from today back to the day of --since.

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { SYMBOL_PATTERN } from '../config/schema.js'
import type { Candle } from '../core/candle.js'
import { utcDay } from '../core/transform.js'
import { FinnhubdError } from '../core/errors.js'

export interface QueryOptions {
  symbol: string
  candles: boolean
  sinceMs: number
  limit: number
}

const DAY_MS = 86_400_000
const MAX_DAYS = 31

/** --since: an ISO time, or a span back from now such as 15m, 2h, 3d. */
export function parseSince (raw: string | undefined, now: number): number {
  if (raw === undefined) return now - 3_600_000
  const span = /^(\d+)(s|m|h|d)$/.exec(raw)
  if (span !== null) return now - Number(span[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS }[span[2] as 's' | 'm' | 'h' | 'd']
  const t = Date.parse(raw)
  if (Number.isNaN(t)) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--since ${raw} is neither an ISO time (2024-05-01T12:00Z) nor a span back from now (15m, 2h, 3d)`)
  return t
}

export function validateQuery (symbol: string | undefined, limit: string | undefined): { symbol: string, limit: number } {
  if (symbol === undefined || !SYMBOL_PATTERN.test(symbol)) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', `query needs a symbol such as AAPL or BINANCE:BTCUSDT${symbol !== undefined ? ` (got "${symbol}")` : ''}`)
  }
  const n = limit === undefined ? 20 : Number(limit)
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--limit ${String(limit)} must be a whole number from 1 to 10000`)
  return { symbol, limit: n }
}

/** A row of the trades table, as the query command, the console and the checks read it. */
export interface StoredTrade { symbol: string, day: string, trade_ts: number, trade_id: string, price: number, volume: number, conditions: string[] | null, ingest_ts: number, process_ts: number }

/** A row of candles_1m. */
export type StoredCandle = Candle & { symbol: string }

export function tradeOfRow (r: cassandra.types.Row): StoredTrade {
  return {
    symbol: r['symbol'] as string,
    day: String(r['day']),
    trade_ts: (r['trade_ts'] as Date).getTime(),
    trade_id: String(r['trade_id']),
    price: r['price'] as number,
    volume: r['volume'] as number,
    conditions: (r['conditions'] as string[] | null) ?? null,
    ingest_ts: (r['ingest_ts'] as Date).getTime(),
    process_ts: (r['process_ts'] as Date).getTime()
  }
}

export function candleOfRow (r: cassandra.types.Row): StoredCandle {
  return {
    symbol: r['symbol'] as string,
    minute: (r['minute'] as Date).getTime(),
    open: r['open'] as number,
    high: r['high'] as number,
    low: r['low'] as number,
    close: r['close'] as number,
    volume: r['volume'] as number,
    notional: r['notional'] as number,
    vwap: (r['vwap'] as number | null) ?? null,
    trade_count: r['trade_count'] as number,
    open_ts: (r['open_ts'] as Date).getTime(),
    close_ts: (r['close_ts'] as Date).getTime()
  }
}

const TRADE_COLUMNS = 'symbol, day, trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts'
const CANDLE_COLUMNS = 'symbol, minute, open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts'

/**
 * A symbol's trades from `sinceMs` (and before `untilMs`) on, newest first, at most
 * `limit`: one (symbol, day) partition at a time, from the newest day back.
 */
export async function storedTrades (client: cassandra.Client, config: Config['cassandra'], symbol: string, sinceMs: number, limit: number, untilMs: number): Promise<StoredTrade[]> {
  const cql = `SELECT ${TRADE_COLUMNS} FROM ${config.keyspace}.${config.tradesTable} WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ? LIMIT ?`
  return await byDay(sinceMs, untilMs, limit, async (day, left) =>
    (await client.execute(cql, [symbol, day, sinceMs, untilMs, left], { prepare: true })).rows.map(tradeOfRow))
}

/** A symbol's one-minute candles with minutes in [sinceMs, untilMs), newest first, at most `limit`. */
export async function storedCandles (client: cassandra.Client, config: Config['cassandra'], symbol: string, sinceMs: number, limit: number, untilMs: number): Promise<StoredCandle[]> {
  const cql = `SELECT ${CANDLE_COLUMNS} FROM ${config.keyspace}.candles_1m WHERE symbol = ? AND day = ? AND minute >= ? AND minute < ? LIMIT ?`
  const rows = await byDay(sinceMs, untilMs, limit, async (day, left) =>
    (await client.execute(cql, [symbol, day, sinceMs, untilMs, left], { prepare: true })).rows.map(candleOfRow))
  return rows.sort((a, b) => b.minute - a.minute)
}

/** Reads day partitions from the one holding untilMs back to the one holding sinceMs (31 at most). */
async function byDay<T> (sinceMs: number, untilMs: number, limit: number, read: (day: string, left: number) => Promise<T[]>): Promise<T[]> {
  const out: T[] = []
  const first = utcDay(Math.max(sinceMs, untilMs - MAX_DAYS * DAY_MS))
  for (let at = untilMs - 1; out.length < limit; at -= DAY_MS) {
    const day = utcDay(at)
    if (day < first) break
    out.push(...await read(day, limit - out.length))
  }
  return out
}

export async function queryRows (client: cassandra.Client, config: Config['cassandra'], q: QueryOptions, now: number): Promise<string[]> {
  const until = now + DAY_MS
  if (q.candles) {
    return (await storedCandles(client, config, q.symbol, q.sinceMs, q.limit, until)).map(c =>
      `${new Date(c.minute).toISOString()}  O ${c.open} H ${c.high} L ${c.low} C ${c.close}  vol ${c.volume}  vwap ${c.vwap ?? '-'}  trades ${c.trade_count}`)
  }
  return (await storedTrades(client, config, q.symbol, q.sinceMs, q.limit, until)).map(r =>
    `${new Date(r.trade_ts).toISOString()}  ${r.price} × ${r.volume}  c=${JSON.stringify(r.conditions)}  id ${r.trade_id}  lag ${r.process_ts - r.trade_ts} ms`)
}
