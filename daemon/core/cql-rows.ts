// Trade rows as Cassandra's native protocol carries their values, made where the
// rows are made (the worker), so the main thread only frames requests: the driver
// sends a Buffer parameter as it is, whatever the column's type. A batch of rows is
// one ArrayBuffer (moved across the thread boundary, not copied) and two typed
// arrays, instead of an array of row objects that structured cloning would walk.
//
// Per row, back to back: symbol (UTF-8) | day (date: uint32, days since the epoch
// + 2^31) | trade_ts (timestamp: int64 ms) | trade_id (uuid: 16 bytes) | price,
// volume (double) | ingest_ts, process_ts (timestamp) | conditions (list<text>:
// int32 count, then int32 length + UTF-8 per item; absent for null or empty). Big-endian,
// as the protocol is. test/core/cql-rows.test.ts checks every value against the
// driver's own encoder.

import type { TradeRow } from './transform.js'

/** The columns of one trades row, in the order of the insert's bind markers. */
export const TRADE_COLUMNS = ['symbol', 'day', 'trade_ts', 'trade_id', 'price', 'volume', 'conditions', 'ingest_ts', 'process_ts'] as const

/** Bytes of a row after its symbol and before its conditions. */
const FIXED = 4 + 8 + 16 + 8 + 8 + 8 + 8
/** Ints per row in `layout`. */
const STRIDE = 4
const DAY_MS = 86_400_000

export interface EncodedRows {
  /** Every row's values, back to back. */
  bytes: ArrayBuffer
  /** Per row, STRIDE ints: first byte in `bytes`, symbol length, conditions length (-1 for null), index into `partitions`. */
  layout: Int32Array
  /** Per row: trade_ts, then ingest_ts (ms), for the latency histograms. */
  times: Float64Array
  /** The distinct partition keys of the batch, `symbol \0 day`. */
  partitions: string[]
}

/** Builds EncodedRows row by row (in the worker). */
export class RowEncoder {
  #buf: Buffer
  #at = 0
  #layout: Int32Array
  #times: Float64Array
  #count = 0
  readonly #partitions: string[] = []
  readonly #partitionIndex = new Map<string, number>()

  constructor (expectedRows = 64) {
    this.#buf = Buffer.allocUnsafe(Math.max(256, expectedRows * 112))
    this.#layout = new Int32Array(Math.max(4, expectedRows) * STRIDE)
    this.#times = new Float64Array(Math.max(4, expectedRows) * 2)
  }

