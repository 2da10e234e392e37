// The transform: renamed columns, timestamps, partition day, deterministic trade ids.
import t from 'tap'
import { createHash } from 'node:crypto'
import { toTradeRow, tradeId, tradeIdName, utcDay, TRADE_ID_NAMESPACE } from '../../daemon/core/transform.js'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'

const trade: TradeRecord = { s: 'BINANCE:BTCUSDT', p: 7296.89, t: 1575526691134, v: 0.011467, c: ['1'], ingest_ts: 1575526691140, ordinal: 0 }

t.test('columns are renamed, timestamps kept and added, day is the UTC day', async t => {
  const row = toTradeRow(trade, 1575526691200)
  t.same(row, {
    symbol: 'BINANCE:BTCUSDT',
    day: '2019-12-05',
    trade_ts: 1575526691134,
    trade_id: tradeId(trade),
    price: 7296.89,
    volume: 0.011467,
    conditions: ['1'],
    ingest_ts: 1575526691140,
    process_ts: 1575526691200
  })
  t.equal(utcDay(Date.UTC(2024, 0, 1) - 1), '2023-12-31', 'the last millisecond of a UTC day')
  t.equal(utcDay(Date.UTC(2024, 0, 1)), '2024-01-01')
})

t.test('trade ids are RFC 9562 version-5 UUIDs of the content and the ordinal', async t => {
  const id = tradeId(trade)
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.equal(tradeId({ ...trade }), id, 'same content, same id (a replay rewrites the same row)')
  const receivedLater: TradeRecord = { ...trade, ingest_ts: 1 }
  t.equal(tradeId(receivedLater), id, 'the receive time is not part of the identity (a re-sent trade collapses)')
  t.not(tradeId({ ...trade, ordinal: 1 }), id, 'a second identical fill in the frame is another row')
  for (const change of [{ s: 'X' }, { p: 7296.88 }, { t: trade.t + 1 }, { v: 0.011468 }, { c: null }, { c: [] }, { c: ['1', '2'] }]) {
    t.not(tradeId({ ...trade, ...change }), id, `${JSON.stringify(change)} changes the id`)
  }
  t.not(tradeId({ ...trade, c: ['1', '2'] }), tradeId({ ...trade, c: ['12'] }), 'condition lists are joined unambiguously')
  // Independent recomputation per RFC 9562 §5.5: SHA-1(namespace bytes ‖ name), version and variant bits set.
  const h = createHash('sha1').update(Buffer.from(TRADE_ID_NAMESPACE.replace(/-/g, ''), 'hex')).update(tradeIdName(trade)).digest()
  h[6] = (h[6]! & 0x0f) | 0x50
  h[8] = (h[8]! & 0x3f) | 0x80
  t.equal(id.replace(/-/g, ''), h.toString('hex', 0, 16))
  t.equal(id, '9a8eb0c2-a89d-51f6-9068-1fac5106cd36', 'pinned: ids stored in Cassandra must never change across versions')
})
