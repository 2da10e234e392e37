// config.redundancy: a group of 2–7 named members; an ingest daemon of the group says
// which member it is; bad names and members are errors naming the key.
import t from 'tap'
import { validateConfig } from '../../daemon/config/load.js'

const base = { finnhub: { symbols: ['AAPL'] } }

t.test('absent by default; a full group is accepted', async t => {
  t.equal(validateConfig(base).redundancy, null)
  const c = validateConfig({ ...base, redundancy: { group: 'us-equities', members: ['a', 'b'], member: 'b' } })
  t.same(c.redundancy, { group: 'us-equities', members: ['a', 'b'], member: 'b' })
  t.same(validateConfig({ ...base, roles: ['process'], redundancy: { group: 'g', members: ['a', 'b'] } }).redundancy, { group: 'g', members: ['a', 'b'], member: null })
})

t.test('bad groups are refused with the key named', async t => {
  const bad: Array<[unknown, RegExp]> = [
    [{ group: 'g', members: ['a', 'b'] }, /redundancy\.member.*which member/s],
    [{ group: 'g', members: ['a', 'b'], member: 'c' }, /redundancy\.member.*not one of/s],
    [{ group: 'g', members: ['a', 'a'], member: 'a' }, /redundancy\.members.*twice/s],
    [{ group: 'g', members: ['a'], member: 'a' }, /redundancy\.members/],
    [{ group: 'G!', members: ['a', 'b'], member: 'a' }, /redundancy\.group/],
    [{ group: 'g', members: ['a', 'b/c'], member: 'a' }, /redundancy\.members/],
    [{ group: 'g', members: ['a', 'b', 'c', 'd', 'e', 'f', 'h', 'i'], member: 'a' }, /redundancy\.members/],
    [{ group: 'g', members: ['a', 'b'], member: 'a', peer: 'b' }, /peer/]
  ]
  for (const [redundancy, message] of bad) {
    t.throws(() => validateConfig({ ...base, redundancy }), { message }, JSON.stringify(redundancy))
  }
})
