// The dead-letter producer against the real broker: a poison record too large to copy
// (its headers push it past the size limit) must not be retried forever, which would
// stall its partition; it is copied without key and value, with headers saying so.
import t from 'tap'
import { validateConfig } from '../../daemon/config/load.js'
import { DeadLetterProducer } from '../../daemon/kafka/dead-letter.js'
import { createLogger } from '../../daemon/log.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, readTopic, uniqueName } from '../fixtures/kafka.js'

const { kafkaBootstrap } = testEndpoints()

t.test('an oversized poison record is dead-lettered as headers only; a normal one in full', async t => {
  const dlqTopic = uniqueName('finnhubd.dlq-test')
  await createTopic(kafkaBootstrap, dlqTopic, 1)
  const kafka = validateConfig({ kafka: { bootstrapServers: [kafkaBootstrap], deadLetterTopic: dlqTopic } }).kafka
  const counters = createProcessCounters()
  const lines: string[] = []
  const dlq = new DeadLetterProducer(kafka, createLogger({ level: 'warn', write: l => lines.push(l) }), counters)
  await dlq.connect(15_000)
  const big = Buffer.alloc(1_200_000, 0x41)
  const base = { topic: 'finnhub.trades', partition: 2, timestamp: Date.now(), reason: 'unknown_framing' as const, detail: 'first byte 0x41 is neither…' }
  await dlq.send({ ...base, offset: 7, key: 'AAPL', value: big })
  await dlq.send({ ...base, offset: 8, key: 'AAPL', value: Buffer.from('small') })
  await dlq.close(5_000)
  t.equal(counters.deadLettered, 2, 'both acknowledged')
  const records = await readTopic(kafkaBootstrap, dlqTopic, { expect: 2, settleMs: 500 })
  const headers = records.map(m => Object.assign({}, ...(m.headers ?? []).map(h => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)])))) as Record<string, string>)
  t.same(records.map(r => r.value?.length ?? null), [null, 5], 'the big one without its value, the small one whole')
  t.equal(records[0]?.key ?? null, null, 'and without its key')
  t.equal(headers[0]?.['finnhubd-omitted'], 'value 1200000 bytes, key 4 bytes: too large to copy')
  t.equal(headers[0]?.['finnhubd-source-offset'], '7', 'the source offset still points at the original')
  t.equal(headers[0]?.['finnhubd-reason'], 'unknown_framing')
  t.equal(headers[1]?.['finnhubd-omitted'], undefined)
  t.ok(lines.some(l => /too large to copy/.test(l)), 'logged')
})
