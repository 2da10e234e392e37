// The trade producer against an in-process fake of node-rdkafka's Producer: what it
// sends (topic, key = symbol, Avro value that decodes back, timestamp = receive time),
// how every refusal becomes a counted drop instead of a throw, and how acknowledgements
// are counted in both delivery-report modes, flush and disconnect. The real-broker tests
// are test/ingest/ and test/kafka/roundtrip.
import t from 'tap'
import { join } from 'node:path'
import Kafka from 'node-rdkafka'
import { validateConfig } from '../../daemon/config/load.js'
import { singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { writerSchemasFor } from '../../daemon/core/process-batch.js'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'
import { TradeProducer } from '../../daemon/kafka/producer.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import type { StageLatency } from '../../daemon/metrics/latency.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'
import { waitUntil } from '../../daemon/wait.js'
import { codedError, FakeProducer } from '../fixtures/fake-rdkafka.js'

const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), []))

const trade = (i: number, s = 'AAPL'): TradeRecord => ({ s, p: 100 + i / 100, t: 1_700_000_000_000 + i, v: 1 + i, c: ['1'], ingest_ts: 1_700_000_000_500 + i, ordinal: i })

function setup (deliveryReports: 'all' | 'errors' = 'all'): {
  fake: FakeProducer
  producer: TradeProducer
  counters: ReturnType<typeof createIngestCounters>
  lines: string[]
  acks: number[]
  stats: unknown[]
} {
  const fake = new FakeProducer()
  const counters = createIngestCounters()
  const lines: string[] = []
  const acks: number[] = []
  const stats: unknown[] = []
  const config = validateConfig({ kafka: { deliveryReports } })
  const latency = { record: (stage: string, ms: number) => { if (stage === 'frame_to_ack') acks.push(ms) } } as unknown as StageLatency
  const producer = new TradeProducer({
    kafka: config.kafka,
    encoder: new TradeEncoder(type, { kind: 'single-object' }),
    log: createLogger({ level: 'warn', write: l => lines.push(l) }),
    counters,
    latency,
    onStats: s => stats.push(s),
    pollIntervalMs: 7,
    client: fake.factory()
  })
  return { fake, producer, counters, lines, acks, stats }
}

t.test('the client is idempotent with acks=all, and reports as kafka.deliveryReports says', async t => {
  const all = setup('all')
  t.equal(all.fake.global['enable.idempotence'], true)
  t.equal(all.fake.topicConfig['request.required.acks'], -1)
  t.equal(all.fake.topicConfig['message.timeout.ms'], validateConfig({}).kafka.deliveryTimeoutMs)
  t.equal(all.fake.global['delivery.report.only.error'], false)
  t.equal(setup('errors').fake.global['delivery.report.only.error'], true)
  await all.producer.connect(100)
  t.equal(all.fake.pollIntervalMs, 7)
  t.ok(all.producer.connected)
  await all.producer.disconnect()
  t.ok(all.fake.disconnected)
  t.notOk(all.producer.connected)
})

t.test('before connect, trades are dropped as not_connected, never sent', async t => {
  const s = setup()
  s.producer.send([trade(1), trade(2)])
  t.equal(s.counters.dropped.not_connected, 2)
  t.equal(s.fake.produced.length, 0)
  t.match(s.lines.join('\n'), /trades dropped: the Kafka producer is not connected/)
})

t.test('disconnect before connect leaves the client alone; after it, trades are dropped as not_connected', async t => {
  const s = setup()
  await s.producer.disconnect()
  t.notOk(s.fake.disconnected, 'a client never connected is not disconnected')
  await s.producer.connect(100)
  await s.producer.disconnect()
  t.ok(s.fake.disconnected)
  s.producer.send([trade(1)])
  t.equal(s.counters.dropped.not_connected, 1)
  t.equal(s.fake.produced.length, 0)
})

t.test('a refused connection rejects with the brokers named', async t => {
  const s = setup()
  s.fake.connectError = new Error('all brokers down')
  await t.rejects(s.producer.connect(50), { code: 'FINNHUBD_ERR_KAFKA_UNREACHABLE', message: /cannot reach Kafka at .*all brokers down/ })
  t.notOk(s.producer.connected)
})

t.test('one record per trade on the trades topic: key = symbol, an Avro value that decodes to the trade, timestamp = receive time', async t => {
  const s = setup()
  await s.producer.connect(100)
  const sent = [trade(1, 'AAPL'), trade(2, 'BINANCE:BTCUSDT'), trade(3, 'AAPL')]
  s.producer.send(sent)
  t.equal(s.counters.produced, 3)
  t.equal(s.fake.produced.length, 3)
  for (const [i, r] of s.fake.produced.entries()) {
    const want = sent[i] as TradeRecord
    t.equal(r.topic, 'finnhub.trades')
    t.equal(r.partition, null, 'the partitioner picks the partition from the key')
    t.equal(r.key?.toString('utf8'), want.s)
    t.equal(r.timestamp, want.ingest_ts)
    const decoded = decoder.decode(r.value)
    t.ok(decoded.ok, 'the value decodes')
    if (decoded.ok) t.match(decoded.trade, { s: want.s, p: want.p, t: want.t, v: want.v, c: want.c, ingest_ts: want.ingest_ts })
  }
  t.equal(s.producer.inFlight, 3)
  await s.producer.disconnect()
})

