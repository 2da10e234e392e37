// Redundant ingest, pure parts: the source header read hostile-safe, the bounded source
// slots, the id marks and the per-source tally, and the gap combination against a
// brute-force model (a millisecond grid).
import t from 'tap'
import fc from 'fast-check'
import { randomUUID } from 'node:crypto'
import { attributeSources, combineGaps, MAX_SOURCE_BYTES, ownSourceTag, parseSourceTag, RedundancyTally, SOURCE_HEADER, SourceSlots, STORED_MARK, type SourcedGap } from '../../daemon/core/redundancy.js'
import { TradeIdSet } from '../../daemon/core/id-set.js'

const GROUP = { group: 'us-equities', members: ['a', 'b'] }

t.test('parseSourceTag reads group/member and refuses anything else without throwing', async t => {
  t.same(parseSourceTag('us-equities/a'), { group: 'us-equities', member: 'a' })
  t.same(parseSourceTag(Buffer.from('g1/b_2')), { group: 'g1', member: 'b_2' })
  for (const bad of ['', 'a', '/a', 'a/', 'a/b/c', 'A/b', 'a/ b', 'a/b\n', `a/${'x'.repeat(40)}`, 'x'.repeat(1_000_000), 42, null, undefined, {}, ['a/b']]) {
    t.equal(parseSourceTag(bad), null, JSON.stringify(String(bad).slice(0, 30)))
  }
  fc.assert(fc.property(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 200 }), fc.anything()), v => {
    const tag = parseSourceTag(v)
    if (tag === null) return true
    // Whatever it accepts is short and of the plain charset.
    return `${tag.group}/${tag.member}`.length <= MAX_SOURCE_BYTES && /^[a-z0-9][a-z0-9_-]*\/[a-z0-9][a-z0-9_-]*$/.test(`${tag.group}/${tag.member}`)
  }), { numRuns: 2000 })
})

t.test('ownSourceTag: only an ingest member has one', async t => {
  t.equal(ownSourceTag(null), null)
  t.equal(ownSourceTag({ group: 'g', member: null }), null)
  t.equal(ownSourceTag({ group: 'g', member: 'a' }), 'g/a')
})

