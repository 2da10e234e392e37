// The real local Kafka: an idempotent node-rdkafka producer writes Avro Trade records
// keyed by symbol, a consumer group reads them back, and they decode to what was sent.
import t from 'tap'
import { join } from 'node:path'
import Kafka from 'node-rdkafka'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, readTopic, uniqueName } from '../fixtures/kafka.js'

t.setTimeout(120_000)

const { kafkaBootstrap } = testEndpoints()
const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const topic = uniqueName('finnhubd-test')

const trades: TradeRecord[] = [
  { s: 'BINANCE:BTCUSDT', p: 7296.89, t: 1575526691134, v: 0.011467, c: ['1'], ingest_ts: 1575526691200, ordinal: 0 },
  { s: 'AAPL', p: 187.12, t: 1700000000123, v: 100, c: null, ingest_ts: 1700000000130, ordinal: 0 },
  { s: 'AAPL', p: 187.12, t: 1700000000123, v: 100, c: null, ingest_ts: 1700000000130, ordinal: 1 }
]

async function produceAll (): Promise<Array<{ partition: number, offset: number, key: string }>> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': kafkaBootstrap,
    'enable.idempotence': true,
    'compression.codec': 'lz4',
    dr_cb: true
  }, { 'request.required.acks': -1 })
  await new Promise<void>((resolve, reject) => {
    producer.once('ready', () => resolve())
    producer.once('connection.failure', reject)
    producer.connect()
  })
  producer.setPollInterval(20)
  const reports: Array<{ partition: number, offset: number, key: string }> = []
  const done = new Promise<void>((resolve, reject) => {
    producer.on('delivery-report', (err, report) => {
      if (err) { reject(err); return }
      reports.push({ partition: report.partition, offset: report.offset, key: String(report.key) })
      if (reports.length === trades.length) resolve()
    })
  })
  for (const trade of trades) producer.produce(topic, null, type.toBuffer(trade), trade.s, Date.now())
  await done
  await new Promise<void>(resolve => producer.disconnect(() => resolve()))
  return reports
}

t.test('produce Avro trades keyed by symbol, consume and decode them', async t => {
  t.equal(await createTopic(kafkaBootstrap, topic), 'created')
  t.equal(await createTopic(kafkaBootstrap, topic), 'exists', 'creating an existing topic is harmless')
  const reports = await produceAll()
  t.equal(reports.length, trades.length, 'every record acknowledged')
  const aaplPartitions = new Set(reports.filter(r => r.key === 'AAPL').map(r => r.partition))
  t.equal(aaplPartitions.size, 1, "a symbol's records share one partition (key = symbol)")

  const messages = await readTopic(kafkaBootstrap, topic, { expect: trades.length })
  t.equal(messages.length, trades.length, 'exactly what was produced is consumed')
  const decoded = messages
    .map(m => ({ key: String(m.key), trade: type.fromBuffer(m.value as Buffer) as TradeRecord }))
    .sort((a, b) => a.trade.t - b.trade.t || a.trade.ordinal - b.trade.ordinal)
  t.same(decoded.map(d => d.trade), trades, 'values decode to the trades sent, timestamps as epoch-ms numbers')
  for (const d of decoded) t.equal(d.key, d.trade.s, 'key is the symbol')
})
