// The worker's job on one batch of Kafka record values, pure: Avro-decode each
// value (either framing), apply the seed's transform, and pre-aggregate one-minute
// candles per (symbol, minute). Records that cannot be decoded, or that decode to
// something that is not a valid trade, are returned as poison with the reason,
// never thrown. Values arrive packed in one buffer with a
// length per record (-1 for a record without a value), so the batch crosses the
// thread boundary as a single transferable ArrayBuffer instead of N small copies.

import type avro from 'avsc'
import { accOf, foldTrade, mergeAcc, minuteOf, type CandleAcc } from './candle.js'
import { TradeDecoder, type PoisonReason } from './avro-codec.js'
import { encodeRows, uuidBytes, uuidString, type EncodedRows } from './cql-rows.js'
import { toTradeRow, type TradeRow } from './transform.js'
import { checkDecodedTrade, show } from './validate.js'

export interface PackedValues {
  buffer: ArrayBuffer
  /** Byte length of each value in order; -1 for a null value. */
  lengths: Int32Array
}

export interface PoisonRecord { index: number, reason: PoisonReason, detail: string }

/** One (symbol, minute)'s fold over the batch's distinct trades, and which rows it holds. */
export interface CandlePartial {
  symbol: string
  day: string
  minute: number
  acc: CandleAcc
  /** Indexes into the batch's rows of the trades folded (first occurrence of each trade id). */
  rows: number[]
  /** The same trades in parallel arrays (what the candle book needs without the rows): 16-byte ids, trade time (ms), price, volume. */
  ids: Uint8Array
  ts: Float64Array
  price: Float64Array
  volume: Float64Array
}

export interface DecodedBatch {
  rows: TradeRow[]
  /** For each row, the index of its record in the batch. */
  rowRecord: number[]
  poison: PoisonRecord[]
  partials: CandlePartial[]
  /** Time spent decoding and transforming, nanoseconds. */
  decodeNs: number
}

/**
 * A batch as the worker hands it back: the rows already encoded as CQL values (one
 * buffer, moved), so the main thread neither clones row objects nor encodes values.
 */
export interface EncodedBatch {
  rows: EncodedRows
  /** For each row, the index of its record in the batch. */
  rowRecord: Int32Array
  poison: PoisonRecord[]
  partials: CandlePartial[]
  decodeNs: number
}

/** The worker's result for a decoded batch (the decode time includes the encoding). */
export function encodeBatch (decoded: DecodedBatch, started: bigint, now: () => bigint = process.hrtime.bigint): EncodedBatch {
  return { rows: encodeRows(decoded.rows), rowRecord: Int32Array.from(decoded.rowRecord), poison: decoded.poison, partials: decoded.partials, decodeNs: Number(now() - started) }
}

/** The buffers of an EncodedBatch, to move (not copy) across the thread boundary. */
export function transferablesOf (batch: EncodedBatch): ArrayBuffer[] {
  const out = [batch.rows.bytes, batch.rows.layout.buffer as ArrayBuffer, batch.rows.times.buffer as ArrayBuffer, batch.rowRecord.buffer as ArrayBuffer]
  for (const p of batch.partials) out.push(p.ids.buffer as ArrayBuffer, p.ts.buffer as ArrayBuffer, p.price.buffer as ArrayBuffer, p.volume.buffer as ArrayBuffer)
  return out
}

/** Packs record values into one buffer (copied: a Kafka message's value may be a slice of a larger buffer). */
export function packValues (values: ReadonlyArray<Buffer | null | undefined>): PackedValues {
  let total = 0
  for (const v of values) total += v?.length ?? 0
  const buffer = new ArrayBuffer(total)
  const bytes = new Uint8Array(buffer)
  const lengths = new Int32Array(values.length)
  let at = 0
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      lengths[i] = -1
      return
    }
    bytes.set(v, at)
    at += v.length
    lengths[i] = v.length
  })
  return { buffer, lengths }
}

export function processBatch (decoder: TradeDecoder, packed: PackedValues, processTs: number, now: () => bigint = process.hrtime.bigint): DecodedBatch {
  const started = now()
  const all = Buffer.from(packed.buffer)
  const rows: TradeRow[] = []
  const rowRecord: number[] = []
  const poison: PoisonRecord[] = []
  let at = 0
  for (let i = 0; i < packed.lengths.length; i++) {
    const length = packed.lengths[i] as number
    const value = length < 0 ? null : all.subarray(at, at + length)
    if (length > 0) at += length
    let row: TradeRow
    try {
      const result = decoder.decode(value)
      if (!result.ok) {
        poison.push({ index: i, reason: result.reason, detail: result.detail })
        continue
      }
      // Valid Avro is not a valid trade: the topic is shared, so check it as strictly as a frame.
      const problem = checkDecodedTrade(result.trade, processTs)
      if (problem !== null) {
        poison.push({ index: i, reason: 'invalid_trade', detail: `field ${problem.field}: ${problem.detail}` })
        continue
      }
      row = toTradeRow(result.trade, processTs)
    } catch (err) {
      // A bug of ours about one record must cost that record, not the batch (a batch that
      // throws is retried, and would throw again on every retry and every restart).
      poison.push({ index: i, reason: 'internal', detail: `processing threw: ${show(err instanceof Error ? err.message : err)}` })
      continue
    }
    rows.push(row)
    rowRecord.push(i)
  }
  return { rows, rowRecord, poison, partials: foldPartials(rows), decodeNs: Number(now() - started) }
}