t.test('refusals are counted drops with their reason, and the rest of the batch is still sent', async t => {
  const s = setup()
  await s.producer.connect(100)
  s.fake.refuse = n => n === 1 ? codedError(Kafka.CODES.ERRORS.ERR__QUEUE_FULL, 'Queue full') : n === 2 ? new Error('Invalid argument') : null
  s.producer.send([trade(1), trade(2), trade(3), trade(4)])
  t.equal(s.counters.produced, 2)
  t.equal(s.counters.dropped.queue_full, 1)
  t.equal(s.counters.dropped.produce_refused, 1)
  t.match(s.lines.join('\n'), /the Kafka buffer is full .* raise kafka.maxBufferedMessages/)
  t.match(s.lines.join('\n'), /librdkafka refused a record; it was dropped/)
  s.fake.refuse = () => null
  s.producer.send([{ ...trade(5), p: 'not a number' as unknown as number }])
  t.equal(s.counters.dropped.encode_failed, 1, 'a trade that does not encode is dropped, not thrown')
  t.match(s.lines.join('\n'), /could not be Avro-encoded/)
  await s.producer.disconnect()
})

t.test('reports per record: each ack counts once with its frame → ack time; a failure is a counted loss', async t => {
  const s = setup('all')
  await s.producer.connect(100)
  s.producer.send([trade(1), trade(2), trade(3)])
  s.fake.report(2)
  s.fake.report(1, codedError(Kafka.CODES.ERRORS.ERR__MSG_TIMED_OUT, 'Local: Message timed out'))
  t.equal(s.counters.delivered, 2)
  t.equal(s.counters.dropped.delivery_failed, 1)
  t.equal(s.acks.length, 2, 'one frame_to_ack observation per acknowledged record')
  t.equal(s.producer.inFlight, 0)
  t.match(s.lines.join('\n'), /not acknowledged by Kafka within kafka.deliveryTimeoutMs and is lost/)
  await s.producer.disconnect()
})

t.test('reports per record: flush waits for the last reports on their way', async t => {
  const s = setup('all')
  await s.producer.connect(100)
  s.producer.send([trade(1), trade(2)])
  setTimeout(() => s.fake.report(2), 30)
  await s.producer.flush(2000)
  t.equal(s.fake.flushes, 1)
  t.equal(s.counters.delivered, 2, 'flush returned only once both reports had come')
  await s.producer.disconnect()
})

t.test('reports per record: flush gives up at its timeout when reports never come, and leaves them in flight', async t => {
  const s = setup('all')
  await s.producer.connect(100)
  s.producer.send([trade(1), trade(2)])
  await s.producer.flush(30)
  t.equal(s.counters.delivered, 0, 'nothing acknowledged is invented')
  t.equal(s.producer.inFlight, 2)
  s.fake.report(2)
  t.equal(s.producer.inFlight, 0, 'late reports still count')
  await s.producer.disconnect()
})

t.test('a flush librdkafka fails rejects, and settles nothing', async t => {
  const s = setup('errors')
  await s.producer.connect(100)
  s.producer.send([trade(1), trade(2)])
  s.fake.flush = (_timeout, cb) => { setImmediate(() => { cb(codedError(Kafka.CODES.ERRORS.ERR__TIMED_OUT, 'Local: Timed out')) }); return s.fake }
  await t.rejects(s.producer.flush(50), { message: 'Local: Timed out' })
  t.equal(s.counters.delivered, 0, 'records still queued are not counted as acknowledged')
  t.equal(s.producer.inFlight, 2)
  await s.producer.disconnect()
})

t.test('failure reports only: acks are counted from the statistics, exactly after a flush', async t => {
  const s = setup('errors')
  await s.producer.connect(100)
  s.producer.send([trade(1), trade(2), trade(3), trade(4)])
  s.fake.stats(JSON.stringify({ msg_cnt: 4, msg_size: 400, brokers: { 'b/1': { state: 'UP', nodeid: 1 } } }))
  t.equal(s.counters.delivered, 0, 'nothing is known acknowledged yet (the first statistics count against 0 produced)')
  t.equal(s.counters.producerQueue, 4)
  t.equal(s.producer.buffered, 4)
  t.same(s.producer.brokers, { up: 1, known: 1, nodes: [{ node: '1 b', up: true, state: 'UP' }] })
  t.equal(s.stats.length, 1, 'onStats sees every statistics event')
  s.fake.stats(JSON.stringify({ msg_cnt: 1, msg_size: 100, brokers: {} }))
  t.equal(s.counters.delivered, 3, 'produced before the previous statistics (4) − held (1)')
  s.fake.report(1, codedError(Kafka.CODES.ERRORS.ERR__MSG_TIMED_OUT, 'timed out'))
  await s.producer.flush(100)
  t.equal(s.counters.delivered, 3, 'after the flush: produced (4) − failed (1)')
  t.equal(s.producer.inFlight, 0)
  s.fake.stats('not json')
  t.equal(s.counters.delivered, 3, 'unparsable statistics change nothing')
  await s.producer.disconnect()
})

t.test('producer errors are logged, not thrown', async t => {
  const s = setup()
  await s.producer.connect(100)
  s.fake.emit('event.error', new Error('broker down'))
  await waitUntil(() => s.lines.length > 0, Date.now() + 1000)
  t.match(s.lines.join('\n'), /Kafka producer error; librdkafka keeps retrying/)
  await s.producer.disconnect()
})
