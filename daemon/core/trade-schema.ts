// Turns the text of the Avro `Trade` schema (schemas/trade.avsc, or SCHEMA_PATH) into
// an avsc Type, checking it is a Trade record; reading the file is daemon/paths.ts's. Timestamps stay plain epoch-millisecond numbers: avsc applies
// `timestamp-millis` only with a logical-type hook, and numbers are what the
// transform, the trade id and Cassandra's driver want anyway (no Date per trade).

import avro from 'avsc'
import { FinnhubdError } from './errors.js'

/** A trade as it travels in Kafka: Finnhub's own field names plus our envelope. */
export interface TradeRecord {
  s: string
  p: number
  t: number
  v: number
  c: string[] | null
  ingest_ts: number
  ordinal: number
}

const REQUIRED_FIELDS = ['s', 'p', 't', 'v', 'c', 'ingest_ts', 'ordinal'] as const

/** The Trade type of a schema's JSON text; `path` names where the text came from, in errors. */
export function tradeTypeOf (text: string, path: string): avro.Type {
  let schema: unknown
  try {
    schema = JSON.parse(text)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA',
      `cannot load the Avro schema ${path}: ${(err as Error).message}; check schemaPath / SCHEMA_PATH`, { cause: err })
  }
  let type: avro.Type
  try {
    type = avro.Type.forSchema(schema as avro.Schema)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA', `${path} is not a valid Avro schema: ${(err as Error).message}`, { cause: err })
  }
  const fields = type instanceof avro.types.RecordType ? type.fields.map(f => f.name) : []
  const missing = REQUIRED_FIELDS.filter(f => !fields.includes(f))
  if (missing.length > 0) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA',
      `${path} is not a Trade record schema: missing field(s) ${missing.join(', ')}; start from schemas/trade.avsc`)
  }
  return type
}
