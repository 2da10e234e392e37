// SharedReads with a fake reader and a fake clock, on the main thread, no timing:
// concurrent requests for one view share one read, a finished read is reused within
// its TTL and not after, distinct reads are bounded (503 + Retry-After beyond), and a
// failed read is shared by those waiting on it but never kept.
import t from 'tap'
import { ApiError } from '../../daemon/console/params.js'
import { SharedReads } from '../../daemon/console/shared-read.js'

interface Deferred<T> { promise: Promise<T>, resolve: (v: T) => void, reject: (e: Error) => void }
function deferred<T> (): Deferred<T> {
  const d: Partial<Deferred<T>> = {}
  d.promise = new Promise<T>((resolve, reject) => { d.resolve = resolve; d.reject = reject })
  return d as Deferred<T>
}

/** A reader whose reads finish when the test says, counting the reads it was asked for. */
function fakeReader (): { read: (key: string) => () => Promise<string>, calls: string[], finish: (key: string, value?: string) => void, fail: (key: string, err: Error) => void } {
  const open = new Map<string, Deferred<string>>()
  const calls: string[] = []
  return {
    calls,
    read: key => async () => {
      calls.push(key)
      const d = deferred<string>()
      open.set(key, d)
      return await d.promise
    },
    finish: (key, value = `records of ${key}`) => { open.get(key)?.resolve(value) },
    fail: (key, err) => { open.get(key)?.reject(err) }
  }
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

t.test('concurrent requests for one view share one read; the result is reused within the TTL, read again after', async t => {
  let now = 1_000
  const shared = new SharedReads<string>({ ttlMs: 1_000, maxPending: 2, what: 'the topic view', now: () => now })
  const fake = fakeReader()
  const ten = Array.from({ length: 10 }, () => shared.get('trades:50', fake.read('trades:50')))
  await tick()
  t.same(fake.calls, ['trades:50'], 'one read for ten requests')
  t.equal(shared.pending, 1)
  now = 1_300
  fake.finish('trades:50')
  const results = await Promise.all(ten)
  t.ok(results.every(r => r.value === 'records of trades:50' && r.readAt === 1_300), 'all get its result and its time')
  t.equal(shared.pending, 0)

  now = 2_299
  const reused = await shared.get('trades:50', fake.read('trades:50'))
  t.equal(reused.readAt, 1_300, 'within the TTL: the same result')
  t.equal(fake.calls.length, 1, 'without reading')

  now = 2_300
  const again = shared.get('trades:50', fake.read('trades:50'))
  await tick()
  t.equal(fake.calls.length, 2, 'at the TTL: read again')
  now = 2_400
  fake.finish('trades:50', 'newer')
  t.same(await again, { value: 'newer', readAt: 2_400 })
  t.same(shared.stats, { reads: 2, joined: 9, reused: 1, refused: 0 })
})

t.test('distinct views read separately, at most maxPending at once; beyond, a 503 that says when to retry', async t => {
  let now = 0
  const shared = new SharedReads<string>({ ttlMs: 1_000, maxPending: 2, what: 'the topic view', now: () => now })
  const fake = fakeReader()
  const a = shared.get('a', fake.read('a'))
  const b = shared.get('b', fake.read('b'))
  await tick()
  t.same(fake.calls, ['a', 'b'])
  const refused = shared.get('c', fake.read('c'))
  await t.rejects(refused, { status: 503, headers: { 'retry-after': '2' }, message: /^the topic view is busy: 2 other reads are under way \(at most 2 at a time\); retry in 2 s/ },
    'two under way (no read finished yet: a second each, guessed) make 2 s')
  await refused.catch((err: unknown) => { t.ok(err instanceof ApiError) })
  t.same(await Promise.all([shared.get('a', fake.read('a')), shared.get('b', fake.read('b'))].map(async p => await Promise.race([p, Promise.resolve('waiting')]))), ['waiting', 'waiting'],
    'a view under way is still joined at the bound')
  t.equal(fake.calls.length, 2, 'the refused view was never read')
  now = 3_000
  fake.finish('a')
  await a
  t.equal(shared.pending, 1)
  const c = shared.get('c', fake.read('c'))
  await tick()
  t.same(fake.calls, ['a', 'b', 'c'], 'a slot freed: the next view is read')
  t.equal(shared.retryAfterSeconds(), 6, 'at the last read\'s pace (3 s) for the two under way')
  fake.finish('b')
  fake.finish('c')
  await Promise.all([b, c])
  t.equal(shared.stats.refused, 1)
})

t.test('a failed read fails every request waiting on it and is not kept; a read that throws at once holds no slot', async t => {
  const shared = new SharedReads<string>({ ttlMs: 60_000, maxPending: 1, what: 'the topic view', now: () => 0 })
  const fake = fakeReader()
  const first = shared.get('a', fake.read('a'))
  const joined = shared.get('a', fake.read('a'))
  await tick()
  fake.fail('a', new Error('Kafka did not answer'))
  await t.rejects(first, /Kafka did not answer/)
  await t.rejects(joined, /Kafka did not answer/)
  t.equal(shared.pending, 0)
  const retried = shared.get('a', fake.read('a'))
  await tick()
  t.equal(fake.calls.length, 2, 'the next request reads again')
  fake.finish('a')
  t.equal((await retried).value, 'records of a')

  await t.rejects(shared.get('b', () => { throw new Error('no reader') }), /no reader/)
  t.equal(shared.pending, 0, 'the slot is free again')
  const other = shared.get('c', async () => 'ok')
  t.equal((await other).value, 'ok', 'so the next view is not refused')
})

t.test('options are checked', async t => {
  t.throws(() => new SharedReads({ ttlMs: 1_000, maxPending: 0, what: 'x' }), RangeError)
  t.throws(() => new SharedReads({ ttlMs: -1, maxPending: 1, what: 'x' }), RangeError)
})