t.test('SourceSlots maps any headers to a bounded set of labels', async t => {
  const slots = new SourceSlots(GROUP)
  t.same(slots.labels, ['a', 'b', 'none', 'other'])
  t.equal(slots.slotOf([{ [SOURCE_HEADER]: Buffer.from('us-equities/b') }]), 1)
  t.equal(slots.slotOf([{ other: Buffer.from('x') }, { [SOURCE_HEADER]: 'us-equities/a' }]), 0)
  t.equal(slots.slotOf(undefined), slots.none)
  t.equal(slots.slotOf([{ [SOURCE_HEADER]: Buffer.from('us-equities/c') }]), slots.other)
  t.equal(slots.slotOf([{ [SOURCE_HEADER]: Buffer.from('eu/a') }]), slots.other)
  t.equal(slots.slotOf([{ [SOURCE_HEADER]: Buffer.alloc(10_000, 0x61) }]), slots.none)
  t.equal(new SourceSlots(null).slotOf([{ [SOURCE_HEADER]: 'g/a' }]), 1, 'no group: every tagged record is other')
  fc.assert(fc.property(fc.anything(), h => {
    const slot = slots.slotOf(h)
    return Number.isInteger(slot) && slot >= 0 && slot < slots.labels.length
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.array(fc.dictionary(fc.constantFrom(SOURCE_HEADER, 'k'), fc.oneof(fc.string(), fc.uint8Array(), fc.anything()))), h => {
    const slot = slots.slotOf(h)
    return slot >= 0 && slot < slots.labels.length
  }), { numRuns: 2000 })
})

function bytesOf (uuid: string): Uint8Array {
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'))
}

t.test('id marks survive growth and count the ids one member alone delivered', async t => {
  const ids = new TradeIdSet(4)
  const tally = new RedundancyTally(new SourceSlots(GROUP))
  const both: string[] = []
  const onlyA: string[] = []
  const onlyB: string[] = []
  const stored: string[] = []
  for (let i = 0; i < 300; i++) { both.push(randomUUID()); onlyA.push(randomUUID()); onlyB.push(randomUUID()); stored.push(randomUUID()) }
  for (const id of stored) ids.add(id, STORED_MARK)
  for (const id of [...both, ...onlyA]) t.equal(ids.addBytes(bytesOf(id), 0, tally.bit(0)), true)
  for (const id of both) t.equal(ids.addBytes(bytesOf(id), 0, tally.bit(1)), false)
  for (const id of onlyB) ids.addBytes(bytesOf(id), 0, tally.bit(1))
  // A member's copy of an id read back from the store: never counted as single-source.
  for (const id of stored) ids.addBytes(bytesOf(id), 0, tally.bit(1))
  t.equal(tally.bit(tally.slots.none), 0)
  tally.closeMarks(ids)
  t.same(tally.single, [300, 300, 0, 0])
  const plain = new TradeIdSet()
  plain.add(randomUUID())
  const before = [...tally.single]
  tally.closeMarks(plain)
  t.same(tally.single, before, 'a set without marks counts nothing')
})

t.test('attributeSources: sources per folded trade, the batch\'s other copies counted as duplicates', async t => {
  const tally = new RedundancyTally(new SourceSlots(GROUP))
  // 5 rows from records 0..4; records 0,2 from a, 1,3 from b, 4 without header. Rows 0,1 are one trade (row 1 dropped by the worker), row 3 refused.
  const partials = [{ rows: [0, 2], name: 'p1' }, { rows: [4], name: 'p2' }]
  const out = attributeSources(partials, [0, 1, 2, 3, 4], Uint8Array.from([0, 1, 0, 1, 2]), [{ index: 3 }], tally)
  t.same(out.map(p => [...p.sources]), [[0, 0], [2]])
  t.equal(out[0]?.name, 'p1')
  t.same(tally.duplicate, [0, 1, 0, 0])
})

// ---- gap combination against a brute-force grid --------------------------------

const SYMS = ['X', 'Y', 'Z']
const gapArb = fc.record({
  member: fc.constantFrom('a', 'b', 'c'),
  start: fc.integer({ min: 0, max: 40 }),
  len: fc.integer({ min: 0, max: 15 }),
  open: fc.boolean(),
  symbols: fc.subarray(SYMS, { minLength: 1 })
})

function gapOf (x: { member: string, start: number, len: number, open: boolean, symbols: string[] }, i: number, group = 'g'): SourcedGap {
  return { id: `g${i}`, reason: 'disconnected', start: x.start, end: x.open ? null : x.start + x.len, symbols: x.symbols, dropped: null, openedAt: x.start, source: x.member === 'c' ? 'host-c' : `${group}/${x.member}` }
}

t.test('combineGaps: a (symbol, ms) is in a hole exactly when every member had a gap there', async t => {
  const now = 60
  fc.assert(fc.property(fc.array(gapArb, { maxLength: 8 }), list => {
    const gaps = list.map((x, i) => gapOf(x, i))
    const r = combineGaps(gaps, { group: 'g', members: ['a', 'b'] }, now)
    if (r.alone.length + r.covered.length !== gaps.length) return false
    if (!r.alone.every(g => g.source === 'host-c')) return false
    for (let ms = 0; ms <= now; ms++) {
      for (const s of SYMS) {
        const had = (m: string): boolean => gaps.some(g => g.source === `g/${m}` && g.symbols.includes(s) && g.start <= ms && ms <= (g.end ?? now))
        const model = had('a') && had('b')
        const got = r.holes.some(h => h.symbols.includes(s) && h.start <= ms && ms <= h.end)
        if (model !== got) return false
      }
    }
    // Holes come in time order and never overlap beyond a shared bound.
    return r.holes.every((h, i) => h.start <= h.end && (i === 0 || (r.holes[i - 1]?.end ?? -1) <= h.start))
  }), { numRuns: 1000 })
})

t.test('combineGaps: without a group every gap stands alone; a member with no gap means no hole', async t => {
  const gaps = [gapOf({ member: 'a', start: 0, len: 10, open: false, symbols: ['X'] }, 0)]
  t.same(combineGaps(gaps, null, 100), { alone: gaps, holes: [], covered: [] })
  const r = combineGaps(gaps, { group: 'g', members: ['a', 'b'] }, 100)
  t.same(r.holes, [])
  t.equal(r.covered.length, 1)
  const both = [...gaps, gapOf({ member: 'b', start: 5, len: 10, open: false, symbols: ['X', 'Y'] }, 1)]
  t.same(combineGaps(both, { group: 'g', members: ['a', 'b'] }, 100).holes, [{ start: 5, end: 10, symbols: ['X'] }])
})
