// How the process role gets a consumed batch decoded when the worker pool fails it,
// pure (the pool is passed in). A decode task is not expected to throw: per-record
// problems come back as poison (./process-batch.ts). When one does throw anyway (a
// worker that died, a record that makes the worker itself fail), the task is tried
// once more, then the batch is halved down to single records: a record that still
// fails alone is poison `internal`, and every other record of the batch goes on.
// Retrying the whole batch forever would stall its partitions, on every restart.

import { encodeRows, RowView } from './cql-rows.js'
import { foldPartials, type EncodedBatch } from './process-batch.js'

export interface DecodeIsolatingHooks {
  /** True once the daemon is stopping: failures are then thrown (the batch is read again after restart). */
  stopping: () => boolean
  /** The whole batch failed once; it is tried again after `pauseMs`. */
  onRetry: (err: unknown) => void
  /** The whole batch failed twice; it is split. */
  onSplit: (err: unknown) => void
  pause: (ms: number) => Promise<void>
}

export async function decodeIsolating<M> (messages: readonly M[], run: (part: readonly M[]) => Promise<EncodedBatch>, hooks: DecodeIsolatingHooks): Promise<EncodedBatch> {
  try {
    return await run(messages)
  } catch (err) {
    if (hooks.stopping()) throw err
    hooks.onRetry(err)
    await hooks.pause(50)
  }
  try {
    return await run(messages)
  } catch (err) {
    if (hooks.stopping()) throw err
    if (messages.length === 1) return internal(0, err)
    hooks.onSplit(err)
  }
  return await split(messages, 0, run, hooks)
}

async function split<M> (messages: readonly M[], offset: number, run: (part: readonly M[]) => Promise<EncodedBatch>, hooks: DecodeIsolatingHooks): Promise<EncodedBatch> {
  const half = Math.ceil(messages.length / 2)
  const parts = await Promise.all([0, half].map(async from => {
    const part = messages.slice(from, from === 0 ? half : messages.length)
    try {
      return shiftIndexes(await run(part), offset + from)
    } catch (err) {
      if (hooks.stopping()) throw err
      return part.length === 1 ? internal(offset + from, err) : await split(part, offset + from, run, hooks)
    }
  }))
  const [a, b] = parts as [EncodedBatch, EncodedBatch]
  // Read back and joined (a rare path: a batch the pool failed twice), then folded
  // afresh over the joined rows: a trade in both halves is one fold.
  const rows = [a, b].flatMap(d => { const v = new RowView(d.rows); return Array.from({ length: v.count }, (_, i) => v.row(i)) })
  return { rows: encodeRows(rows), rowRecord: Int32Array.from([...a.rowRecord, ...b.rowRecord]), poison: [...a.poison, ...b.poison], partials: foldPartials(rows), decodeNs: a.decodeNs + b.decodeNs }
}

function internal (index: number, err: unknown): EncodedBatch {
  const message = err instanceof Error ? err.message : String(err)
  return { rows: encodeRows([]), rowRecord: new Int32Array(0), poison: [{ index, reason: 'internal', detail: `the decode task failed on this record alone: ${message.slice(0, 200)}` }], partials: [], decodeNs: 0 }
}

/** Record indexes of a decoded part of a batch, made relative to the whole batch. */
function shiftIndexes (d: EncodedBatch, offset: number): EncodedBatch {
  if (offset === 0) return d
  return { ...d, rowRecord: d.rowRecord.map(i => i + offset), poison: d.poison.map(p => ({ ...p, index: p.index + offset })) }
}
