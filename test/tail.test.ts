// `finnhubd tail` on the real Kafka: decoded lines from the beginning or live from
// the end, a symbol filter, the dead-letter topic with its reasons, usage errors.
import t from 'tap'
import { join } from 'node:path'
import { main } from '../daemon/cli.js'
import { validateConfig } from '../daemon/config/load.js'
import { DeadLetterProducer } from '../daemon/kafka/dead-letter.js'
import { createLogger } from '../daemon/log.js'
import { createProcessCounters } from '../daemon/metrics/process.js'
import { testEndpoints } from './fixtures/endpoints.js'
import { createTopic, uniqueName, waitFor } from './fixtures/kafka.js'
import { encodeTrades, produceValues, syntheticTrades } from './fixtures/pipeline.js'

t.setTimeout(120_000)

const { kafkaBootstrap } = testEndpoints()

async function tail (args: string[], env: Record<string, string>, stopWhen?: (out: string[]) => boolean): Promise<{ code: number, out: string[], err: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(['tail', ...args], {
    env,
    out: l => out.push(l),
    err: l => err.push(l),
    signals: async () => {
      if (stopWhen === undefined) return await new Promise<string>(() => {})
      await waitFor(() => stopWhen(out), 60_000)
      return 'SIGINT'
    }
  })
  return { code, out, err }
}

t.test('from the beginning: one decoded line a record; --symbol filters; --max stops', async t => {
  const topic = uniqueName('finnhubd-tail')
  await createTopic(kafkaBootstrap, topic, 1)
  const start = Date.parse('2026-12-01T10:00:00Z')
  await produceValues(kafkaBootstrap, topic, encodeTrades(syntheticTrades(6, ['AAPL', 'MSFT'], start, 1000)))
  const env = { KAFKA_BOOTSTRAP_SERVERS: kafkaBootstrap, KAFKA_TOPIC: topic }
  const all = await tail(['--from-beginning', '--max', '6'], env)
  t.equal(all.code, 0)
  t.equal(all.out.length, 6)
  t.match(all.out[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}p0@0 {2}AAPL {2}100 × 0 {2}c=null {2}t=2026-12-01T10:00:00\.000Z$/)
  t.match(all.out[1], /p0@1 {2}MSFT .* t=2026-12-01T10:00:01\.000Z$/)
  t.match(all.err[0], new RegExp(`finnhubd tail: ${topic} from the beginning \\(Ctrl-C stops\\)`))
  const msft = await tail(['--from-beginning', '--symbol', 'MSFT', '--max', '3'], env)
  t.same(msft.out.map(l => l.split('  ')[2]), ['MSFT', 'MSFT', 'MSFT'])
  t.same(msft.out.map(l => l.split('  ')[1]), ['p0@1', 'p0@3', 'p0@5'])
})

t.test('live from the end: only what comes after it started, until stopped', async t => {
  const topic = uniqueName('finnhubd-tail-live')
  await createTopic(kafkaBootstrap, topic, 2)
  await produceValues(kafkaBootstrap, topic, encodeTrades(syntheticTrades(4, ['AAPL'])))
  const env = { KAFKA_BOOTSTRAP_SERVERS: kafkaBootstrap, KAFKA_TOPIC: topic }
  const running = tail([], env, out => out.length >= 3)
  await new Promise(resolve => setTimeout(resolve, 2500))
  await produceValues(kafkaBootstrap, topic, encodeTrades(syntheticTrades(3, ['BINANCE:BTCUSDT'])))
  const { code, out } = await running
  t.equal(code, 0, 'a stop signal ends it with 0')
  t.equal(out.length, 3, 'the earlier records are not shown')
  t.ok(out.every(l => l.includes('  BINANCE:BTCUSDT  ')))
})

t.test('--dlq: the dead-letter topic, each record with why it was set aside and where it came from', async t => {
  const topic = uniqueName('finnhubd-tail-src')
  const dlqTopic = `${topic}.dlq`
  await createTopic(kafkaBootstrap, dlqTopic, 1)
  const config = validateConfig({ kafka: { bootstrapServers: [kafkaBootstrap], topic, deadLetterTopic: dlqTopic } })
  const dlq = new DeadLetterProducer(config.kafka, createLogger({ level: 'fatal' }), createProcessCounters())
  await dlq.connect(10_000)
  await dlq.send({ topic, partition: 2, offset: 41, key: 'AAPL', value: Buffer.from('junk'), timestamp: Date.now(), reason: 'unknown_framing', detail: 'first byte 0x6a is neither' })
  await dlq.close(5_000)
  const dir = t.testdir({ 'c.json': JSON.stringify({ kafka: { bootstrapServers: [kafkaBootstrap], topic, deadLetterTopic: dlqTopic } }) })
  const r = await tail(['--dlq', '--from-beginning', '--max', '1'], { FINNHUBD_CONFIG: join(dir, 'c.json') })
  t.equal(r.code, 0)
  t.match(r.out[0], new RegExp(`p0@0 {2}key=AAPL {2}4 bytes {2}unknown_framing: first byte 0x6a is neither {2}\\(from ${topic} p2@41\\)$`))
})

t.test('usage errors exit 2 and say what is wrong', async t => {
  const bad = await tail(['--symbol', 'not a symbol'], {})
  t.equal(bad.code, 2)
  t.match(bad.err.join('\n'), /--symbol not a symbol is not a Finnhub symbol/)
  const max = await tail(['--max', '0'], {})
  t.equal(max.code, 2)
  t.match(max.err.join('\n'), /--max takes a whole number ≥ 1, got "0"/)
  const unknown = await tail(['--follow'], {})
  t.equal(unknown.code, 2)
  t.match(unknown.err.join('\n'), /Unknown option '--follow'/)
})
