// The size of a trades row in a Cassandra batch. Batches (core/write-queue.ts) hold
// one partition key (symbol, day) each, so an unlogged batch never spans
// partitions (one mutation on one replica set, no coordinator fan-out), and stay
// under a byte budget below Cassandra's batch_size_warn_threshold (5 KiB by
// default). Row sizes are estimated from the values' encoded sizes plus a per-cell
// overhead.

import type { TradeRow } from './transform.js'

/** Estimated serialized size of one trades row in a batch, bytes. */
export function estimateRowBytes (row: TradeRow): number {
  let conditions = 0
  if (row.conditions !== null) for (const c of row.conditions) conditions += c.length + 4
  // clustering (trade_ts 8 + trade_id 16), price, volume, ingest_ts, process_ts (8 each),
  // the list, and ~6 bytes of cell header per column.
  return 24 + 32 + conditions + 9 * 6
}
