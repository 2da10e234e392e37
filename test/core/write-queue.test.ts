// The trade writer's queue: requests span the partitions of one group (replica), stay
// under the byte budget, serve the oldest group and its oldest partition first, and
// tickets complete when all their rows are in.
import t from 'tap'
import fc from 'fast-check'
import { PartitionQueue, type Request } from '../../daemon/core/write-queue.js'
import { holds, runs } from '../fixtures/fuzz.js'

interface Row { group: string, partition: string, size: number, n: number }
const row = (group: string, partition: string, n: number, size = 100): Row => ({ group, partition, size, n })
const queue = (budget: number, grouped = true): PartitionQueue<Row> => new PartitionQueue<Row>({
  partition: r => r.partition,
  ...(grouped ? { group: (r: Row) => r.group } : {}),
  size: r => r.size
}, budget)

function drain (q: PartitionQueue<Row>): Array<Request<Row>> {
  const out: Array<Request<Row>> = []
  for (let r = q.take(); r !== null; r = q.take()) out.push(r)
  return out
}

t.test('a deep partition fills a request alone; shallow ones share one; one group per request, under the budget', async t => {
  const q = queue(1000)
  q.push([
    ...Array.from({ length: 25 }, (_, i) => row('h1', 'AAPL', i)),
    row('h1', 'MSFT', 100), row('h1', 'IBM', 101),
    row('h2', 'TSLA', 200), row('h2', 'NVDA', 201)
  ], () => {}, () => {})
  t.equal(q.pending, 29)
  const requests = drain(q)
  t.equal(q.pending, 0)
  t.same(requests.map(r => r.rows.map(x => x.n)), [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], // h1: AAPL's oldest rows fill the budget
    [200, 201], // then h2, the group that waited longest after h1
    [100, 101, 10, 11, 12, 13, 14, 15, 16, 17], // AAPL's rest waited behind MSFT and IBM: they share a request
    [18, 19, 20, 21, 22, 23, 24]
  ])
  for (const r of requests) {
    t.equal(new Set(r.rows.map(x => x.group)).size, 1, 'one group per request')
    t.ok(r.rows.reduce((n, x) => n + x.size, 0) <= 1000, 'within the budget')
  }
  const one = queue(1)
  one.push([row('h', 'A', 0)], () => {}, () => {})
  t.same(drain(one).map(r => r.rows.length), [1], 'a row larger than the budget still goes, alone')
  t.equal(queue(1000).take(), null, 'nothing waits, no request')
  const flat = queue(100_000, false)
  flat.push([row('h1', 'A', 1), row('h2', 'B', 2)], () => {}, () => {})
  t.same(drain(flat).map(r => r.rows.length), [2], 'without groups, one group')
})

t.test('rows of later pushes join the ones waiting for their partition and group', async t => {
  const q = queue(100_000)
  q.push([row('h', 'AAPL', 1), row('h', 'MSFT', 2)], () => {}, () => {})
  q.push([row('h', 'AAPL', 3), row('h', 'AAPL', 4)], () => {}, () => {})
  t.same(drain(q).map(r => r.rows.map(x => x.n)), [[1, 3, 4, 2]], 'one request, partition by partition')
})

t.test('property: every row once, in order within its partition, each request one group under the budget', async t => {
  const rowArb = fc.record({ group: fc.constantFrom('a', 'b', 'c'), partition: fc.constantFrom('p', 'q', 'r', 's'), size: fc.integer({ min: 1, max: 400 }) })
  holds(t, fc.property(fc.array(fc.array(rowArb, { maxLength: 30 }), { maxLength: 8 }), fc.integer({ min: 1, max: 2000 }), fc.array(fc.nat(3), { maxLength: 20 }), (pushes, budget, takesBetween) => {
    const q = queue(budget)
    let n = 0
    const taken: Array<Request<Row>> = []
    pushes.forEach((rows, k) => {
      q.push(rows.map(r => ({ ...r, partition: `${r.group}/${r.partition}`, n: n++ })), () => {}, () => {})
      for (let i = 0; i < (takesBetween[k] ?? 0); i++) { const r = q.take(); if (r !== null) taken.push(r) }
    })
    taken.push(...drain(q))
    const all = taken.flatMap(r => r.rows)
    if (all.length !== n || new Set(all.map(r => r.n)).size !== n) throw new Error('not every row exactly once')
    for (const r of taken) {
      if (new Set(r.rows.map(x => x.group)).size !== 1) throw new Error('a request spans groups')
      if (r.rows.length > 1 && r.rows.reduce((s, x) => s + x.size, 0) > budget) throw new Error('over the budget')
    }
    const last = new Map<string, number>()
    for (const x of all) {
      if ((last.get(x.partition) ?? -1) > x.n) throw new Error(`partition ${x.partition} out of order`)
      last.set(x.partition, x.n)
    }
    if (q.pending !== 0) throw new Error('rows left')
  }), { numRuns: runs(300), seed: 1717 })
})

t.test('a ticket completes once all its rows are in completed requests; failures fail each ticket once', async t => {
  const q = queue(100_000)
  const events: string[] = []
  q.push([row('A', 'a', 1), row('B', 'b', 2)], () => events.push('first done'), err => events.push(`first failed: ${String(err)}`))
  q.push([row('A', 'a', 3)], () => events.push('second done'), err => events.push(`second failed: ${String(err)}`))
  q.push([], () => events.push('empty done'), () => events.push('empty failed'))
  t.same(events, ['empty done'], 'an empty push completes at once')
  const a = q.take()
  const b = q.take()
  if (a === null || b === null) throw new Error('expected two requests')
  q.complete(a)
  t.same(events, ['empty done', 'second done'], 'the second push had all its rows in A')
  q.complete(b)
  t.same(events.slice(2), ['first done'])

  const f = queue(100_000)
  const failed: string[] = []
  f.push([row('A', 'a', 1), row('B', 'b', 2)], () => failed.push('x done'), () => failed.push('x failed'))
  f.push([row('C', 'c', 3)], () => failed.push('y done'), () => failed.push('y failed'))
  const first = f.take()
  if (first === null) throw new Error('expected a request')
  f.fail(first, new Error('closed'))
  f.fail(first, new Error('closed'))
  t.same(failed, ['x failed'], 'failed once')
  f.failAll(new Error('closed'))
  t.same(failed, ['x failed', 'y failed'], 'the rows still waiting fail their tickets; x is not failed twice')
  t.equal(f.pending, 0)
})

t.test('past the multi-partition bound a request keeps to one partition (Cassandra\'s batch_size_fail_threshold spares only those)', async t => {
  const q = new PartitionQueue<Row>({ partition: r => r.partition, size: r => r.size }, 1_000_000, 1000)
  q.push([...Array.from({ length: 30 }, (_, i) => row('h', 'A', i)), row('h', 'B', 100), row('h', 'C', 101)], () => {}, () => {})
  const requests = drain(q)
  t.same(requests.map(r => r.rows.length), [30, 2], 'A\'s 3,000 bytes alone (one partition may be big), then B and C together under the bound')
  const small = new PartitionQueue<Row>({ partition: r => r.partition, size: r => r.size }, 1_000_000, 1000)
  small.push([row('h', 'A', 1), row('h', 'B', 2), row('h', 'C', 3)], () => {}, () => {})
  t.same(drain(small).map(r => r.rows.length), [3], 'small partitions share a request')
})
