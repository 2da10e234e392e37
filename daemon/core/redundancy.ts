// Redundant ingest, pure: the source tag an ingest daemon of a redundancy group puts on
// each Kafka record (header `finnhubd-ingest`, value `group/member`), its parsing on the
// process side (the topic is input: a header may be missing, huge or hostile, and is
// then only a label, never trusted further), the bounded set of metric labels it maps
// to, and the combination of the members' gaps: a stretch of time is a hole in the data
// only where every member of the group had a gap for that symbol.

import type { Gap } from './gaps.js'

/** The Kafka header that names the ingest daemon that produced a record. */
export const SOURCE_HEADER = 'finnhubd-ingest'

/** A group's or a member's name. */
export const REDUNDANCY_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/

/** Members of one group, at most (a bit each in an id's mark; the eighth bit is STORED_MARK). */
export const MAX_REDUNDANCY_MEMBERS = 7

/** The longest header value read at all (`group/member`: 32 + 1 + 32 bytes). */
export const MAX_SOURCE_BYTES = 65

/** Labels besides the members': a record without the header, and one whose header names no member of this group. */
export const SOURCE_NONE = 'none'
export const SOURCE_OTHER = 'other'

export interface RedundancyGroup {
  group: string
  members: readonly string[]
}

/** The header value (and the gap rows' `source`) of `member` of `group`. */
export function sourceTag (group: string, member: string): string {
  return `${group}/${member}`
}

/** This daemon's tag (config.redundancy), or null outside a group or without a member name. */
export function ownSourceTag (r: { group: string, member: string | null } | null): string | null {
  return r === null || r.member === null ? null : sourceTag(r.group, r.member)
}

/**
 * The member named by a record's header value, or null when the value is not a
 * well-formed `group/member` (too long, not a string or bytes, other characters).
 * Only the length-bounded prefix is ever decoded.
 */
export function parseSourceTag (value: unknown): { group: string, member: string } | null {
  let text: string
  if (typeof value === 'string') {
    if (value.length > MAX_SOURCE_BYTES) return null
    text = value
  } else if (value instanceof Uint8Array) {
    if (value.length > MAX_SOURCE_BYTES) return null
    text = Buffer.from(value.buffer, value.byteOffset, value.length).toString('latin1')
  } else {
    return null
  }
  const slash = text.indexOf('/')
  if (slash < 0) return null
  const group = text.slice(0, slash)
  const member = text.slice(slash + 1)
  if (!REDUNDANCY_NAME_PATTERN.test(group) || !REDUNDANCY_NAME_PATTERN.test(member)) return null
  return { group, member }
}

/**
 * The source slot of a record for the process role's counts: the member's index in
 * the group (0 … members − 1), or the slot of SOURCE_NONE (no header, or one that is
 * not well-formed) or SOURCE_OTHER (a member of another group, or not in the list).
 * The labels are the members, `none` and `other`: bounded whatever the topic holds.
 */
export class SourceSlots {
  readonly labels: readonly string[]
  readonly none: number
  readonly other: number
  readonly #group: RedundancyGroup | null

  constructor (group: RedundancyGroup | null) {
    this.#group = group
    const members = group?.members ?? []
    this.labels = Object.freeze([...members, SOURCE_NONE, SOURCE_OTHER])
    this.none = members.length
    this.other = members.length + 1
  }

  /** The slot of a record whose headers are `headers` (node-rdkafka's list of one-key objects; anything else is no header). */
  slotOf (headers: unknown): number {
    if (!Array.isArray(headers)) return this.none
    // At most the first 16 headers are looked at: a record with thousands costs nothing more.
    const n = Math.min(headers.length, 16)
    for (let i = 0; i < n; i++) {
      const h: unknown = headers[i]
      if (h === null || typeof h !== 'object' || !Object.hasOwn(h, SOURCE_HEADER)) continue
      const tag = parseSourceTag((h as Record<string, unknown>)[SOURCE_HEADER])
      if (tag === null) return this.none
      const g = this.#group
      if (g === null || tag.group !== g.group) return this.other
      const index = g.members.indexOf(tag.member)
      return index < 0 ? this.other : index
    }
    return this.none
  }
}

/** A stretch in which trades of `symbols` may be missing from the store: [start, end], inclusive (as a Gap's). */
export interface Hole {
  start: number
  end: number
  symbols: string[]
}

/** A stored gap with the source that recorded it (daemon/cassandra/gaps.ts StoredGap has this shape). */
export interface SourcedGap extends Gap {
  source: string
}

export interface CombinedGaps {
  /** Gaps of daemons outside the group (and every gap without a group): holes as they are. */
  alone: SourcedGap[]
  /** Where every member of the group had a gap, per symbol: true holes of the group. */
  holes: Hole[]
  /** The members' own gaps, each with the part of it the other members covered. */
  covered: SourcedGap[]
}

/**
 * Splits stored gaps into those outside the group, and the group's: a stretch is a
 * hole only where every member had a gap for the symbol (an open gap reaches `now`).
 * Holes are cut at every gap boundary and adjacent pieces with the same symbols merged.
 */
