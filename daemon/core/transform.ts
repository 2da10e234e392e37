// The seed's Spark step, pure: a decoded Kafka `Trade` becomes a `trades` row.
// Columns are renamed (s→symbol, p→price, v→volume, t→trade_ts, c→conditions),
// ingest_ts is carried, process_ts added, the row gets its partition day (UTC) and
// a deterministic trade_id: a name-based UUID (version 5, SHA-1) of the trade's
// content and its ordinal among identical trades of its frame. So a replay of the
// topic rewrites the same rows, two identical fills in one frame stay two rows, and
// a trade Finnhub re-sends in a later frame (ordinal 0 again) collapses onto the first.

import { createHash } from 'node:crypto'
import type { TradeRecord } from './trade-schema.js'

export interface TradeRow {
  symbol: string
  /** UTC calendar day of trade_ts, YYYY-MM-DD (the partition key's second part). */
  day: string
  trade_ts: number
  trade_id: string
  price: number
  volume: number
  conditions: string[] | null
  ingest_ts: number
  process_ts: number
}

/** The namespace of finnhubd trade ids (a fixed random UUID; never change it: ids would change). */
export const TRADE_ID_NAMESPACE = 'a4b7b3e2-5d1c-4f0e-9c6a-2f8e1d3b7c90'
const NAMESPACE_BYTES = Buffer.from(TRADE_ID_NAMESPACE.replace(/-/g, ''), 'hex')

/**
 * The content the id is made of. Numbers use JavaScript's shortest round-trip form,
 * identical on every platform; fields are separated by a character no field holds.
 */
export function tradeIdName (trade: Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c' | 'ordinal'>): string {
  return `${trade.s}\u001f${trade.p}\u001f${trade.t}\u001f${trade.v}\u001f${trade.c === null ? '\u0000' : trade.c.join('\u001e')}\u001f${trade.ordinal}`
}

/** RFC 9562 version-5 UUID of `name` in finnhubd's namespace. */
export function tradeId (trade: Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c' | 'ordinal'>): string {
  const hash = createHash('sha1').update(NAMESPACE_BYTES).update(tradeIdName(trade), 'utf8').digest()
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80
  const hex = hash.toString('hex', 0, 16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

/** YYYY-MM-DD of an epoch-millisecond time, in UTC. */
export function utcDay (epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10)
}

export function toTradeRow (trade: TradeRecord, processTs: number): TradeRow {
  return {
    symbol: trade.s,
    day: utcDay(trade.t),
    trade_ts: trade.t,
    trade_id: tradeId(trade),
    price: trade.p,
    volume: trade.v,
    conditions: trade.c,
    ingest_ts: trade.ingest_ts,
    process_ts: processTs
  }
}
