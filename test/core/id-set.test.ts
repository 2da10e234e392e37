// The compact trade-id set: membership, growth, and agreement with a plain Set.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { TradeIdSet } from '../../daemon/core/id-set.js'

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

t.test('the all-zero id is a member like any other; a non-UUID is refused', async t => {
  const ids = new TradeIdSet()
  const zero = '00000000-0000-0000-0000-000000000000'
  t.equal(ids.has(zero), false)
  t.equal(ids.add(zero), true)
  t.equal(ids.has(zero), true)
  t.equal(ids.add(zero), false)
  t.throws(() => ids.add('not-a-uuid'), /not a UUID/)
})
