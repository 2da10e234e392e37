// `finnhubd query SYMBOL [--candles [1m|5m|15m|1h|1d]] [--since T] [--limit N]`: the
// stored trades or candles of one symbol, newest first, without cqlsh. Reads one
// partition at a time (a day of trades or 1 m candles, a month of 5 m to 1 h, a year
// of 1 d) from the newest back to the one holding --since.

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { SYMBOL_PATTERN } from '../config/schema.js'
import type { Candle } from '../core/candle.js'
import { bucketsBetween, isResolutionName, RESOLUTIONS, type ResolutionName } from '../core/candle-periods.js'
import { utcDay } from '../core/transform.js'
import { FinnhubdError } from '../core/errors.js'
import { readConsistency } from './client.js'

export interface QueryOptions {
  symbol: string
  /** Candles at this resolution instead of trades. */
  candles: ResolutionName | null
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

/** `query SYMBOL --candles [I]`: the interval (1m when none is given), null without --candles. */
export function candleInterval (candles: boolean, rest: readonly string[]): ResolutionName | null {
  if (!candles) {
    if (rest.length > 0) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `query takes one symbol; "${rest[0]?.slice(0, 40) ?? ''}" is one too many (an interval goes after --candles)`)
    return null
  }
  if (rest.length > 1) throw new FinnhubdError('FINNHUBD_ERR_USAGE', 'query SYMBOL --candles takes at most one interval (1m, 5m, 15m, 1h or 1d)')
  const interval = rest[0] ?? '1m'
  if (!isResolutionName(interval)) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--candles ${JSON.stringify(interval.slice(0, 40))} is not an interval; use 1m, 5m, 15m, 1h or 1d`)
  return interval
}

/** --since when not given: an hour of trades, or 120 candles (two hours of 1m, five days of 1h). */
export function defaultSince (candles: ResolutionName | null): string {
  if (candles === null) return '1h'
  return `${Math.max(60, 120 * RESOLUTIONS[candles].ms / 60_000)}m`
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

/** A candle row of any resolution (`minute` is the period's start). */
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
const CANDLE_VALUES = 'open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts'

/**
 * A symbol's trades from `sinceMs` (and before `untilMs`) on, newest first, at most
 * `limit`: one (symbol, day) partition at a time, from the newest day back.
 */
export async function storedTrades (client: cassandra.Client, config: Config['cassandra'], symbol: string, sinceMs: number, limit: number, untilMs: number): Promise<StoredTrade[]> {
  const cql = `SELECT ${TRADE_COLUMNS} FROM ${config.keyspace}.${config.tradesTable} WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ? LIMIT ?`
  return await byDay(sinceMs, untilMs, limit, async (day, left) =>
    (await client.execute(cql, [symbol, day, sinceMs, untilMs, left], { prepare: true, consistency: readConsistency(config) })).rows.map(tradeOfRow))
}

/** Partitions one candle read visits at most (newest first): a month of 1 m, two years of 1 h, twenty of 1 d. */
const MAX_CANDLE_PARTITIONS = { '1m': MAX_DAYS, '5m': 24, '15m': 24, '1h': 24, '1d': 20 } as const

/**
 * A symbol's candles at `interval` with starts in [sinceMs, untilMs), newest first, at
 * most `limit`: one partition (a day of 1 m, a month of 5 m to 1 h, a year of 1 d) at a
 * time from the newest back.
 */
export async function storedCandles (client: cassandra.Client, config: Config['cassandra'], symbol: string, sinceMs: number, limit: number, untilMs: number, interval: ResolutionName = '1m'): Promise<StoredCandle[]> {
  const res = RESOLUTIONS[interval]
  const cql = `SELECT symbol, ${res.startColumn} AS minute, ${CANDLE_VALUES} FROM ${config.keyspace}.${res.table} ` +
    `WHERE symbol = ? AND ${res.bucketColumn} = ? AND ${res.startColumn} >= ? AND ${res.startColumn} < ? LIMIT ?`
  const out: StoredCandle[] = []
  const buckets = bucketsBetween(res, sinceMs, untilMs).reverse().slice(0, MAX_CANDLE_PARTITIONS[interval])
  for (const bucket of buckets) {
    if (out.length >= limit) break
    out.push(...(await client.execute(cql, [symbol, bucket, sinceMs, untilMs, limit - out.length], { prepare: true, consistency: readConsistency(config) })).rows.map(candleOfRow))
  }
  return out.sort((a, b) => b.minute - a.minute)
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
  if (q.candles !== null) {
    return (await storedCandles(client, config, q.symbol, q.sinceMs, q.limit, until, q.candles)).map(c =>
      `${new Date(c.minute).toISOString()}  O ${c.open} H ${c.high} L ${c.low} C ${c.close}  vol ${c.volume}  vwap ${c.vwap ?? '-'}  trades ${c.trade_count}`)
  }
  return (await storedTrades(client, config, q.symbol, q.sinceMs, q.limit, until)).map(r =>
    `${new Date(r.trade_ts).toISOString()}  ${r.price} × ${r.volume}  c=${JSON.stringify(r.conditions)}  id ${r.trade_id}  lag ${r.process_ts - r.trade_ts} ms`)
}
