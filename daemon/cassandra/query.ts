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

export async function queryRows (client: cassandra.Client, config: Config['cassandra'], q: QueryOptions, now: number): Promise<string[]> {
  const { keyspace, tradesTable } = config
  const out: string[] = []
  const firstDay = Math.max(q.sinceMs, now - MAX_DAYS * DAY_MS)
  for (let day = now; day >= firstDay - DAY_MS && out.length < q.limit; day -= DAY_MS) {
    const d = utcDay(day)
    if (d < utcDay(firstDay)) break
    const rs = q.candles
      ? await client.execute(`SELECT minute, open, high, low, close, volume, vwap, trade_count FROM ${keyspace}.candles_1m WHERE symbol = ? AND day = ? AND minute >= ? LIMIT ?`,
        [q.symbol, d, q.sinceMs, q.limit - out.length], { prepare: true })
      : await client.execute(`SELECT trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts FROM ${keyspace}.${tradesTable} WHERE symbol = ? AND day = ? AND trade_ts >= ? LIMIT ?`,
        [q.symbol, d, q.sinceMs, q.limit - out.length], { prepare: true })
    for (const r of rs.rows) {
      out.push(q.candles
        ? `${(r['minute'] as Date).toISOString()}  O ${r['open']} H ${r['high']} L ${r['low']} C ${r['close']}  vol ${r['volume']}  vwap ${r['vwap'] ?? '-'}  trades ${r['trade_count']}`
        : `${(r['trade_ts'] as Date).toISOString()}  ${r['price']} × ${r['volume']}  c=${JSON.stringify(r['conditions'] ?? null)}  id ${String(r['trade_id'])}  ` +
          `lag ${(r['process_ts'] as Date).getTime() - (r['trade_ts'] as Date).getTime()} ms`)
    }
  }
  return out
}
