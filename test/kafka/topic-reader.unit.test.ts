// The topic reader (the console's Topic view, `finnhubd tail`) against an in-process fake
// of node-rdkafka's KafkaConsumer: the newest records over all partitions, following from
// the end or the start, undecodable records shown with their reason, a reader that never
// joins the daemon's group or commits, a read that times out or fails, one read at a
// time, and a connection that failed is tried again. The real-broker tests are
// test/console/ and test/tail.test.ts.
import t from 'tap'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import { singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { writerSchemasFor } from '../../daemon/core/process-batch.js'
import { partitionsOf, TopicReader, type ShownRecord } from '../../daemon/kafka/topic-reader.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'
import { waitUntil } from '../../daemon/wait.js'
import { FakeConsumer } from '../fixtures/fake-rdkafka.js'
import type { ConsumerClient } from '../../daemon/kafka/clients.js'

const TOPIC = 'finnhub.trades'
const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), []))
const encoder = new TradeEncoder(type, { kind: 'single-object' })
const tradeValue = (offset: number): Buffer => Buffer.from(encoder.encodeView({ s: 'AAPL', p: 100 + offset, t: 1_700_000_000_000 + offset, v: 1, c: null, ingest_ts: 1_700_000_000_000 + offset, ordinal: 0 }))

function setup (): { fake: FakeConsumer, reader: TopicReader } {
  const fake = new FakeConsumer()
  const reader = new TopicReader({ kafka: validateConfig({}).kafka, decoder, purpose: 'unit', client: fake.factory() })
  return { fake, reader }
}

t.test('the reader has its own group, never commits and assigns partitions itself', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 3, tradeValue)
  await reader.latest(TOPIC, 10)
  t.equal(fake.global['enable.auto.commit'], false)
  t.match(fake.global['group.id'], new RegExp(`^${validateConfig({}).kafka.groupId}-unit-\\d+$`), 'not the daemon\'s group')
  t.notOk('rebalance_cb' in fake.global, 'no group rebalance: assigned by hand')
  t.same(fake.subscribed, [], 'never subscribes')
  t.same(fake.commits, [])
  t.same(fake.assigned, [], 'the assignment is dropped after the read')
  await reader.close()
  t.ok(fake.disconnected)
})

t.test('latest: the newest records of the topic over all partitions, newest first, at most `limit`', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 5, tradeValue) // timestamps …000 … …004
  fake.write(TOPIC, 1, 8, tradeValue) // …000 … …007
  fake.write(TOPIC, 2, 0)
  const shown = await reader.latest(TOPIC, 4)
  t.same(shown.map(r => [r.partition, r.offset]), [[1, 7], [1, 6], [1, 5], [0, 4]])
  t.match(shown[0], { topic: TOPIC, key: 'AAPL', timestamp: 1_700_000_000_007, undecodable: null, trade: { s: 'AAPL', p: 107 } })
  t.same(await reader.latest('no.such.topic', 4), [], 'a topic that does not exist has no records')
  await reader.close()
})

t.test('latestWithin holds and decodes at most maxBytes: the newest records that fit, and says it left some out', async t => {
  const { fake, reader } = setup()
  const big = (offset: number): Buffer => Buffer.concat([Buffer.from([0xff]), Buffer.alloc(399, offset)]) // 400 bytes, undecodable
  fake.write(TOPIC, 0, 6, big)
  fake.write(TOPIC, 1, 6, big)
  let decoded = 0
  const counting = { decode: (v: Buffer | null | undefined) => { decoded++; return decoder.decode(v) } } as unknown as typeof decoder
  const bounded = new TopicReader({ kafka: validateConfig({}).kafka, decoder: counting, purpose: 'unit', client: fake.factory() })
  const within = await bounded.latestWithin(TOPIC, 6, 1_000)
  t.ok(within.truncated, 'some were left out')
  t.ok(within.records.length <= 2, `at most 1,000 bytes of 400-byte records kept (${within.records.length})`)
  t.ok(within.records.length >= 1)
  t.equal(decoded, within.records.length, 'only the kept records were decoded')
  const newest = (await bounded.latestWithin(TOPIC, 12, Number.POSITIVE_INFINITY)).records.slice(0, within.records.length)
  t.same(within.records.map(r => [r.partition, r.offset]), newest.map(r => [r.partition, r.offset]), 'the kept ones are the newest')
  const all = await bounded.latestWithin(TOPIC, 6, 1_000_000)
  t.equal(all.records.length, 6)
  t.equal(all.truncated, true, 'limit 6 over two partitions of 6 each: the older six are left out')
  await bounded.close()
  await reader.close()
})

t.test('latest reads only what was there: from high − limit, never below the low watermark', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 10, tradeValue)
  fake.low.set(`${TOPIC}:0`, 0)
  const shown = await reader.latest(TOPIC, 3)
  t.same(shown.map(r => r.offset), [9, 8, 7])
  t.same((await reader.latest(TOPIC, 50)).length, 10)
  await reader.close()
})