/**
 * The batch's candle partials: one fold per (symbol, minute) over the distinct trades
 * of `rows` (a trade twice in one batch, because Finnhub re-sent it, is one row in
 * Cassandra and one fold), leaving out the rows in `skip` (rows Cassandra refused).
 */
export function foldPartials (rows: readonly TradeRow[], skip?: ReadonlySet<number>): CandlePartial[] {
  const partials = new Map<string, { symbol: string, day: string, minute: number, acc: CandleAcc, rows: number[] }>()
  const seen = new Set<string>()
  for (let r = 0; r < rows.length; r++) {
    if (skip?.has(r) === true) continue
    const row = rows[r] as TradeRow
    if (seen.has(row.trade_id)) continue
    seen.add(row.trade_id)
    const minute = minuteOf(row.trade_ts)
    const key = `${row.symbol}\u0000${minute}`
    const partial = partials.get(key)
    if (partial === undefined) {
      partials.set(key, { symbol: row.symbol, day: row.day, minute, acc: accOf(row), rows: [r] })
    } else {
      mergeAcc(partial.acc, accOf(row))
      partial.rows.push(r)
    }
  }
  return [...partials.values()].map(p => {
    const n = p.rows.length
    const out: CandlePartial = { ...p, ids: new Uint8Array(n * 16), ts: new Float64Array(n), price: new Float64Array(n), volume: new Float64Array(n) }
    p.rows.forEach((r, k) => {
      const row = rows[r] as TradeRow
      uuidBytes(row.trade_id, out.ids, k * 16)
      out.ts[k] = row.trade_ts
      out.price[k] = row.price
      out.volume[k] = row.volume
    })
    return out
  })
}

/**
 * After Cassandra refused some of the batch's rows (rarely: usually none): the candle
 * partials without them, since what is not in `trades` must not be in a candle, and
 * their records as poison (cassandra_rejected) with Cassandra's word for why.
 * `refused` names rows by their index in the batch.
 */
export function withoutRefused (decoded: { rowRecord: ArrayLike<number>, partials: readonly CandlePartial[] }, refused: ReadonlyArray<{ index: number, error: string }>): { partials: readonly CandlePartial[], poison: PoisonRecord[] } {
  if (refused.length === 0) return { partials: decoded.partials, poison: [] }
  const skip = new Set(refused.map(r => r.index))
  const partials: CandlePartial[] = []
  for (const p of decoded.partials) {
    const keep: number[] = []
    p.rows.forEach((r, k) => { if (!skip.has(r)) keep.push(k) })
    if (keep.length === p.rows.length) { partials.push(p); continue }
    if (keep.length === 0) continue
    const out: CandlePartial = { symbol: p.symbol, day: p.day, minute: p.minute, acc: p.acc, rows: [], ids: new Uint8Array(keep.length * 16), ts: new Float64Array(keep.length), price: new Float64Array(keep.length), volume: new Float64Array(keep.length) }
    let acc: CandleAcc | null = null
    keep.forEach((k, j) => {
      out.rows.push(p.rows[k] as number)
      out.ids.set(p.ids.subarray(k * 16, k * 16 + 16), j * 16)
      out.ts[j] = p.ts[k] as number
      out.price[j] = p.price[k] as number
      out.volume[j] = p.volume[k] as number
      acc = foldTrade(acc, { trade_ts: p.ts[k] as number, trade_id: uuidString(p.ids, k * 16), price: p.price[k] as number, volume: p.volume[k] as number })
    })
    out.acc = acc as unknown as CandleAcc
    partials.push(out)
  }
  return {
    partials,
    poison: refused.map(r => ({ index: decoded.rowRecord[r.index] as number, reason: 'cassandra_rejected', detail: r.error.slice(0, 500) }))
  }
}

/** The decoder a worker builds once: the reader schema, known by its fingerprint and by the registry ids given. */
export function writerSchemasFor (type: avro.Type, fingerprintHex: string, schemaIds: readonly number[]): ConstructorParameters<typeof TradeDecoder>[1] {
  return {
    byFingerprint: new Map([[fingerprintHex, type]]),
    bySchemaId: new Map(schemaIds.map(id => [id, type]))
  }
}
