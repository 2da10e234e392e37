// The trade consumer against an in-process fake of node-rdkafka's KafkaConsumer: batch
// sizes, which offsets are committed and when, what a revocation commits, the in-flight
// bound (wait, then pause, then resume), close, commit failures, statistics and the drain.
// The real-broker tests of the same class are test/process/ and test/kafka/roundtrip.
import t from 'tap'
import { validateConfig } from '../../daemon/config/load.js'
import { TradeConsumer, type BatchStored, type ConsumedBatch } from '../../daemon/kafka/consumer.js'
import { createLogger } from '../../daemon/log.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { waitUntil } from '../../daemon/wait.js'
import { ASSIGN, codedError, FakeConsumer, REVOKE } from '../fixtures/fake-rdkafka.js'
import Kafka from 'node-rdkafka'

const TOPIC = 'finnhub.trades'

interface Held { batch: ConsumedBatch, finish: () => void, fail: (err: Error) => void }

function setup (opts: { batchSize?: number, maxInFlight?: number, maxWaiting?: number, commitIntervalMs?: number, onBatch?: (b: ConsumedBatch) => Promise<BatchStored | undefined | void> } = {}): {
  fake: FakeConsumer
  consumer: TradeConsumer
  held: Held[]
  counters: ReturnType<typeof createProcessCounters>
  lines: string[]
} {
  const fake = new FakeConsumer()
  const held: Held[] = []
  const counters = createProcessCounters()
  const lines: string[] = []
  const config = validateConfig({ kafka: { commitIntervalMs: opts.commitIntervalMs ?? 60_000 } })
  const consumer = new TradeConsumer({
    kafka: config.kafka,
    batchSize: opts.batchSize ?? 10,
    maxInFlightBatches: opts.maxInFlight ?? 100,
    ...(opts.maxWaiting !== undefined ? { maxWaitingBatches: opts.maxWaiting } : {}),
    log: createLogger({ level: 'debug', write: l => lines.push(l) }),
    counters,
    onBatch: opts.onBatch ?? (async batch => {
      await new Promise<void>((resolve, reject) => { held.push({ batch, finish: resolve, fail: reject }) })
    }),
    client: fake.factory()
  })
  return { fake, consumer, held, counters, lines }
}

async function started (s: ReturnType<typeof setup>, partitions = [0]): Promise<void> {
  await s.consumer.connect(1000)
  s.consumer.start()
  s.fake.rebalance(ASSIGN, partitions.map(partition => ({ topic: TOPIC, partition })))
}

const offsetsOf = (b: ConsumedBatch): number[] => b.messages.map(m => m.offset)

t.test('the client is built for manual offsets: no auto commit, no auto offset store, partition EOF events', async t => {
  const s = setup()
  t.equal(s.fake.global['enable.auto.commit'], false)
  t.equal(s.fake.global['enable.auto.offset.store'], false)
  t.equal(s.fake.global['enable.partition.eof'], true)
  t.equal(s.fake.global['group.id'], validateConfig({}).kafka.groupId)
  await started(s)
  t.same(s.fake.subscribed, [TOPIC])
  t.equal(s.fake.consumeTimeoutMs, validateConfig({}).kafka.consumeTimeoutMs, 'consume() waits kafka.consumeTimeoutMs')
  t.ok(s.consumer.connected)
  await s.consumer.close(10)
  t.ok(s.fake.disconnected)
  t.notOk(s.consumer.connected)
})

t.test('a refused connection rejects with the brokers named and what to do', async t => {
  const s = setup()
  s.fake.connectError = new Error('Broker transport failure')
  await t.rejects(s.consumer.connect(100), { code: 'FINNHUBD_ERR_KAFKA_UNREACHABLE', message: /cannot reach Kafka at .*Broker transport failure.*stack -- up/ })
  t.notOk(s.consumer.connected)
})

