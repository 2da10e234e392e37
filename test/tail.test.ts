// `finnhubd tail` on the real Kafka: decoded lines from the beginning or live from
// the end, a symbol filter, the dead-letter topic with its reasons, usage errors; and
// (no Kafka) what a hostile producer puts in keys, headers and strings never reaches
// the terminal as control characters: escapeTerminal, property-based.
import t from 'tap'
import fc from 'fast-check'
import { escapeTerminal, jsonForTerminal, unescapeTerminal } from '../daemon/core/escape.js'
import { formatRecord } from '../daemon/tail.js'
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

// eslint-disable-next-line no-control-regex -- what must never reach a terminal
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.array(fc.constantFrom('\u001b[2J', '\u001b]0;pwned\u0007', '\u009b31m', '\u202e', '\u2066', '\\u001b', '\\', '\u007f', '\r', 'ok', 'é'), { maxLength: 8 }).map(p => p.join(''))
)

t.test('escapeTerminal: no control character or bidi override survives; printable ASCII stays; reversible', async t => {
  fc.assert(fc.property(hostileText, s => {
    const e = escapeTerminal(s)
    if (UNSAFE.test(e)) throw new Error(`a control character survived in ${JSON.stringify(e)}`)
    if (unescapeTerminal(e) !== s) throw new Error(`not reversible: ${JSON.stringify(s)}`)
    if (UNSAFE.test(jsonForTerminal([s])) || (JSON.parse(jsonForTerminal([s])) as string[])[0] !== s) throw new Error(`jsonForTerminal changed ${JSON.stringify(s)}`)
  }), { seed: 77, numRuns: 2_000 })
  fc.assert(fc.property(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).filter(c => c !== 0x5c).map(c => String.fromCharCode(c)) }), s => escapeTerminal(s) === s), { seed: 77 })
  fc.assert(fc.property(hostileText, hostileText, (a, b) => a === b || escapeTerminal(a) !== escapeTerminal(b)), { seed: 77, numRuns: 2_000 })
  t.equal(escapeTerminal('\u001b[31mred\u202e'), '\\u001b[31mred\\u202e')
  t.equal(escapeTerminal('\\u001b'), '\\\\u001b', 'a literal backslash-u is not an escape')
})

t.test('formatRecord escapes everything a producer chose: key, headers, details, symbol, conditions', async t => {
  const base = { topic: 't', partition: 0, offset: 1, timestamp: 0, size: 4 }
  const dlq = formatRecord({ ...base, key: 'K\u001b]0;x\u0007', trade: null, undecodable: null, headers: { 'finnhubd-reason': 'r\u009b', 'finnhubd-detail': 'd\u202e', 'finnhubd-source-topic': 's\u001b[2J' } })
  const undecodable = formatRecord({ ...base, key: null, trade: null, undecodable: { reason: 'invalid_body', detail: 'x\u0000\u2069' }, headers: {} })
  const trade = formatRecord({ ...base, key: null, undecodable: null, headers: {}, trade: { s: 'AAPL\u001b[8m', p: 1, v: 2, t: 0, c: ['\u009b1', '\u001b'], ingest_ts: 0, ordinal: 0 } as never })
  for (const line of [dlq, undecodable, trade]) t.notOk(UNSAFE.test(line), line)
  t.match(dlq, /key=K\\u001b\]0;x\\u0007 .* r\\u009b: d\\u202e {2}\(from s\\u001b\[2J p\?@\?\)$/)
  t.match(trade, /AAPL\\u001b\[8m .* c=\["\\u009b1","\\u001b"\]/)
  // A trade time or record timestamp no Date can hold (a long from any producer) is shown, not thrown.
  const far = formatRecord({ ...base, timestamp: 9e15, key: null, undecodable: null, headers: {}, trade: { s: 'AAPL', p: 1, v: 2, t: -9e18, c: null, ingest_ts: 0, ordinal: 0 } as never })
  t.match(far, /^9000000000000000 \(out of range\) .* t=-9000000000000000000 \(out of range\)/)
})

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
