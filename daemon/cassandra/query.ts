// `finnhubd query SYMBOL [--candles] [--since T] [--limit N]`: the stored trades or
// candles of one symbol, newest first, without cqlsh. Reads one (symbol, day)
// partition at a time from today back to the day of --since.

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { SYMBOL_PATTERN } from '../config/schema.js'
import { utcDay } from '../core/transform.js'
import { FinnhubdError } from '../errors.js'

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

export interface StoredTradeRow {
  tradeTs: number
  tradeId: string
  price: number
  volume: number
  conditions: string[] | null
  ingestTs: number
  processTs: number
}

export interface StoredCandleRow {
  minute: number
  open: number
  high: number
  low: number
  close: number
  volume: number
  vwap: number | null
  tradeCount: number
}

/**
 * A symbol's trades from `sinceMs` (and before `untilMs`) on, newest first, at most
 * `limit`: one (symbol, day) partition at a time, from the newest day back.
 */
export async function storedTrades (client: cassandra.Client, config: Config['cassandra'], symbol: string, sinceMs: number, limit: number, untilMs: number): Promise<StoredTradeRow[]> {
  const cql = `SELECT trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts FROM ${config.keyspace}.${config.tradesTable} WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ? LIMIT ?`
  return await byDay(sinceMs, untilMs, limit, async (day, left) => {
    const rs = await client.execute(cql, [symbol, day, sinceMs, untilMs, left], { prepare: true })
    return rs.rows.map(r => ({
      tradeTs: (r['trade_ts'] as Date).getTime(),
      tradeId: String(r['trade_id']),
      price: r['price'] as number,
      volume: r['volume'] as number,
      conditions: (r['conditions'] as string[] | null) ?? null,
      ingestTs: (r['ingest_ts'] as Date).getTime(),
      processTs: (r['process_ts'] as Date).getTime()
    }))
  })
}

/** A symbol's one-minute candles with minutes in [sinceMs, untilMs), newest first, at most `limit`. */
export async function storedCandles (client: cassandra.Client, config: Config['cassandra'], symbol: string, sinceMs: number, limit: number, untilMs: number): Promise<StoredCandleRow[]> {
  const cql = `SELECT minute, open, high, low, close, volume, vwap, trade_count FROM ${config.keyspace}.candles_1m WHERE symbol = ? AND day = ? AND minute >= ? AND minute < ? LIMIT ?`
  const rows = await byDay(sinceMs, untilMs, limit, async (day, left) => {
    const rs = await client.execute(cql, [symbol, day, sinceMs, untilMs, left], { prepare: true })
    return rs.rows.map(r => ({
      minute: (r['minute'] as Date).getTime(),
      open: r['open'] as number,
      high: r['high'] as number,
      low: r['low'] as number,
      close: r['close'] as number,
      volume: r['volume'] as number,
      vwap: (r['vwap'] as number | null) ?? null,
      tradeCount: r['trade_count'] as number
    }))
  })
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
      `${new Date(c.minute).toISOString()}  O ${c.open} H ${c.high} L ${c.low} C ${c.close}  vol ${c.volume}  vwap ${c.vwap ?? '-'}  trades ${c.tradeCount}`)
  }
  return (await storedTrades(client, config, q.symbol, q.sinceMs, q.limit, until)).map(r =>
    `${new Date(r.tradeTs).toISOString()}  ${r.price} × ${r.volume}  c=${JSON.stringify(r.conditions)}  id ${r.tradeId}  lag ${r.processTs - r.tradeTs} ms`)
}
