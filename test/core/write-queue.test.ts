// The trade writer's queue: one partition per request, under the byte budget,
// oldest partition first, and tickets that complete when all their rows are in.
import t from 'tap'
import { estimateRowBytes } from '../../daemon/core/batching.js'
import { PartitionQueue, type Request } from '../../daemon/core/write-queue.js'
import type { TradeRow } from '../../daemon/core/transform.js'

const row = (symbol: string, day: string, i: number, conditions: string[] | null = ['1']): TradeRow => ({
  symbol, day, trade_ts: 1_700_000_000_000 + i, trade_id: `id-${i}`, price: 1, volume: 1, conditions, ingest_ts: 0, process_ts: 0
})
const queue = (budget: number): PartitionQueue<TradeRow> => new PartitionQueue<TradeRow>(r => `${r.symbol}/${r.day}`, estimateRowBytes, budget)

function drain (q: PartitionQueue<TradeRow>): Array<Request<TradeRow>> {
  const out: Array<Request<TradeRow>> = []
  for (let r = q.take(); r !== null; r = q.take()) out.push(r)
  return out
}

t.test('requests hold one partition each, under the budget, every row once and in order', async t => {
  const rows = [
    ...Array.from({ length: 100 }, (_, i) => row('AAPL', '2024-01-01', i)),
    ...Array.from({ length: 3 }, (_, i) => row('AAPL', '2024-01-02', i)),
    ...Array.from({ length: 5 }, (_, i) => row('MSFT', '2024-01-01', i, null))
  ]
  const budget = 1000
  const q = queue(budget)
  q.push(rows, () => {}, () => {})
  t.equal(q.pending, rows.length)
  const requests = drain(q)
  t.equal(q.pending, 0)
  for (const r of requests) {
    t.equal(new Set(r.rows.map(x => `${x.symbol}/${x.day}`)).size, 1, 'one partition per request')
    t.ok(r.rows.reduce((n, x) => n + estimateRowBytes(x), 0) <= budget, 'within the budget')
  }
  const all = requests.flatMap(r => r.rows)
  t.equal(all.length, rows.length, 'every row once')
  t.same(all.filter(x => x.symbol === 'AAPL' && x.day === '2024-01-01').map(x => x.trade_ts), rows.slice(0, 100).map(x => x.trade_ts), 'order kept')
  t.same(requests.slice(0, 3).map(r => `${r.rows[0]?.symbol}/${r.rows[0]?.day}`), ['AAPL/2024-01-01', 'AAPL/2024-01-02', 'MSFT/2024-01-01'],
    'oldest partition first; a partition with rows left waits behind the others')
  t.ok(estimateRowBytes(row('A', 'd', 0, ['x'.repeat(100)])) > estimateRowBytes(row('A', 'd', 0, null)), 'conditions count')
  const one = queue(1)
  one.push([row('A', 'd', 0)], () => {}, () => {})
  t.same(drain(one).map(r => r.rows.length), [1], 'a row larger than the budget still goes, alone')
  t.equal(queue(1000).take(), null, 'nothing waits, no request')
})

t.test('rows of later pushes join the ones waiting for their partition', async t => {
  const q = queue(100_000)
  q.push([row('AAPL', 'd', 1), row('MSFT', 'd', 2)], () => {}, () => {})
  q.push([row('AAPL', 'd', 3), row('AAPL', 'd', 4)], () => {}, () => {})
  const requests = drain(q)
  t.same(requests.map(r => r.rows.map(x => x.trade_ts - 1_700_000_000_000)), [[1, 3, 4], [2]], 'one request per partition, whatever the push')
})

t.test('a ticket completes once all its rows are in completed requests; failures fail each ticket once', async t => {
  const q = queue(100_000)
  const events: string[] = []
  q.push([row('A', 'd', 1), row('B', 'd', 2)], () => events.push('first done'), err => events.push(`first failed: ${String(err)}`))
  q.push([row('A', 'd', 3)], () => events.push('second done'), err => events.push(`second failed: ${String(err)}`))
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
  f.push([row('A', 'd', 1), row('B', 'd', 2)], () => failed.push('x done'), () => failed.push('x failed'))
  f.push([row('C', 'd', 3)], () => failed.push('y done'), () => failed.push('y failed'))
  const first = f.take()
  if (first === null) throw new Error('expected a request')
  f.fail(first, new Error('closed'))
  f.fail(first, new Error('closed'))
  t.same(failed, ['x failed'], 'failed once')
  f.failAll(new Error('closed'))
  t.same(failed, ['x failed', 'y failed'], 'the rows still waiting fail their tickets; x is not failed twice')
  t.equal(f.pending, 0)
  t.equal(f.take(), null)
})
