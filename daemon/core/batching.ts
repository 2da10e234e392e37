// How rows become Cassandra batches, pure: grouped by partition key (symbol, day),
// so an unlogged batch never spans partitions (one mutation on one replica set,
// no coordinator fan-out), and cut so each batch stays under a byte budget below
// Cassandra's batch_size_warn_threshold (5 KiB by default). Row sizes are
// estimated from the values' encoded sizes plus a per-cell overhead.

import type { TradeRow } from './transform.js'

/** Estimated serialized size of one trades row in a batch, bytes. */
export function estimateRowBytes (row: TradeRow): number {
  let conditions = 0
  if (row.conditions !== null) for (const c of row.conditions) conditions += c.length + 4
  // clustering (trade_ts 8 + trade_id 16), price, volume, ingest_ts, process_ts (8 each),
  // the list, and ~6 bytes of cell header per column.
  return 24 + 32 + conditions + 9 * 6
}

/** Rows grouped by (symbol, day), each group cut into batches of at most maxBytes (at least one row each). */
export function partitionBatches (rows: readonly TradeRow[], maxBytes: number): TradeRow[][] {
  const groups = new Map<string, TradeRow[]>()
  for (const row of rows) {
    const key = `${row.symbol}\u0000${row.day}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [row])
    else group.push(row)
  }
  const batches: TradeRow[][] = []
  for (const group of groups.values()) {
    let batch: TradeRow[] = []
    let bytes = 0
    for (const row of group) {
      const size = estimateRowBytes(row)
      if (batch.length > 0 && bytes + size > maxBytes) {
        batches.push(batch)
        batch = []
        bytes = 0
      }
      batch.push(row)
      bytes += size
    }
    batches.push(batch)
  }
  return batches
}
