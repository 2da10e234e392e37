// The seed's Spark step, pure: a decoded Kafka `Trade` becomes a `trades` row.
// Columns are renamed (s→symbol, p→price, v→volume, t→trade_ts, c→conditions),
// ingest_ts is carried, process_ts added, the row gets its partition day (UTC) and
// a deterministic trade_id: a name-based UUID (version 5, SHA-1) of the trade's
// content and its ordinal among identical trades of its frame. So a replay of the
// topic rewrites the same rows, two identical fills in one frame stay two rows, and
// a trade Finnhub re-sends in a later frame (ordinal 0 again) collapses onto the first.

import { sha1Into } from './sha1.js'
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
// namespace ‖ name, written in place (one id at a time: callers are synchronous).
let scratch = Buffer.alloc(1024)
NAMESPACE_BYTES.copy(scratch, 0)
const digest = new Uint8Array(20)
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/**
 * The content the id is made of. Numbers use JavaScript's shortest round-trip form,
 * identical on every platform; fields are separated by a character no field holds.
 */
export function tradeIdName (trade: Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c' | 'ordinal'>): string {
  return `${trade.s}\u001f${trade.p}\u001f${trade.t}\u001f${trade.v}\u001f${trade.c === null ? '\u0000' : trade.c.join('\u001e')}\u001f${trade.ordinal}`
}

/** RFC 9562 version-5 UUID of `name` in finnhubd's namespace. */
export function tradeId (trade: Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c' | 'ordinal'>): string {
  const name = tradeIdName(trade)
  if (Buffer.byteLength(name) + 16 > scratch.length) {
    scratch = Buffer.alloc((Buffer.byteLength(name) + 16) * 2)
    NAMESPACE_BYTES.copy(scratch, 0)
  }
  const length = 16 + scratch.write(name, 16, 'utf8')
  sha1Into(scratch, length, digest)
  digest[6] = ((digest[6] as number) & 0x0f) | 0x50
  digest[8] = ((digest[8] as number) & 0x3f) | 0x80
  let hex = ''
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) hex += '-'
    hex += HEX[digest[i] as number] as string
  }
  return hex
}

const DAY_MS = 86_400_000
const dayNames = new Map<number, string>()

/** YYYY-MM-DD of an epoch-millisecond time, in UTC (names remembered: trades come from few days). */
export function utcDay (epochMs: number): string {
  const day = Math.floor(epochMs / DAY_MS)
  let name = dayNames.get(day)
  if (name === undefined) {
    name = new Date(day * DAY_MS).toISOString().slice(0, 10)
    if (dayNames.size > 1000) dayNames.clear()
    dayNames.set(day, name)
  }
  return name
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
