// A set of trade ids (UUIDs) with a small tag each, in flat typed arrays: the full
// bench sends millions of trades, and its account of them (every id sent, each
// looked up once per stored row) held in a Map of 36-character strings took about
// 0.4 KiB per trade and ran the bench out of heap at ~7 M trades. Here a slot costs
// 16 bytes of id + 4 of tag + 1 of mark, at a load of at most a half.
//
// Open addressing with linear probing; ids are SHA-1 based (version 5), so their
// first four bytes are already a uniform hash.

import { uuidBytes } from '../../daemon/core/cql-rows.js'

const EMPTY = -1

export class TradeIdTable {
  #keys: Uint8Array
  #tags: Int32Array
  #marks: Uint8Array
  #mask: number
  #size = 0
  readonly #scratch = new Uint8Array(16)

  constructor (capacity = 1024) {
    let slots = 16
    while (slots < capacity * 2) slots *= 2
    this.#keys = new Uint8Array(slots * 16)
    this.#tags = new Int32Array(slots).fill(EMPTY)
    this.#marks = new Uint8Array(slots)
    this.#mask = slots - 1
  }

  /** Distinct ids held. */
  get size (): number { return this.#size }

  /** Adds `id` with `tag` (≥ 0); false, and the tag left as it was, when it is held already. */
  add (id: string, tag: number): boolean {
    if (!Number.isInteger(tag) || tag < 0) throw new RangeError(`a tag is an integer ≥ 0, got ${tag}`)
    if ((this.#size + 1) * 2 > this.#tags.length) this.#grow()
    uuidBytes(id, this.#scratch, 0)
    const slot = this.#probe(this.#keys, this.#tags, this.#mask, this.#scratch, 0)
    if (this.#tags[slot] !== EMPTY) return false
    this.#keys.set(this.#scratch, slot * 16)
    this.#tags[slot] = tag
    this.#size++
    return true
  }

  /** The tag of `id`, or -1 when it is not held. */
  tag (id: string): number {
    uuidBytes(id, this.#scratch, 0)
    return this.#tags[this.#probe(this.#keys, this.#tags, this.#mask, this.#scratch, 0)] as number
  }

  /** Marks `id` (held) once: true the first time, false when it was marked before. Throws for an id not held. */
  mark (id: string): boolean {
    uuidBytes(id, this.#scratch, 0)
    const slot = this.#probe(this.#keys, this.#tags, this.#mask, this.#scratch, 0)
    if (this.#tags[slot] === EMPTY) throw new RangeError(`${id} is not in the table`)
    if (this.#marks[slot] === 1) return false
    this.#marks[slot] = 1
    return true
  }

  /** Ids held and never marked. */
  unmarked (): number {
    let n = 0
    for (let slot = 0; slot < this.#tags.length; slot++) if (this.#tags[slot] !== EMPTY && this.#marks[slot] === 0) n++
    return n
  }

  /** The slot holding the 16 bytes at `key[at…]`, or the empty slot where they would go. */
  #probe (keys: Uint8Array, tags: Int32Array, mask: number, key: Uint8Array, at: number): number {
    let slot = ((key[at] as number) << 24 | (key[at + 1] as number) << 16 | (key[at + 2] as number) << 8 | (key[at + 3] as number)) & mask
    for (;;) {
      if (tags[slot] === EMPTY) return slot
      let same = true
      const base = slot * 16
      for (let i = 0; i < 16; i++) {
        if (keys[base + i] !== key[at + i]) { same = false; break }
      }
      if (same) return slot
      slot = (slot + 1) & mask
    }
  }

  #grow (): void {
    const slots = this.#tags.length * 2
    const keys = new Uint8Array(slots * 16)
    const tags = new Int32Array(slots).fill(EMPTY)
    const marks = new Uint8Array(slots)
    const mask = slots - 1
    for (let old = 0; old < this.#tags.length; old++) {
      if (this.#tags[old] === EMPTY) continue
      const slot = this.#probe(keys, tags, mask, this.#keys, old * 16)
      keys.set(this.#keys.subarray(old * 16, old * 16 + 16), slot * 16)
      tags[slot] = this.#tags[old] as number
      marks[slot] = this.#marks[old] as number
    }
    this.#keys = keys
    this.#tags = tags
    this.#marks = marks
    this.#mask = mask
  }
}
