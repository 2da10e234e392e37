// Piscina task: decode + transform + candle pre-aggregation + CQL encoding of one
// batch. Thin on purpose (tap cannot see coverage inside worker threads): the work
// is daemon/core/process-batch.ts and daemon/core/cql-rows.ts, tested on the main
// thread. The result's buffers are moved back, not cloned (Piscina.move).

import { workerData } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { singleObjectFingerprint, TradeDecoder } from '../daemon/core/avro-codec.js'
import { encodeBatch, processBatch, transferablesOf, writerSchemasFor, type PackedValues } from '../daemon/core/process-batch.js'
import { loadTradeType } from '../daemon/paths.js'

export interface DecodeWorkerData { schemaPath: string, schemaIds: number[] }
export interface DecodeTask { packed: PackedValues }

const data = workerData as DecodeWorkerData
const type = loadTradeType(data.schemaPath)
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), data.schemaIds))

export default function decodeBatch (task: DecodeTask): unknown {
  const started = process.hrtime.bigint()
  const batch = encodeBatch(processBatch(decoder, task.packed, Date.now()), started)
  // A Transferable in Piscina's sense: the value, and the buffers to move with it.
  return Piscina.move({ [Piscina.transferableSymbol]: transferablesOf(batch), [Piscina.valueSymbol]: batch } as unknown as ArrayBuffer)
}