  get count (): number { return this.#count }

  add (row: TradeRow): void {
    const symbolBytes = Buffer.byteLength(row.symbol, 'utf8')
    // An empty list is sent as null, as the driver does (Cassandra stores no empty collections).
    const conditions = row.conditions !== null && row.conditions.length > 0 ? row.conditions : null
    let conditionsBytes = -1
    if (conditions !== null) {
      conditionsBytes = 4
      for (const c of conditions) conditionsBytes += 4 + Buffer.byteLength(c, 'utf8')
    }
    this.#reserve(symbolBytes + FIXED + Math.max(0, conditionsBytes))
    const b = this.#buf
    const start = this.#at
    let at = start + b.write(row.symbol, start, 'utf8')
    at = b.writeUInt32BE(Math.floor(row.trade_ts / DAY_MS) + 2 ** 31, at)
    at = writeTimestamp(b, at, row.trade_ts)
    at = uuidBytes(row.trade_id, b, at)
    at = b.writeDoubleBE(row.price, at)
    at = b.writeDoubleBE(row.volume, at)
    at = writeTimestamp(b, at, row.ingest_ts)
    at = writeTimestamp(b, at, row.process_ts)
    if (conditions !== null) {
      at = b.writeInt32BE(conditions.length, at)
      for (const c of conditions) {
        const n = b.write(c, at + 4, 'utf8')
        b.writeInt32BE(n, at)
        at += 4 + n
      }
    }
    this.#at = at
    const i = this.#count++
    if ((i + 1) * STRIDE > this.#layout.length) {
      this.#layout = grow(this.#layout, this.#layout.length * 2) as Int32Array
      this.#times = grow(this.#times, this.#times.length * 2) as Float64Array
    }
    const key = `${row.symbol}\u0000${row.day}`
    let p = this.#partitionIndex.get(key)
    if (p === undefined) {
      p = this.#partitions.length
      this.#partitions.push(key)
      this.#partitionIndex.set(key, p)
    }
    const l = i * STRIDE
    this.#layout[l] = start
    this.#layout[l + 1] = symbolBytes
    this.#layout[l + 2] = conditionsBytes
    this.#layout[l + 3] = p
    this.#times[i * 2] = row.trade_ts
    this.#times[i * 2 + 1] = row.ingest_ts
  }

  /** The rows so far, in buffers of their own (to move with Piscina.move / a transfer list). */
  finish (): EncodedRows {
    const bytes = new ArrayBuffer(this.#at)
    new Uint8Array(bytes).set(this.#buf.subarray(0, this.#at))
    return {
      bytes,
      layout: this.#layout.slice(0, this.#count * STRIDE),
      times: this.#times.slice(0, this.#count * 2),
      partitions: this.#partitions
    }
  }

  #reserve (n: number): void {
    if (this.#at + n <= this.#buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n))
    this.#buf.copy(next, 0, 0, this.#at)
    this.#buf = next
  }
}

/** An int64 of milliseconds; without a BigInt for the usual (non-negative, safe) case. */
function writeTimestamp (b: Buffer, at: number, ms: number): number {
  if (ms >= 0 && ms <= Number.MAX_SAFE_INTEGER && Number.isInteger(ms)) {
    b.writeUInt32BE(Math.floor(ms / 4294967296), at)
    return b.writeUInt32BE(ms % 4294967296, at + 4)
  }
  return b.writeBigInt64BE(BigInt(Math.trunc(ms)), at)
}

function grow (a: Int32Array | Float64Array, length: number): Int32Array | Float64Array {
  const next = a instanceof Int32Array ? new Int32Array(length) : new Float64Array(length)
  next.set(a)
  return next
}

function hexValue (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  throw new TypeError('not a UUID')
}

/** Writes a UUID's 16 bytes (from its 36-character form) at `at`; returns the offset after them. */
export function uuidBytes (uuid: string, b: Uint8Array, at: number): number {
  if (uuid.length !== 36) throw new TypeError(`not a UUID: ${uuid.slice(0, 40)}`)
  let j = 0
  for (let i = 0; i < 16; i++) {
    if (j === 8 || j === 13 || j === 18 || j === 23) j++
    b[at + i] = hexValue(uuid.charCodeAt(j)) * 16 + hexValue(uuid.charCodeAt(j + 1))
    j += 2
  }
  return at + 16
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** The 36-character lowercase form of the 16 bytes at `at`. */
export function uuidString (b: Uint8Array, at: number): string {
  let hex = ''
  for (let k = 0; k < 16; k++) {
    if (k === 4 || k === 6 || k === 8 || k === 10) hex += '-'
    hex += HEX[b[at + k] as number] as string
  }
  return hex
}

/** The rows of one EncodedRows, read on the main thread: a parameter list per row, as Buffers into the one buffer. */
export class RowView {
  readonly #buf: Buffer
  readonly #layout: Int32Array
  readonly #times: Float64Array
  readonly partitions: readonly string[]
  readonly count: number

  constructor (rows: EncodedRows) {
    this.#buf = Buffer.from(rows.bytes)
    this.#layout = rows.layout
    this.#times = rows.times
    this.partitions = rows.partitions
    this.count = rows.layout.length / STRIDE
  }

  /** The insert's nine parameters (conditions null when the row has none). */
  params (i: number): Array<Buffer | null> {
    const l = i * STRIDE
    const b = this.#buf
    let at = this.#layout[l] as number
    const symbol = b.subarray(at, at += this.#layout[l + 1] as number)
    const day = b.subarray(at, at += 4)
    const tradeTs = b.subarray(at, at += 8)
    const id = b.subarray(at, at += 16)
    const price = b.subarray(at, at += 8)
    const volume = b.subarray(at, at += 8)
    const ingestTs = b.subarray(at, at += 8)
    const processTs = b.subarray(at, at += 8)
    const c = this.#layout[l + 2] as number
    return [symbol, day, tradeTs, id, price, volume, c < 0 ? null : b.subarray(at, at + c), ingestTs, processTs]
  }

  /** The row's partition key, `symbol \0 day`. */
  partition (i: number): string { return this.partitions[this.#layout[i * STRIDE + 3] as number] as string }

  /**
   * Bytes the row adds to a batch as Cassandra measures it against
   * batch_size_warn_threshold (the mutation's data size): its values, a timestamp and
   * header per cell, and a cell (with its 16-byte path) per list item. Calibrated on
   * Cassandra 5's own "Batch for … is of size" figures for these rows (about 210 bytes
   * for a row without conditions), a little above them rather than below.
   */
  size (i: number): number {
    const l = i * STRIDE
    const symbol = this.#layout[l + 1] as number
    const conditions = this.#layout[l + 2] as number
    if (conditions < 0) return symbol + FIXED + 9 * 16
    const items = this.#buf.readInt32BE((this.#layout[l] as number) + symbol + FIXED)
    return symbol + FIXED + 9 * 16 + conditions + 28 * items
  }

  tradeTs (i: number): number { return this.#times[i * 2] as number }
  ingestTs (i: number): number { return this.#times[i * 2 + 1] as number }

  symbol (i: number): string {
    const l = i * STRIDE
    const at = this.#layout[l] as number
    return this.#buf.toString('utf8', at, at + (this.#layout[l + 1] as number))
  }

  tradeId (i: number): string {
    const l = i * STRIDE
    return uuidString(this.#buf, (this.#layout[l] as number) + (this.#layout[l + 1] as number) + 12)
  }

  /** Row i read back whole (tests, logs): the inverse of RowEncoder.add. */
  row (i: number): TradeRow {
    const p = this.params(i)
    const conditions = p[6]
    const list: string[] = []
    if (conditions !== null && conditions !== undefined) {
      let at = 4
      for (let k = conditions.readInt32BE(0); k > 0; k--) {
        const n = conditions.readInt32BE(at)
        list.push(conditions.toString('utf8', at + 4, at + 4 + n))
        at += 4 + n
      }
    }
    const day = (p[1] as Buffer).readUInt32BE(0) - 2 ** 31
    return {
      symbol: this.symbol(i),
      day: new Date(day * DAY_MS).toISOString().slice(0, 10),
      trade_ts: Number((p[2] as Buffer).readBigInt64BE(0)),
      trade_id: this.tradeId(i),
      price: (p[4] as Buffer).readDoubleBE(0),
      volume: (p[5] as Buffer).readDoubleBE(0),
      conditions: conditions === null ? null : list,
      ingest_ts: Number((p[7] as Buffer).readBigInt64BE(0)),
      process_ts: Number((p[8] as Buffer).readBigInt64BE(0))
    }
  }
}

/** Encodes rows made on this thread (the bench's ceiling, tests). */
export function encodeRows (rows: readonly TradeRow[]): EncodedRows {
  const e = new RowEncoder(rows.length)
  for (const row of rows) e.add(row)
  return e.finish()
}
