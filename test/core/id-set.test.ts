// The compact trade-id set: membership, growth, agreement with a plain Set, and one
// key for an id whether it comes as its string (rebuild) or as its bytes (hot path).
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { TradeIdSet, tradeIdString } from '../../daemon/core/id-set.js'

/** The 16 bytes of a UUID string (as the worker packs them). */
function bytesOf (uuid: string): Uint8Array {
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'))
}

t.test('add/has agree with a Set of strings through many growths', async t => {
  const ids = new TradeIdSet(4)
  const ref = new Set<string>()
  const list: string[] = []
  let wrong = 0
  for (let i = 0; i < 20_000; i++) {
    const id = i % 7 === 0 && i > 0 ? list[i % list.length] as string : randomUUID()
    if (ids.add(id) === ref.has(id)) wrong++
    if (!ref.has(id)) list.push(id)
    ref.add(id)
  }
  t.equal(wrong, 0, 'add() says "new" exactly when the id was new')
  t.equal(ids.size, ref.size)
  for (const id of ref) if (!ids.has(id)) t.fail(`lost ${id}`)
  t.equal(ids.has(randomUUID()), false)
  t.ok(ids.bytes <= ref.size * 12 * 4, 'about 12–48 bytes an id')
})

t.test('addBytes/hasBytes agree with a Set through growths, at any offset of a packed array', async t => {
  const n = 10_000
  const strings = Array.from({ length: n }, () => randomUUID())
  const packed = new Uint8Array(n * 16 + 3)
  strings.forEach((s, i) => { packed.set(bytesOf(s), 3 + i * 16) })
  const ids = new TradeIdSet(2)
  let wrong = 0
  for (let i = 0; i < n; i++) if (!ids.addBytes(packed, 3 + i * 16)) wrong++
  for (let i = 0; i < n; i += 3) if (ids.addBytes(packed, 3 + i * 16)) wrong++
  t.equal(wrong, 0, 'new exactly once')
  t.equal(ids.size, n)
  for (let i = 0; i < n; i++) if (!ids.hasBytes(packed, 3 + i * 16)) wrong++
  t.equal(wrong, 0, 'every id found by its bytes')
  t.equal(ids.hasBytes(bytesOf(randomUUID()), 0), false)
})

t.test('the string and the bytes of one id are one key, in either order and either case', async t => {
  const ids = new TradeIdSet()
  const a = randomUUID()
  const b = randomUUID()
  t.equal(ids.add(a), true)
  t.equal(ids.hasBytes(bytesOf(a), 0), true, 'added as a string, found by its bytes')
  t.equal(ids.addBytes(bytesOf(a), 0), false, 'and not new by its bytes')
  t.equal(ids.addBytes(bytesOf(b), 0), true)
  t.equal(ids.has(b), true, 'added as bytes, found by its string')
  t.equal(ids.add(b.toUpperCase()), false, 'upper-case hex is the same id')
  t.equal(ids.size, 2)
})

t.test('tradeIdString is the lowercase dashed form, back and forth', async t => {
  let wrong = 0
  for (let i = 0; i < 1000; i++) {
    const id = randomUUID()
    if (tradeIdString(bytesOf(id), 0) !== id) wrong++
  }
  t.equal(wrong, 0, 'bytes → string gives the id back, for 1,000 random ids')
  const packed = new Uint8Array(40)
  packed.set(bytesOf('0123abcd-ef01-5678-9abc-def012345678'), 7)
  t.equal(tradeIdString(packed, 7), '0123abcd-ef01-5678-9abc-def012345678')
  t.equal(tradeIdString(new Uint8Array(16), 0), '00000000-0000-0000-0000-000000000000')
  t.equal(tradeIdString(new Uint8Array(16).fill(255), 0), 'ffffffff-ffff-ffff-ffff-ffffffffffff')
})

t.test('the all-zero id is a member like any other; a non-UUID or a short array is refused', async t => {
  const ids = new TradeIdSet()
  const zero = '00000000-0000-0000-0000-000000000000'
  t.equal(ids.has(zero), false)
  t.equal(ids.hasBytes(new Uint8Array(16), 0), false)
  t.equal(ids.add(zero), true)
  t.equal(ids.has(zero), true)
  t.equal(ids.addBytes(new Uint8Array(16), 0), false, 'the zero id by its bytes is the same key')
  t.equal(ids.add(zero), false)
  t.throws(() => ids.add('not-a-uuid'), /not a UUID/)
  t.throws(() => ids.add('0123abcd0ef01-5678-9abc-def012345678'), /not a UUID/, 'dashes where they belong')
  t.throws(() => ids.has('g123abcd-ef01-5678-9abc-def012345678'), /not a UUID/)
  t.throws(() => ids.addBytes(new Uint8Array(20), 8), RangeError, 'no 16 bytes at the offset')
  t.throws(() => ids.hasBytes(new Uint8Array(20), -1), RangeError)
})