t.test('a record that does not decode is shown with the reason, never thrown', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 2, o => o === 0 ? Buffer.from('{"json":"not avro"}') : Buffer.alloc(0))
  const shown = await reader.latest(TOPIC, 10)
  t.equal(shown.length, 2)
  for (const r of shown) {
    t.equal(r.trade, null)
    t.type(r.undecodable?.reason, 'string')
    t.ok((r.undecodable?.detail ?? '').length > 0, 'and a detail')
  }
  await reader.close()
})

t.test('headers are shown as text', async t => {
  const { reader } = setup()
  const r = reader.show({ topic: 'd', partition: 0, offset: 1, value: Buffer.from('x'), size: 1, key: null, timestamp: 5, headers: [{ 'finnhubd-reason': Buffer.from('malformed') }, { n: 3 as unknown as Buffer }] })
  t.same(r.headers, { 'finnhubd-reason': 'malformed', n: '3' })
  t.equal(r.key, null)
})

t.test('follow from the end shows only what comes after; from the start, everything; it stops on abort', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 3, tradeValue)
  const seen: ShownRecord[] = []
  const ac = new AbortController()
  const following = reader.follow(TOPIC, false, r => seen.push(r), ac.signal)
  await waitUntil(() => fake.assigned.length === 1, Date.now() + 2000)
  fake.write(TOPIC, 0, 2, tradeValue)
  await waitUntil(() => seen.length === 2, Date.now() + 2000)
  ac.abort()
  await following
  t.same(seen.map(r => r.offset), [3, 4])
  t.same(fake.assigned, [], 'unassigned after the follow')

  const all: number[] = []
  const ac2 = new AbortController()
  const again = reader.follow(TOPIC, true, r => { all.push(r.offset); if (all.length === 5) ac2.abort() }, ac2.signal)
  await again
  t.same(all, [0, 1, 2, 3, 4])
  await reader.close()
})

t.test('latest returns what it read by its timeout when a partition never reaches its end', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 3, tradeValue)
  fake.write(TOPIC, 1, 2, tradeValue)
  // Partition 1 says it ends at 4 but holds 2 records (say, deleted by retention after the watermark query).
  const query = fake.queryWatermarkOffsets.bind(fake)
  fake.queryWatermarkOffsets = (topic, partition, timeout, cb) => {
    query(topic, partition, timeout, (err, w) => { cb(err, partition === 1 ? { ...w, highOffset: 4 } : w) })
  }
  const shown = await reader.latest(TOPIC, 10, 100)
  t.same(shown.map(r => [r.partition, r.offset]).sort(), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]], 'every record that was there')
  t.same(fake.assigned, [], 'unassigned after the read')
  await reader.close()
})

t.test('a consume error ends the follow with that error, drops the assignment, and the next read works', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 2, tradeValue)
  const following = reader.follow(TOPIC, false, () => {}, new AbortController().signal)
  await waitUntil(() => fake.assigned.length === 1, Date.now() + 2000)
  fake.consumeError = new Error('Local: Broker transport failure')
  await t.rejects(following, { message: 'Local: Broker transport failure' })
  t.same(fake.assigned, [])
  t.same((await reader.latest(TOPIC, 5)).map(r => r.offset), [1, 0], 'the reader is usable again')
  await reader.close()
})

t.test('one read at a time: a latest() asked during a follow waits for it', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 2, tradeValue)
  const ac = new AbortController()
  const following = reader.follow(TOPIC, true, () => {}, ac.signal)
  let latestDone = false
  const latest = reader.latest(TOPIC, 1).then(r => { latestDone = true; return r })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(latestDone, 'the latest() waits while the follow holds the consumer')
  ac.abort()
  await following
  t.same((await latest).map(r => r.offset), [1])
  await reader.close()
})

t.test('a connection that failed is tried again; a closed reader refuses', async t => {
  const { fake, reader } = setup()
  fake.write(TOPIC, 0, 1, tradeValue)
  fake.connectError = new Error('no broker')
  await t.rejects(reader.latest(TOPIC, 1), { code: 'FINNHUBD_ERR_KAFKA_UNREACHABLE' })
  fake.connectError = null
  t.equal((await reader.latest(TOPIC, 1)).length, 1, 'the next read connects')
  await reader.close()
  await t.rejects(reader.latest(TOPIC, 1), { message: 'the topic reader is closed' })
})

t.test('partitionsOf lists the partitions sorted', async t => {
  const fake = new FakeConsumer()
  for (const p of [2, 0, 1]) fake.write(TOPIC, p, 1)
  t.same(await partitionsOf(fake as unknown as ConsumerClient, TOPIC), [0, 1, 2])
})
