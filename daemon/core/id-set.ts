// A compact set of trade ids (version-5 UUIDs) for the candle folder: open
// addressing over one Uint32Array, three 32-bit words per id (96 of the UUID's
// 122 hashed bits; two different trades of one symbol-minute share a key with a
// probability of about n²/2^97, i.e. never in practice), 12–24 bytes per id
// instead of ~80 for a Set of strings. Grows by doubling at 50 % load.

const WORDS = 3

export class TradeIdSet {
  #table: Uint32Array
  #capacity: number
  #size = 0

  constructor (initialCapacity = 64) {
    let capacity = 16
    while (capacity < initialCapacity * 2) capacity *= 2
    this.#capacity = capacity
    this.#table = new Uint32Array(capacity * WORDS)
  }

  get size (): number { return this.#size }

  /** Bytes held by the table. */
  get bytes (): number { return this.#table.byteLength }

  /** Adds the id; true when it was not there before. */
  add (uuid: string): boolean {
    const a = parseHex(uuid, 0, 8)
    const b = parseHex(uuid, 9, 13) * 0x10000 + parseHex(uuid, 14, 18)
    const c = parseHex(uuid, 19, 23) * 0x10000 + parseHex(uuid, 24, 28)
    if (this.#insert(a >>> 0, b >>> 0, c >>> 0)) {
      this.#size++
      if (this.#size * 2 > this.#capacity) this.#grow()
      return true
    }
    return false
  }

  has (uuid: string): boolean {
    const a = parseHex(uuid, 0, 8) >>> 0
    const b = (parseHex(uuid, 9, 13) * 0x10000 + parseHex(uuid, 14, 18)) >>> 0
    let c = (parseHex(uuid, 19, 23) * 0x10000 + parseHex(uuid, 24, 28)) >>> 0
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
        return true
      }
      if (t[i] === a && t[i + 1] === b && t[i + 2] === c) return false
    }
  }

  #grow (): void {
    const old = this.#table
    this.#capacity *= 2
    this.#table = new Uint32Array(this.#capacity * WORDS)
    for (let i = 0; i < old.length; i += WORDS) {
      if (old[i] !== 0 || old[i + 1] !== 0 || old[i + 2] !== 0) this.#insert(old[i] as number, old[i + 1] as number, old[i + 2] as number)
    }
  }
}

function parseHex (s: string, from: number, to: number): number {
  let n = 0
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    // 0-9, a-f, A-F
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
    if (d < 0) throw new TypeError(`not a UUID: ${s}`)
    n = n * 16 + d
  }
  return n
}