t.test('batches hold at most batchSize records, in offset order; a reload changes the size from the next batch', async t => {
  const s = setup({ batchSize: 10 })
  await started(s)
  s.fake.write(TOPIC, 0, 25)
  await waitUntil(() => s.held.length === 3, Date.now() + 5000)
  t.same(s.held.map(h => h.batch.messages.length), [10, 10, 5])
  t.same(s.held.flatMap(h => offsetsOf(h.batch)), Array.from({ length: 25 }, (_, i) => i))
  t.equal(s.counters.consumed, 25)
  t.equal(s.counters.batches, 3)
  t.equal(s.counters.inFlightBatches, 3)
  t.equal(s.counters.inFlightRecords, 25)
  s.consumer.setBatchSize(4)
  s.fake.write(TOPIC, 0, 6)
  await waitUntil(() => s.held.length === 5, Date.now() + 5000)
  t.same(s.held.slice(3).map(h => h.batch.messages.length), [4, 2])
  for (const h of s.held) h.finish()
  await s.consumer.close(1000)
})

t.test('only the contiguous prefix of finished batches is committed, as the last offset + 1', async t => {
  const s = setup({ batchSize: 10 })
  await started(s)
  s.fake.write(TOPIC, 0, 30)
  await waitUntil(() => s.held.length === 3, Date.now() + 5000)
  const [b1, b2, b3] = s.held as [Held, Held, Held]
  b2.finish()
  b3.finish()
  await waitUntil(() => s.counters.inFlightBatches === 1, Date.now() + 5000)
  s.consumer.commit()
  t.same(s.fake.commits, [], 'batches 2 and 3 finished behind an unfinished batch 1: nothing is committable')
  b1.finish()
  await waitUntil(() => s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.consumer.commit()
  t.same(s.fake.commits, [{ sync: false, positions: [{ topic: TOPIC, partition: 0, offset: 30 }] }])
  t.equal(s.counters.commits, 1)
  s.consumer.commit()
  t.equal(s.fake.commits.length, 1, 'nothing new finished: no second commit')
  await s.consumer.close(1000)
  t.equal(s.fake.commits.length, 1, 'close has nothing more to commit')
})

/** A handler in two steps: `store` frees the batch's slot, `durable` makes it committable. */
interface TwoStep { batch: ConsumedBatch, store: () => void, durable: () => void, fail: (err: Error) => void }
function twoStep (list: TwoStep[]): (b: ConsumedBatch) => Promise<BatchStored> {
  return async batch => await new Promise<BatchStored>(resolve => {
    let durable: () => void = () => {}
    let fail: (err: Error) => void = () => {}
    const d = new Promise<void>((resolve, reject) => { durable = resolve; fail = reject })
    list.push({ batch, store: () => { resolve({ durable: d }) }, durable: () => { durable() }, fail: err => { fail(err) } })
  })
}

t.test('a batch stored frees its in-flight slot at once; its offsets commit only once it is durable too', async t => {
  const list: TwoStep[] = []
  const s = setup({ batchSize: 10, maxInFlight: 1, onBatch: twoStep(list) })
  await started(s)
  s.fake.write(TOPIC, 0, 20)
  await waitUntil(() => list.length === 1, Date.now() + 5000)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(list.length, 1, 'one batch in flight: the bound holds')
  list[0]!.store()
  await waitUntil(() => list.length === 2, Date.now() + 5000)
  t.equal(list.length, 2, 'stored: the next batch is consumed while the first waits for its candles')
  t.equal(s.counters.inFlightBatches, 1)
  t.equal(s.counters.waitingBatches, 1)
  list[1]!.store()
  list[1]!.durable()
  await waitUntil(() => s.counters.waitingBatches === 1 && s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.consumer.commit()
  t.same(s.fake.commits, [], 'the second is durable, the first not: nothing committable')
  list[0]!.durable()
  await waitUntil(() => s.counters.waitingBatches === 0, Date.now() + 5000)
  s.consumer.commit()
  t.same(s.fake.commits, [{ sync: false, positions: [{ topic: TOPIC, partition: 0, offset: 20 }] }], 'both durable: committed through the second')
  await s.consumer.close(1000)
})

t.test('at maxWaitingBatches stored-but-not-durable batches, consumption waits; a durable one wakes it; close waits for them and a failed one never commits', async t => {
  const list: TwoStep[] = []
  const s = setup({ batchSize: 1, maxInFlight: 1, maxWaiting: 2, onBatch: twoStep(list) })
  await started(s)
  s.fake.write(TOPIC, 0, 5)
  await waitUntil(() => list.length === 1, Date.now() + 5000)
  list[0]!.store()
  await waitUntil(() => list.length === 2, Date.now() + 5000)
  list[1]!.store()
  await waitUntil(() => s.counters.waitingBatches === 2, Date.now() + 5000)
  const calls = s.fake.consumeCalls
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(s.fake.consumeCalls, calls, 'no consume() at the waiting bound')
  t.equal(list.length, 2)
  list[0]!.durable()
  await waitUntil(() => list.length === 3, Date.now() + 5000)
  t.equal(list.length, 3, 'one durable: reading goes on')
  list[2]!.store()
  list[1]!.fail(new Error('candle write abandoned'))
  list[2]!.durable()
  await waitUntil(() => list.length === 4, Date.now() + 5000)
  list[3]!.store()
  await waitUntil(() => list.length === 5, Date.now() + 5000)
  list[4]!.store()
  setTimeout(() => { list[3]!.durable(); list[4]!.durable() }, 100)
  const { abandonedBatches } = await s.consumer.close(2000)
  t.equal(abandonedBatches, 0, 'close waited for the waiting batches')
  t.same(s.fake.commits.flatMap(c => c.positions.map(p => p.offset)), [1], 'only offset 0 committed: 1 failed, so 2-4 stay behind it')
  t.ok(s.lines.some(l => l.includes('a batch handler failed while running')), 'the failure is logged')
})

t.test('a batch that spans partitions commits each partition at its own last offset + 1', async t => {
  const s = setup({ batchSize: 10 })
  s.fake.write(TOPIC, 0, 3)
  s.fake.write(TOPIC, 1, 4)
  await started(s, [0, 1])
  await waitUntil(() => s.held.length === 1, Date.now() + 5000)
  const [b] = s.held as [Held]
  t.same(b.batch.messages.map(m => [m.partition, m.offset]), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [1, 3]], 'one batch, both partitions')
  b.finish()
  await waitUntil(() => s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.consumer.commit()
  t.same(s.fake.commits, [{ sync: false, positions: [{ topic: TOPIC, partition: 0, offset: 3 }, { topic: TOPIC, partition: 1, offset: 4 }] }])
  await s.consumer.close(1000)
})

t.test('the finished prefix is committed every kafka.commitIntervalMs without a call, and a reload re-arms the timer', async t => {
  const timed = setup({ batchSize: 5, commitIntervalMs: 10, onBatch: async () => {} })
  await started(timed)
  timed.fake.write(TOPIC, 0, 5)
  await waitUntil(() => timed.fake.commits.length === 1, Date.now() + 5000)
  t.same(timed.fake.commits, [{ sync: false, positions: [{ topic: TOPIC, partition: 0, offset: 5 }] }], 'committed by the timer')
  await timed.consumer.close(1000)

  // At the 60 s interval of setup() only the reload can commit within the test's wait.
  const reloaded = setup({ batchSize: 5, onBatch: async () => {} })
  await started(reloaded)
  reloaded.fake.write(TOPIC, 0, 5)
  await waitUntil(() => reloaded.counters.consumed === 5 && reloaded.counters.inFlightBatches === 0, Date.now() + 5000)
  reloaded.consumer.setCommitInterval(10)
  await waitUntil(() => reloaded.fake.commits.length === 1, Date.now() + 5000)
  t.same(reloaded.fake.commits.map(c => c.positions), [[{ topic: TOPIC, partition: 0, offset: 5 }]], 'committed at the reloaded interval')
  await reloaded.consumer.close(1000)
})

t.test('a revocation commits the finished prefix, and what was in flight for the partition never commits', async t => {
  const s = setup({ batchSize: 5 })
  await started(s, [0, 1])
  s.fake.write(TOPIC, 0, 5)
  await waitUntil(() => s.held.length === 1, Date.now() + 5000)
  s.fake.write(TOPIC, 1, 5)
  await waitUntil(() => s.held.length === 2, Date.now() + 5000)
  const [p0, p1] = s.held as [Held, Held]
  t.equal(p0.batch.messages[0]?.partition, 0)
  t.equal(p1.batch.messages[0]?.partition, 1)
  p0.finish()
  await waitUntil(() => s.counters.inFlightBatches === 1, Date.now() + 5000)
  s.fake.rebalance(REVOKE, [{ topic: TOPIC, partition: 0 }, { topic: TOPIC, partition: 1 }])
  t.same(s.fake.commits, [{ sync: false, positions: [{ topic: TOPIC, partition: 0, offset: 5 }] }], 'the finished batch is committed before the partitions go')
  t.same(s.fake.assigned, [], 'and the partitions are let go')
  p1.finish()
  await waitUntil(() => s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.consumer.commit()
  await s.consumer.close(1000)
  t.equal(s.fake.commits.length, 1, 'the batch of the revoked partition 1 finished into the void: never committed')
  t.equal(s.counters.inFlightRecords, 0)
})

t.test('a batch read before a revocation that finishes after the partition came back does not commit', async t => {
  const s = setup({ batchSize: 5 })
  await started(s)
  s.fake.write(TOPIC, 0, 5)
  await waitUntil(() => s.held.length === 1, Date.now() + 5000)
  s.fake.rebalance(REVOKE, [{ topic: TOPIC, partition: 0 }])
  s.fake.rebalance(ASSIGN, [{ topic: TOPIC, partition: 0 }])
  s.held[0]?.finish()
  await waitUntil(() => s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.consumer.commit()
  await s.consumer.close(1000)
  t.same(s.fake.commits, [], 'the batch belonged to the earlier assignment')
  t.equal(s.counters.inFlightRecords, 0)
})

t.test('a paused consumer keeps new assignments paused', async t => {
  const s = setup({ batchSize: 1, maxInFlight: 1 })
  await started(s)
  s.fake.write(TOPIC, 0, 3)
  await waitUntil(() => s.consumer.paused, Date.now() + 5000)
  s.fake.rebalance(REVOKE, [{ topic: TOPIC, partition: 0 }])
  s.fake.rebalance(ASSIGN, [{ topic: TOPIC, partition: 2 }])
  t.ok(s.fake.paused.has(`${TOPIC}:2`))
  for (const h of s.held) h.finish()
  await s.consumer.close(1000)
})

t.test('at the in-flight bound the loop waits without consuming, then pauses; it resumes once half have finished', async t => {
  const s = setup({ batchSize: 1, maxInFlight: 4 })
  await started(s)
  s.fake.write(TOPIC, 0, 10)
  await waitUntil(() => s.held.length === 4, Date.now() + 5000)
  const calls = s.fake.consumeCalls
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(s.fake.consumeCalls, calls, 'no consume() while waiting at the bound')
  t.equal(s.fake.pauses, 0, 'not paused yet: a short wait at the bound is not an outage')
  await waitUntil(() => s.consumer.paused, Date.now() + 5000)
  t.equal(s.fake.pauses, 1)
  t.equal(s.counters.paused, 1)
  t.ok(s.fake.consumeCalls > calls, 'paused, consume() keeps polling (the group session stays alive)')
  t.equal(s.held.length, 4, 'but reads nothing from paused partitions')
  s.held[0]?.finish()
  await waitUntil(() => s.counters.inFlightBatches === 3, Date.now() + 5000)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(s.consumer.paused, 'one of four finished: still paused')
  s.held[1]?.finish()
  await waitUntil(() => !s.consumer.paused, Date.now() + 5000)
  t.equal(s.fake.resumes, 1)
  t.equal(s.counters.paused, 0)
  await waitUntil(() => s.held.length === 6, Date.now() + 5000)
  t.same(s.held.flatMap(h => offsetsOf(h.batch)), [0, 1, 2, 3, 4, 5], 'reading goes on where it stopped')
  for (const h of s.held) h.finish()
  await waitUntil(() => s.held.length === 10, Date.now() + 8000)
  for (const h of s.held) h.finish()
  await s.consumer.close(1000)
})

t.test('waiting at the bound, a batch that finishes wakes the loop at once (no pause)', async t => {
  const s = setup({ batchSize: 1, maxInFlight: 2 })
  await started(s)
  s.fake.write(TOPIC, 0, 3)
  await waitUntil(() => s.held.length === 2, Date.now() + 5000)
  s.held[0]?.finish()
  await waitUntil(() => s.held.length === 3, Date.now() + 500)
  t.equal(s.held.length, 3)
  t.equal(s.fake.pauses, 0)
  for (const h of s.held) h.finish()
  await s.consumer.close(1000)
})

t.test('close waits for in-flight batches, commits what finished synchronously, and counts what it abandoned', async t => {
  const s = setup({ batchSize: 5 })
  await started(s)
  s.fake.write(TOPIC, 0, 10)
  await waitUntil(() => s.held.length === 2, Date.now() + 5000)
  s.held[0]?.finish()
  const closing = s.consumer.close(200)
  const { abandonedBatches } = await closing
  t.equal(abandonedBatches, 1, 'the batch that never finished is abandoned')
  t.same(s.fake.commits, [{ sync: true, positions: [{ topic: TOPIC, partition: 0, offset: 5 }] }])
  t.ok(s.fake.disconnected)
  s.held[1]?.fail(new Error('stopping'))
  await new Promise(resolve => setTimeout(resolve, 10))
  t.match(s.lines.join('\n'), /batch abandoned while stopping/)
})

t.test('close lets a batch that finishes within the drain timeout finish and commits it', async t => {
  const s = setup({ batchSize: 5 })
  await started(s)
  s.fake.write(TOPIC, 0, 5)
  await waitUntil(() => s.held.length === 1, Date.now() + 5000)
  setTimeout(() => s.held[0]?.finish(), 50)
  t.same(await s.consumer.close(5000), { abandonedBatches: 0 })
  t.same(s.fake.commits, [{ sync: true, positions: [{ topic: TOPIC, partition: 0, offset: 5 }] }])
})

t.test('a failed commit is counted and retried at the next commit; "no offset" is not a failure', async t => {
  const s = setup({ batchSize: 5, onBatch: async () => {} })
  await started(s)
  s.fake.write(TOPIC, 0, 5)
  await waitUntil(() => s.counters.consumed === 5 && s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.fake.commitError = codedError(Kafka.CODES.ERRORS.ERR_REQUEST_TIMED_OUT, 'timed out')
  s.consumer.commit()
  await waitUntil(() => s.counters.commitErrors === 1, Date.now() + 5000)
  t.equal(s.counters.commitErrors, 1)
  t.match(s.lines.join('\n'), /offset commit failed; it is retried/)
  s.consumer.commit()
  t.same(s.fake.commits.map(c => c.positions), [[{ topic: TOPIC, partition: 0, offset: 5 }], [{ topic: TOPIC, partition: 0, offset: 5 }]], 'the same position is sent again')
  s.fake.write(TOPIC, 0, 5)
  await waitUntil(() => s.counters.consumed === 10 && s.counters.inFlightBatches === 0, Date.now() + 5000)
  s.fake.commitError = codedError(Kafka.CODES.ERRORS.ERR__NO_OFFSET, 'no offset')
  s.consumer.commit()
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(s.counters.commitErrors, 1, 'ERR__NO_OFFSET is not counted')
  await s.consumer.close(1000)
})

t.test('a consume error is logged and the loop goes on', async t => {
  const s = setup({ batchSize: 5, onBatch: async () => {} })
  s.fake.consumeError = new Error('local: broker transport failure')
  await started(s)
  s.fake.write(TOPIC, 0, 3)
  await waitUntil(() => s.counters.consumed === 3, Date.now() + 5000)
  t.equal(s.counters.consumed, 3)
  t.match(s.lines.join('\n'), /consume failed; retrying/)
  await s.consumer.close(1000)
})

t.test('a handler that throws at once leaves its batch in flight and uncommitted, says it is a bug, and the loop goes on', async t => {
  let n = 0
  const s = setup({ batchSize: 2, onBatch: async () => { if (n++ === 0) throw new Error('boom') } })
  await started(s)
  s.fake.write(TOPIC, 0, 4)
  await waitUntil(() => s.counters.consumed === 4, Date.now() + 5000)
  await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(s.counters.inFlightBatches, 1)
  s.consumer.commit()
  t.same(s.fake.commits, [], 'the second batch finished behind the failed first: nothing committed')
  t.match(s.lines.join('\n'), /a batch handler failed while running.*a finnhubd bug/)
  await s.consumer.close(10)
})

t.test('statistics: the lag per partition and in total, broker health; unparsable statistics are ignored', async t => {
  const s = setup()
  await started(s)
  s.fake.emit('event.stats', { message: 'not json' })
  t.equal(s.consumer.brokers, null)
  s.fake.emit('event.stats', {
    message: JSON.stringify({
      topics: { [TOPIC]: { partitions: { 0: { partition: 0, consumer_lag: 7 }, 1: { partition: 1, consumer_lag: 3 }, '-1': { partition: -1, consumer_lag: 99 }, 2: { partition: 2, consumer_lag: -1 } } } },
      brokers: { 'b:9092/1': { state: 'UP', nodeid: 1 }, 'b:9092/2': { state: 'DOWN', nodeid: 2 }, 'boot:9092/bootstrap': { state: 'UP', nodeid: -1 } }
    })
  })
  t.equal(s.counters.lag, 10)
  t.same([...s.counters.lagByPartition], [[0, 7], [1, 3]])
  t.same(s.consumer.brokers, { up: 1, known: 2, nodes: [{ node: '1 b:9092', up: true, state: 'UP' }, { node: '2 b:9092', up: false, state: 'DOWN' }] })
  await s.consumer.close(10)
})

t.test('drainToEnd reads every assigned partition up to its end as of the call', async t => {
  const s = setup({ batchSize: 4, onBatch: async () => {} })
  await started(s, [0, 1])
  s.fake.write(TOPIC, 0, 6)
  s.fake.write(TOPIC, 1, 3)
  t.same(await s.consumer.drainToEnd(Date.now() + 5000), { drained: true, unread: 0 })
  t.equal(s.counters.consumed, 9)
  await s.consumer.close(10)
})

t.test('drainToEnd says how much is left unread at the deadline', async t => {
  const s = setup({ batchSize: 2, maxInFlight: 1 })
  await started(s)
  s.fake.write(TOPIC, 0, 6)
  await waitUntil(() => s.held.length === 1, Date.now() + 5000)
  const r = await s.consumer.drainToEnd(Date.now() + 100)
  t.same(r, { drained: false, unread: 4 }, 'one batch of 2 read (and unfinished), 4 records unread')
  for (const h of s.held) h.finish()
  await s.consumer.close(10)
})

t.test('drainToEnd: a partition with nothing new to read is drained by its partition EOF event; EOF events of other topics do not count', async t => {
  const s = setup({ onBatch: async () => {} })
  s.fake.low.set(`${TOPIC}:0`, 5) // offsets 0-4 gone (read and committed earlier): high = 5, nothing to read
  await started(s)
  t.same(await s.consumer.drainToEnd(Date.now() + 50), { drained: false, unread: 5 }, 'no record and no EOF: the position is unknown')
  s.fake.emit('partition.eof', { topic: 'other.topic', partition: 0, offset: 5 })
  t.same(await s.consumer.drainToEnd(Date.now() + 50), { drained: false, unread: 5 })
  s.fake.emit('partition.eof', { topic: TOPIC, partition: 0, offset: 5 })
  t.same(await s.consumer.drainToEnd(Date.now() + 1000), { drained: true, unread: 0 })
  t.equal(s.counters.consumed, 0)
  await s.consumer.close(10)
})

t.test('drainToEnd does not wait for a partition revoked meanwhile', async t => {
  const s = setup({ batchSize: 2, maxInFlight: 1 })
  await started(s, [0, 1])
  s.fake.write(TOPIC, 0, 6)
  await waitUntil(() => s.held.length === 1, Date.now() + 5000)
  const draining = s.consumer.drainToEnd(Date.now() + 5000)
  s.fake.rebalance(REVOKE, [{ topic: TOPIC, partition: 0 }, { topic: TOPIC, partition: 1 }])
  s.fake.rebalance(ASSIGN, [{ topic: TOPIC, partition: 1 }])
  s.held[0]?.finish()
  t.same(await draining, { drained: true, unread: 0 }, 'partition 0 is the new owner\'s to read')
  for (const h of s.held) h.finish()
  await s.consumer.close(10)
})
