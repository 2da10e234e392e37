// The bench's compact id table (tools/verify/id-table.ts) against a Map doing the same:
// adds, tags, marks and the unmarked count agree through growth and collisions,
// and ids that share their hash bytes still stay apart.
import t from 'tap'
import fc from 'fast-check'
import { TradeIdTable } from '../../tools/verify/id-table.js'
import { uuidString } from '../../daemon/core/cql-rows.js'

const uuid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(b => uuidString(b, 0))
/** Ids that differ only after their first four bytes: the same home slot. */
const colliding = fc.uint8Array({ minLength: 12, maxLength: 12 }).map(b => uuidString(Uint8Array.of(1, 2, 3, 4, ...b), 0))

type Op = { kind: 'add', id: string, tag: number } | { kind: 'mark', id: string } | { kind: 'tag', id: string }

t.test('behaves as a Map of id → tag with a mark per id', async t => {
  const id = fc.oneof(uuid, colliding)
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), id, tag: fc.nat(1000) }),
    fc.record({ kind: fc.constant('mark' as const), id }),
    fc.record({ kind: fc.constant('tag' as const), id })
  )
  fc.assert(fc.property(fc.array(op, { maxLength: 600 }), fc.integer({ min: 1, max: 64 }), (ops, capacity) => {
    const table = new TradeIdTable(capacity)
    const model = new Map<string, { tag: number, marked: boolean }>()
    for (const o of ops) {
      const m = model.get(o.id)
      if (o.kind === 'add') {
        if (table.add(o.id, o.tag) !== (m === undefined)) return false
        if (m === undefined) model.set(o.id, { tag: o.tag, marked: false })
      } else if (o.kind === 'tag') {
        if (table.tag(o.id) !== (m?.tag ?? -1)) return false
      } else if (m === undefined) {
        let threw = false
        try { table.mark(o.id) } catch { threw = true }
        if (!threw) return false
      } else {
        if (table.mark(o.id) !== !m.marked) return false
        m.marked = true
      }
      // Upper and lower case name the same id.
      if (table.tag(o.id.toUpperCase()) !== (model.get(o.id)?.tag ?? -1)) return false
    }
    return table.size === model.size && table.unmarked() === [...model.values()].filter(v => !v.marked).length
  }), { numRuns: 300 })
  t.pass('300 random runs agree with the Map')
})

t.test('refuses what is not an id or a tag', async t => {
  const table = new TradeIdTable()
  t.throws(() => table.add('not-a-uuid', 0), /not a UUID/)
  t.throws(() => table.add('00000000-0000-5000-8000-00000000000g', 0), /not a UUID/)
  t.throws(() => table.add('00000000-0000-5000-8000-000000000000', -1), /tag is an integer/)
  t.throws(() => table.add('00000000-0000-5000-8000-000000000000', 1.5), /tag is an integer/)
  t.equal(table.size, 0, 'nothing added')
})

t.test('holds many ids', async t => {
  const table = new TradeIdTable(4)
  const ids: string[] = []
  const b = new Uint8Array(16)
  for (let i = 0; i < 50_000; i++) {
    new DataView(b.buffer).setUint32(0, Math.imul(i, 2654435761) >>> 0)
    new DataView(b.buffer).setUint32(12, i)
    ids.push(uuidString(b, 0))
  }
  for (const [i, id] of ids.entries()) table.add(id, i % 40)
  t.equal(table.size, 50_000)
  t.ok(ids.every((id, i) => table.tag(id) === i % 40), 'every tag found after growing from 4')
  for (const id of ids.slice(0, 10_000)) table.mark(id)
  t.equal(table.unmarked(), 40_000)
})
