// A compact set of trade ids (version-5 UUIDs) for the candle book: open
// addressing over one Uint32Array, three 32-bit words per id (96 of the UUID's
// 122 hashed bits; two different trades of one symbol-minute share a key with a
// probability of about n²/2^97, i.e. never in practice), 12–24 bytes per id
// instead of ~80 for a Set of strings. Grows by doubling at 50 % load.
//
// An id goes in either as its 36-character string (the rebuild path, ids read back
// from `trades`) or as its 16 bytes at an offset of a larger array (the hot path:
// the worker's partials carry their ids packed, and no string is ever built). Both
// take the same words, bytes 0–11 big-endian, so the two forms of one id are one key.
//
// Redundant ingest: an add may carry a mark (a bit per ingest member that delivered
// the id, core/redundancy.ts), OR-ed into one byte per slot kept beside the table only
// once a mark is given (1 byte a slot: 2–4 more bytes per id).

const WORDS = 3

export class TradeIdSet {
  #table: Uint32Array
  #capacity: number
  #size = 0
  #marks: Uint8Array | null = null
  /** The slot of the last #insert (the id's, new or not). */
  #slot = 0

  constructor (initialCapacity = 64) {
    let capacity = 16
    while (capacity < initialCapacity * 2) capacity *= 2
    this.#capacity = capacity
    this.#table = new Uint32Array(capacity * WORDS)
  }

  get size (): number { return this.#size }

  /** Bytes held by the table. */
  get bytes (): number { return this.#table.byteLength + (this.#marks?.byteLength ?? 0) }

  /** Adds the id (36-character form, either case), OR-ing `mark` into its mark; true when it was not there before. */
  add (uuid: string, mark = 0): boolean {
    checkForm(uuid)
    return this.#add(wordA(uuid), wordB(uuid), wordC(uuid), mark)
  }

  has (uuid: string): boolean {
    checkForm(uuid)
    return this.#has(wordA(uuid), wordB(uuid), wordC(uuid))
  }

  /** Adds the id whose 16 bytes start at `offset`, OR-ing `mark` into its mark; true when it was not there before. */
  addBytes (bytes: Uint8Array, offset: number, mark = 0): boolean {
    if (offset < 0 || offset + 16 > bytes.length) throw new RangeError(`no 16-byte id at ${offset} of ${bytes.length} bytes`)
    return this.#add(word(bytes, offset), word(bytes, offset + 4), word(bytes, offset + 8), mark)
  }

  /** Calls `f` with the mark of every id that has one (no call when no add carried a mark). */
  forEachMark (f: (mark: number) => void): void {
    const marks = this.#marks
    if (marks === null) return
    for (const m of marks) if (m !== 0) f(m)
  }

  hasBytes (bytes: Uint8Array, offset: number): boolean {
    if (offset < 0 || offset + 16 > bytes.length) throw new RangeError(`no 16-byte id at ${offset} of ${bytes.length} bytes`)
    return this.#has(word(bytes, offset), word(bytes, offset + 4), word(bytes, offset + 8))
  }

  #add (a: number, b: number, c: number, mark: number): boolean {
    const fresh = this.#insert(a, b, c)
    if (mark !== 0) {
      if (this.#marks === null) this.#marks = new Uint8Array(this.#capacity)
      this.#marks[this.#slot] = (this.#marks[this.#slot] as number) | mark
    }
    if (fresh) {
      this.#size++
      if (this.#size * 2 > this.#capacity) this.#grow()
      return true
    }
    return false
  }

  #has (a: number, b: number, c: number): boolean {
    if (a === 0 && b === 0 && c === 0) c = 1
    const mask = this.#capacity - 1
    const t = this.#table
    for (let slot = (a ^ c) & mask; ; slot = (slot + 1) & mask) {
      const i = slot * WORDS
      if (t[i] === 0 && t[i + 1] === 0 && t[i + 2] === 0) return false
      if (t[i] === a && t[i + 1] === b && t[i + 2] === c) return true
    }
  }

  #insert (a: number, b: number, c: number): boolean {
    // The all-zero key marks an empty slot; a UUID whose 96 bits are all zero is not a v5 id.
    if (a === 0 && b === 0 && c === 0) c = 1
    const mask = this.#capacity - 1
    const t = this.#table
    for (let slot = (a ^ c) & mask; ; slot = (slot + 1) & mask) {
      const i = slot * WORDS
      if (t[i] === 0 && t[i + 1] === 0 && t[i + 2] === 0) {
        t[i] = a
        t[i + 1] = b
        t[i + 2] = c
        this.#slot = slot
        return true
      }
      if (t[i] === a && t[i + 1] === b && t[i + 2] === c) {
        this.#slot = slot
        return false
      }
    }
  }

  #grow (): void {
    const old = this.#table
    const oldMarks = this.#marks
    this.#capacity *= 2
    this.#table = new Uint32Array(this.#capacity * WORDS)
    this.#marks = oldMarks === null ? null : new Uint8Array(this.#capacity)
    for (let i = 0; i < old.length; i += WORDS) {
      if (old[i] !== 0 || old[i + 1] !== 0 || old[i + 2] !== 0) {
        this.#insert(old[i] as number, old[i + 1] as number, old[i + 2] as number)
        if (oldMarks !== null && this.#marks !== null) this.#marks[this.#slot] = oldMarks[i / WORDS] as number
      }
    }
  }
}

// The string form's hex digits 0–7 are bytes 0–3; 9–12 and 14–17 bytes 4–7; 19–22 and 24–27 bytes 8–11.
const wordA = (s: string): number => parseHex(s, 0, 8) >>> 0
const wordB = (s: string): number => (parseHex(s, 9, 13) * 0x10000 + parseHex(s, 14, 18)) >>> 0
const wordC = (s: string): number => (parseHex(s, 19, 23) * 0x10000 + parseHex(s, 24, 28)) >>> 0

const word = (b: Uint8Array, at: number): number =>
  (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0

function checkForm (s: string): void {
  if (s.length !== 36 || s.charCodeAt(8) !== 45 || s.charCodeAt(13) !== 45 || s.charCodeAt(18) !== 45 || s.charCodeAt(23) !== 45) throw new TypeError(`not a UUID: ${s.slice(0, 40)}`)
}

function parseHex (s: string, from: number, to: number): number {
  let n = 0
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    // 0-9, a-f, A-F
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
    if (d < 0) throw new TypeError(`not a UUID: ${s.slice(0, 40)}`)
    n = n * 16 + d
  }
  return n
}

/** The lowercase dashed form of 16 id bytes (one implementation, in ./cql-rows.ts). */
export { uuidString as tradeIdString } from './cql-rows.js'
