// schemas/trade.avsc parses, documents every field, and round-trips a trade.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'

const schemaPath = join(SCHEMAS_DIR, 'trade.avsc')

t.test('the Trade schema parses and every field has a doc', async t => {
  const type = loadTradeType(schemaPath)
  t.equal(type.name, 'io.finnhubd.Trade')
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as { doc?: string, fields: Array<{ name: string, doc?: string }> }
  t.ok(schema.doc, 'the record has a doc')
  for (const field of schema.fields) t.ok((field.doc ?? '').length > 10, `field ${field.name} has a doc`)
})

t.test('a trade round-trips with timestamps as epoch-ms numbers, null conditions allowed', async t => {
  const type = loadTradeType(schemaPath)
  const trade: TradeRecord = { s: 'BINANCE:BTCUSDT', p: 7296.89, t: 1575526691134, v: 0, c: null, ingest_ts: 1575526691140, ordinal: 2 }
  const back = type.fromBuffer(type.toBuffer(trade)) as TradeRecord
  t.same(back, trade)
  t.equal(typeof back.t, 'number')
  t.notOk(type.isValid({ ...trade, p: 'x' }), 'a wrong type does not validate')
})

t.test('a missing, malformed or foreign schema is a clear error', async t => {
  const dir = t.testdir({
    'broken.avsc': '{ "type": ',
    'invalid.avsc': JSON.stringify({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'nope' }] }),
    'other.avsc': JSON.stringify({ type: 'record', name: 'Quote', fields: [{ name: 's', type: 'string' }] })
  })
  t.throws(() => loadTradeType(join(dir, 'missing.avsc')), { code: 'FINNHUBD_ERR_SCHEMA', message: /cannot load the Avro schema .*SCHEMA_PATH/ })
  t.throws(() => loadTradeType(join(dir, 'broken.avsc')), { code: 'FINNHUBD_ERR_SCHEMA', message: /cannot load the Avro schema/ })
  t.throws(() => loadTradeType(join(dir, 'invalid.avsc')), { code: 'FINNHUBD_ERR_SCHEMA', message: /is not a valid Avro schema/ })
  t.throws(() => loadTradeType(join(dir, 'other.avsc')), { code: 'FINNHUBD_ERR_SCHEMA', message: /not a Trade record schema: missing field\(s\) p, t, v, c, ingest_ts, ordinal/ })
})