export function combineGaps (gaps: readonly SourcedGap[], group: RedundancyGroup | null, now: number): CombinedGaps {
  const alone: SourcedGap[] = []
  const covered: SourcedGap[] = []
  const byMember = new Map<string, Array<{ start: number, end: number, symbols: ReadonlySet<string> }>>()
  for (const g of gaps) {
    const tag = group === null ? null : parseSourceTag(g.source)
    const member = tag !== null && group !== null && tag.group === group.group && group.members.includes(tag.member) ? tag.member : null
    if (member === null) { alone.push(g); continue }
    covered.push(g)
    const end = g.end ?? Math.max(g.start, now)
    let list = byMember.get(member)
    if (list === undefined) byMember.set(member, list = [])
    list.push({ start: g.start, end, symbols: new Set(g.symbols) })
  }
  if (group === null || byMember.size < group.members.length) return { alone, holes: [], covered }
  // Elementary pieces: each boundary point alone ([b, b]) and each open stretch between two (b, b'),
  // so an inclusive end that touches another gap's start is exact.
  const bounds = [...new Set([...byMember.values()].flatMap(l => l.flatMap(x => [x.start, x.end])))].sort((a, b) => a - b)
  const holes: Hole[] = []
  const symbolsAt = (lo: number, hi: number, openPiece: boolean): string[] => {
    let common: ReadonlySet<string> | null = null
    for (const member of group.members) {
      const here = new Set<string>()
      for (const x of byMember.get(member) ?? []) {
        const inside = openPiece ? x.start <= lo && x.end >= hi : x.start <= lo && x.end >= lo
        if (inside) for (const s of x.symbols) here.add(s)
      }
      common = common === null ? here : intersect(common, here)
      if (common.size === 0) return []
    }
    return [...(common ?? [])].sort()
  }
  const push = (start: number, end: number, symbols: string[]): void => {
    if (symbols.length === 0) return
    const last = holes[holes.length - 1]
    if (last !== undefined && last.end === start && sameList(last.symbols, symbols)) { last.end = end; return }
    holes.push({ start, end, symbols })
  }
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i] as number
    push(b, b, symbolsAt(b, b, false))
    const next = bounds[i + 1]
    if (next !== undefined) push(b, next, symbolsAt(b, next, true))
  }
  return { alone, holes, covered }
}

function intersect (a: ReadonlySet<string>, b: ReadonlySet<string>): Set<string> {
  const out = new Set<string>()
  for (const x of a) if (b.has(x)) out.add(x)
  return out
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** The mark of an id the candle book read back from the store (its sources unknown): never counted as seen by one member only. */
export const STORED_MARK = 0x80

/**
 * The process role's counts per source slot (SourceSlots): trades whose copy was the
 * first the store got (`first`), copies of a trade already stored or already in the
 * batch (`duplicate`), and, when a minute leaves the candle book, its trades that came
 * from exactly one member of the group (`single`; a trade read back from the store
 * after a restart is not counted). A member's bit in an id's mark is 1 << its slot.
 */
export class RedundancyTally {
  readonly slots: SourceSlots
  readonly first: number[]
  readonly duplicate: number[]
  readonly single: number[]
  readonly #members: number

  constructor (slots: SourceSlots) {
    this.slots = slots
    this.#members = slots.none
    this.first = slots.labels.map(() => 0)
    this.duplicate = slots.labels.map(() => 0)
    this.single = slots.labels.map(() => 0)
  }

  /** The id mark of a copy from `slot`: the member's bit, none for `none` and `other`. */
  bit (slot: number): number {
    return slot < this.#members ? 1 << slot : 0
  }

  /** Counts a closed minute's ids that exactly one member delivered. */
  closeMarks (marks: { forEachMark: (f: (mark: number) => void) => void }): void {
    marks.forEachMark(m => {
      if ((m & STORED_MARK) !== 0 || (m & (m - 1)) !== 0) return
      const slot = 31 - Math.clz32(m)
      this.single[slot] = (this.single[slot] ?? 0) + 1
    })
  }
}

/**
 * The batch's partials with the source slot of each trade (`sources`, from its record's
 * slot), for the candle book to count; the batch's rows that are in no partial (later
 * copies of a trade within the batch: the worker folds the first only) and were not
 * refused are counted as duplicates of their source here.
 */
export function attributeSources<P extends { rows: readonly number[], sources?: Uint8Array }> (
  partials: readonly P[], rowRecord: ArrayLike<number>, recordSlot: Uint8Array, refusedRows: ReadonlyArray<{ index: number }>, tally: RedundancyTally
): Array<P & { sources: Uint8Array }> {
  const folded = new Uint8Array(rowRecord.length)
  for (const r of refusedRows) if (r.index >= 0 && r.index < folded.length) folded[r.index] = 1
  const out = partials.map(p => {
    const sources = new Uint8Array(p.rows.length)
    p.rows.forEach((row, k) => {
      folded[row] = 1
      sources[k] = recordSlot[rowRecord[row] as number] ?? tally.slots.none
    })
    return { ...p, sources }
  })
  for (let row = 0; row < folded.length; row++) {
    if (folded[row] === 1) continue
    const slot = recordSlot[rowRecord[row] as number] ?? tally.slots.none
    tally.duplicate[slot] = (tally.duplicate[slot] ?? 0) + 1
  }
  return out
}
