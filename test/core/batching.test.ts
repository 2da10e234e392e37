// Cassandra batches: one partition each, under the byte budget.
import t from 'tap'
import { estimateRowBytes, partitionBatches } from '../../daemon/core/batching.js'
import type { TradeRow } from '../../daemon/core/transform.js'

const row = (symbol: string, day: string, i: number, conditions: string[] | null = ['1']): TradeRow => ({
  symbol, day, trade_ts: 1_700_000_000_000 + i, trade_id: `id-${i}`, price: 1, volume: 1, conditions, ingest_ts: 0, process_ts: 0
})

t.test('rows are grouped by (symbol, day) and cut under the budget', async t => {
  const rows = [
    ...Array.from({ length: 100 }, (_, i) => row('AAPL', '2024-01-01', i)),
    ...Array.from({ length: 3 }, (_, i) => row('AAPL', '2024-01-02', i)),
    ...Array.from({ length: 5 }, (_, i) => row('MSFT', '2024-01-01', i, null))
  ]
  const budget = 1000
  const batches = partitionBatches(rows, budget)
  for (const b of batches) {
    t.equal(new Set(b.map(r => `${r.symbol}/${r.day}`)).size, 1, 'one partition per batch')
    t.ok(b.reduce((n, r) => n + estimateRowBytes(r), 0) <= budget, 'within the budget')
  }
  t.equal(batches.flat().length, rows.length, 'every row once')
  t.same(batches.flat().filter(r => r.symbol === 'AAPL' && r.day === '2024-01-01').map(r => r.trade_ts), rows.slice(0, 100).map(r => r.trade_ts), 'order kept')
  t.ok(estimateRowBytes(row('A', 'd', 0, ['x'.repeat(100)])) > estimateRowBytes(row('A', 'd', 0, null)), 'conditions count')
  t.same(partitionBatches([row('A', 'd', 0)], 1).map(b => b.length), [1], 'a row larger than the budget still goes, alone')
  t.same(partitionBatches([], 1000), [])
})
