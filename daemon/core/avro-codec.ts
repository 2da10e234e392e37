// Avro framing of Trade records in Kafka, pure. Two framings:
//  - single-object encoding (no registry): 0xC3 0x01, then the schema's 8-byte
//    CRC-64-AVRO fingerprint (little-endian) of its Parsing Canonical Form, then the body;
//  - Confluent wire format (registry configured): 0x00, the 4-byte big-endian schema
//    id, then the body.
// Anything else, or a fingerprint / schema id we do not know, is a poison record:
// decode() says why instead of throwing, so one bad record never stops a partition.
// encode() writes into one reusable scratch buffer and returns a view of it:
// node-rdkafka copies the payload during produce(), so no buffer per trade is needed.

import avro from 'avsc'
import type { TradeRecord } from './trade-schema.js'

// avsc declares Resolver without exporting it.
type Resolver = ReturnType<avro.Type['createResolver']>

const SINGLE_OBJECT_MAGIC_0 = 0xc3
const SINGLE_OBJECT_MAGIC_1 = 0x01
const SINGLE_OBJECT_HEADER = 10
const CONFLUENT_MAGIC = 0x00
const CONFLUENT_HEADER = 5

export type Framing =
  | { kind: 'single-object' }
  | { kind: 'confluent', schemaId: number }

// CRC-64-AVRO (Rabin) table, as in the Avro specification's reference code.
const EMPTY64 = 0xc15d213aa4d7a795n
const FP_TABLE: bigint[] = (() => {
  const table: bigint[] = []
  for (let i = 0n; i < 256n; i++) {
    let fp = i
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY64 & -(fp & 1n))
    table.push(fp & 0xffffffffffffffffn)
  }
  return table
})()

/** The 64-bit Rabin fingerprint of a byte string, as the Avro spec defines it. */
export function rabinFingerprint64 (bytes: Uint8Array): bigint {
  let fp = EMPTY64
  for (const b of bytes) fp = (fp >> 8n) ^ (FP_TABLE[Number((fp ^ BigInt(b)) & 0xffn)] as bigint)
  return fp
}

/** The 8 bytes that follow 0xC3 0x01 for this schema (fingerprint, little-endian). */
export function singleObjectFingerprint (type: avro.Type): Buffer {
  const canonical = JSON.stringify(type.schema())
  const out = Buffer.alloc(8)
  out.writeBigUInt64LE(rabinFingerprint64(Buffer.from(canonical, 'utf8')))
  return out
}

export class TradeEncoder {
  readonly #type: avro.Type
  readonly #header: Buffer
  #scratch = Buffer.allocUnsafe(64 * 1024)

  constructor (type: avro.Type, framing: Framing) {
    this.#type = type
    if (framing.kind === 'single-object') {
      this.#header = Buffer.concat([Buffer.from([SINGLE_OBJECT_MAGIC_0, SINGLE_OBJECT_MAGIC_1]), singleObjectFingerprint(type)])
    } else {
      this.#header = Buffer.alloc(CONFLUENT_HEADER)
      this.#header[0] = CONFLUENT_MAGIC
      this.#header.writeUInt32BE(framing.schemaId, 1)
    }
    this.#header.copy(this.#scratch, 0)
  }

  /**
   * The framed record as a view of a scratch buffer that the next call overwrites:
   * hand it to a consumer that copies (node-rdkafka's produce), or copy it first.
   */
  encodeView (trade: TradeRecord): Buffer {
    let end = this.#type.encode(trade, this.#scratch, this.#header.length)
    if (end < 0) {
      // A negative result is the size needed, negated: grow once and retry.
      this.#scratch = Buffer.allocUnsafe(Math.max(this.#scratch.length * 2, -end + 1024))
      this.#header.copy(this.#scratch, 0)
      end = this.#type.encode(trade, this.#scratch, this.#header.length)
    }
    return this.#scratch.subarray(0, end)
  }

  /** The framed record in a buffer of its own. */
  encode (trade: TradeRecord): Buffer {
    return Buffer.from(this.encodeView(trade))
  }
}

/**
 * Why a record went to the dead-letter topic: it could not be decoded (empty … invalid_body),
 * it decoded to something that is not a valid trade (invalid_trade), processing it threw
 * (internal), or Cassandra refused its row as invalid (cassandra_rejected).
 */
export const POISON_REASONS = ['empty', 'unknown_framing', 'truncated', 'unknown_schema', 'invalid_body', 'invalid_trade', 'internal', 'cassandra_rejected'] as const
export type PoisonReason = typeof POISON_REASONS[number]

export type DecodeResult =
  | { ok: true, trade: TradeRecord }
  | { ok: false, reason: PoisonReason, detail: string }

export interface WriterSchemas {
  /** Writer types by single-object fingerprint (hex of the 8 bytes). */
  byFingerprint: ReadonlyMap<string, avro.Type>
  /** Writer types by Confluent schema id. */
  bySchemaId: ReadonlyMap<number, avro.Type>
}

export class TradeDecoder {
  readonly #reader: avro.Type
  readonly #writers: WriterSchemas
  readonly #resolvers = new Map<avro.Type, Resolver>()

  constructor (reader: avro.Type, writers: WriterSchemas) {
    this.#reader = reader
    this.#writers = writers
  }

