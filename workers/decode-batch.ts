// Piscina task: decode + transform + candle pre-aggregation of one batch. Thin on
// purpose (tap cannot see coverage inside worker threads): the work is
// daemon/core/process-batch.ts, tested on the main thread.

import { workerData } from 'node:worker_threads'
import { singleObjectFingerprint, TradeDecoder } from '../daemon/core/avro-codec.js'
import { processBatch, writerSchemasFor, type DecodedBatch, type PackedValues } from '../daemon/core/process-batch.js'
import { loadTradeType } from '../daemon/core/trade-schema.js'

export interface DecodeWorkerData { schemaPath: string, schemaIds: number[] }
export interface DecodeTask { packed: PackedValues }

const data = workerData as DecodeWorkerData
const type = loadTradeType(data.schemaPath)
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), data.schemaIds))

export default function decodeBatch (task: DecodeTask): DecodedBatch {
  return processBatch(decoder, task.packed, Date.now())
}