  decode (value: Buffer | null | undefined): DecodeResult {
    if (value === null || value === undefined || value.length === 0) return { ok: false, reason: 'empty', detail: 'record has no value' }
    let writer: avro.Type | undefined
    let offset: number
    if (value[0] === SINGLE_OBJECT_MAGIC_0 && value[1] === SINGLE_OBJECT_MAGIC_1) {
      if (value.length < SINGLE_OBJECT_HEADER) return { ok: false, reason: 'truncated', detail: `single-object header needs 10 bytes, record has ${value.length}` }
      const fingerprint = value.toString('hex', 2, SINGLE_OBJECT_HEADER)
      writer = this.#writers.byFingerprint.get(fingerprint)
      if (writer === undefined) return { ok: false, reason: 'unknown_schema', detail: `unknown schema fingerprint ${fingerprint}` }
      offset = SINGLE_OBJECT_HEADER
    } else if (value[0] === CONFLUENT_MAGIC) {
      if (value.length < CONFLUENT_HEADER) return { ok: false, reason: 'truncated', detail: `Confluent header needs 5 bytes, record has ${value.length}` }
      const schemaId = value.readUInt32BE(1)
      writer = this.#writers.bySchemaId.get(schemaId)
      if (writer === undefined) return { ok: false, reason: 'unknown_schema', detail: `unknown schema id ${schemaId}` }
      offset = CONFLUENT_HEADER
    } else {
      return { ok: false, reason: 'unknown_framing', detail: `first byte 0x${(value[0] as number).toString(16).padStart(2, '0')} is neither Avro single-object (0xc3 0x01) nor Confluent (0x00) framing` }
    }
    try {
      const resolver = this.#resolverFor(writer)
      const { value: trade, offset: end } = this.#reader.decode(value, offset, resolver)
      if (end !== value.length) {
        return { ok: false, reason: 'invalid_body', detail: end < 0 ? 'body is truncated' : `${value.length - end} trailing bytes after the record` }
      }
      return { ok: true, trade: trade as TradeRecord }
    } catch (err) {
      return { ok: false, reason: 'invalid_body', detail: (err as Error).message.slice(0, 200) }
    }
  }

  #resolverFor (writer: avro.Type): Resolver | undefined {
    if (writer === this.#reader) return undefined
    let resolver = this.#resolvers.get(writer)
    if (resolver === undefined) {
      resolver = this.#reader.createResolver(writer)
      this.#resolvers.set(writer, resolver)
    }
    return resolver
  }
}

// avsc reads an array (or map) block by trusting its count: a 20-byte record whose
// `c` block count said 100,000,000 kept a worker busy for 106 s and 1.4 GB before
// avsc noticed the body was truncated (2^31 runs it out of memory), because a read
// past the end of the buffer fails silently, item after item. The readers and
// skippers below are avsc's own, except that they stop as soon as the position has
// run past the end: the decode then fails as truncated (offset -1) after at most one
// item per byte, and a negative block size (which made the skipper loop forever) is
// invalid. avsc freezes its type instances, so they replace the prototypes' methods,
// once, for every decode in this process (a resolver copies the reader's `_read`, so
// it is bounded too); valid input reads exactly as before. Arrays of zero-byte items
// (null) are not bounded by this: no Trade schema has one.
interface AvscTap { buf: Buffer, pos: number, readLong: () => number, skipLong: () => void, readString: () => string, skipString: () => void }
interface AvscBlockItem { _read: (tap: AvscTap) => unknown, _skip: (tap: AvscTap) => void }
interface AvscBlockType { itemsType?: AvscBlockItem, valuesType?: AvscBlockItem }

const arrayPrototype = avro.types.ArrayType.prototype as unknown as Record<string, unknown>
const mapPrototype = avro.types.MapType.prototype as unknown as Record<string, unknown>
arrayPrototype['_read'] = boundedArrayRead
arrayPrototype['_skip'] = function (this: AvscBlockType, tap: AvscTap) { boundedBlockSkip(this.itemsType as AvscBlockItem, false, tap) }
mapPrototype['_read'] = boundedMapRead
mapPrototype['_skip'] = function (this: AvscBlockType, tap: AvscTap) { boundedBlockSkip(this.valuesType as AvscBlockItem, true, tap) }

function blockCount (tap: AvscTap): number {
  const n = tap.readLong()
  if (n >= 0) return n
  tap.skipLong() // a negative count is followed by the block's size in bytes
  return -n
}

function boundedArrayRead (this: AvscBlockType, tap: AvscTap): unknown[] {
  const items = this.itemsType as AvscBlockItem
  const value: unknown[] = []
  let n: number
  while ((n = blockCount(tap)) > 0) {
    while (n-- > 0) {
      value.push(items._read(tap))
      if (tap.pos > tap.buf.length) return value
    }
  }
  return value
}

function boundedMapRead (this: AvscBlockType, tap: AvscTap): Record<string, unknown> {
  const values = this.valuesType as AvscBlockItem
  const value: Record<string, unknown> = {}
  let n: number
  while ((n = blockCount(tap)) > 0) {
    while (n-- > 0) {
      const key = tap.readString()
      value[key] = values._read(tap)
      if (tap.pos > tap.buf.length) return value
    }
  }
  return value
}

function boundedBlockSkip (items: AvscBlockItem, isMap: boolean, tap: AvscTap): void {
  let n: number
  while ((n = tap.readLong()) !== 0) {
    if (n < 0) {
      const size = tap.readLong()
      // A negative size would move the position back to the count: avsc's skipper loops forever on it.
      if (size < 0) { tap.pos = tap.buf.length + 1; return }
      tap.pos += size
    } else {
      while (n-- > 0) {
        if (isMap) tap.skipString()
        items._skip(tap)
        if (tap.pos > tap.buf.length) return
      }
    }
    if (tap.pos > tap.buf.length) return
  }
}
