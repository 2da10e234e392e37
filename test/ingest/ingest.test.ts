// End to end on real components: the simulator's ws server → the ingest role →
// the local Kafka. Counts are exact: what the simulator says it sent is what the
// topic holds, no more, no less.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { singleObjectFingerprint, TradeDecoder } from '../../daemon/core/avro-codec.js'
import { identityKey } from '../../daemon/core/frame.js'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { startIngest, type Ingest } from '../../daemon/ingest.js'
import { createLogger } from '../../daemon/log.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'
import { FinnhubSimulator, type SimulatorOptions } from '../../tools/simulator/server.js'
import { Registry } from 'prom-client'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, readTopic, uniqueName, waitFor } from '../fixtures/kafka.js'
import { BAD_FRAMES, BAD_TRADES, badTrades } from '../fixtures/frame-corpus.js'

t.setTimeout(240_000)

const { kafkaBootstrap } = testEndpoints()
const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const decoder = new TradeDecoder(type, { byFingerprint: new Map([[singleObjectFingerprint(type).toString('hex'), type]]), bySchemaId: new Map() })
const TOKEN = 'test-token'
const SYMBOLS = ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT', 'AAPL', 'MSFT']

interface Harness {
  sim: FinnhubSimulator
  ingest: Ingest
  topic: string
  logs: Array<Record<string, unknown>>
}

async function harness (t: Test, simOpts: Partial<SimulatorOptions>, overrides: { finnhub?: Partial<Config['finnhub']>, kafka?: Partial<Config['kafka']> } = {}): Promise<Harness> {
  const sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: 2000, keepSent: true, seed: 7, ...simOpts })
  await sim.start()
  const topic = uniqueName('finnhubd-ingest-test')
  await createTopic(kafkaBootstrap, topic)
  const config = validateConfig({
    finnhub: { url: sim.url, token: TOKEN, symbols: SYMBOLS, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 500, ...overrides.finnhub },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, lingerMs: 2, statsIntervalMs: 100, ...overrides.kafka }
  })
  const logs: Array<Record<string, unknown>> = []
  const log = createLogger({ level: 'info', write: line => logs.push(JSON.parse(line) as Record<string, unknown>), limitIntervalMs: 0 })
  const ingest = await startIngest(config, { log, registry: new Registry() })
  t.teardown(async () => {
    await ingest.stop(Date.now() + 5_000)
    await sim.close()
  })
  return { sim, ingest, topic, logs }
}

function decodeAll (t: Test, messages: Array<{ key?: unknown, value: Buffer | null }>): TradeRecord[] {
  const trades: TradeRecord[] = []
  const problems: string[] = []
  for (const m of messages) {
    const result = decoder.decode(m.value)
    if (!result.ok) { problems.push(`undecodable: ${result.detail}`); continue }
    if (String(m.key) !== result.trade.s) problems.push(`key ${String(m.key)} for a ${result.trade.s} trade`)
    trades.push(result.trade)
  }
  t.same(problems.slice(0, 5), [], `all ${messages.length} records decode and are keyed by their symbol`)
  return trades
}

const sortedKeys = (trades: ReadonlyArray<Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c'>>): string[] => trades.map(identityKey).sort()

t.test('N trades sent → exactly N records, keyed by symbol, decodable, with their content', async t => {
  const N = 5000
  const { sim, ingest, topic } = await harness(t, { maxTotalTrades: N, ratePerSec: 5000, duplicateFillRatio: 0.05, zeroVolumeRatio: 0.02, nullConditionsRatio: 0.2 })
  t.ok(await waitFor(() => ingest.counters.delivered >= N, 60_000), 'all records acknowledged')
  t.equal(sim.stats().tradesSent, N, 'the simulator sent N')
  const messages = await readTopic(kafkaBootstrap, topic, { expect: N, settleMs: 1500 })
  t.equal(messages.length, N, 'exactly N records in the topic')
  const trades = decodeAll(t, messages)
  t.same(sortedKeys(trades), sortedKeys(sim.sent()), 'the same trades, identical fills included')
  const dupes = trades.filter(tr => tr.ordinal > 0)
  t.ok(dupes.length > 0, 'identical fills in one frame got ordinals > 0')
  t.ok(trades.some(tr => tr.v === 0) && trades.some(tr => tr.c === null), 'v = 0 and null c travel')
  t.equal(ingest.counters.dropped.queue_full + ingest.counters.dropped.delivery_failed, 0, 'nothing dropped')
})

t.test('a dropped connection reconnects, re-subscribes, and loses nothing sent after it', async t => {
  const { sim, ingest, topic } = await harness(t, { ratePerSec: 3000 })
  t.ok(await waitFor(() => ingest.counters.delivered > 500), 'trades flowing')
  sim.dropConnections()
  // Frames the simulator had queued on the dropped socket die with it (terminate
  // discards them): what must arrive is everything sent after the drop.
  const sentAtDrop = sim.stats().tradesSent
  t.ok(await waitFor(() => ingest.counters.reconnects.closed + ingest.counters.reconnects.error >= 1), 'the drop was seen')
  t.ok(await waitFor(() => ingest.client.connected && sim.stats().connections.total >= 2), 'reconnected')
  const deliveredAtReconnect = ingest.counters.delivered
  t.ok(await waitFor(() => ingest.counters.delivered > deliveredAtReconnect + 500), 'trades flow again: the client re-subscribed')
  t.equal(sim.stats().subscribeCount, SYMBOLS.length * 2, 'every symbol subscribed again on the new connection')
  sim.pause()
  await ingest.client.close()
  const sent = sim.stats().tradesSent
  const received = ingest.counters.tradesReceived
  t.ok(received >= sent - sentAtDrop && received <= sent, `every trade sent after the drop was received (${received} of ${sent}, ${sent - sentAtDrop} after the drop)`)
  t.ok(await waitFor(() => ingest.counters.delivered === received, 30_000), `all ${received} trades received were acknowledged`)
  const messages = await readTopic(kafkaBootstrap, topic, { expect: received, settleMs: 1500 })
  t.equal(messages.length, received, 'nothing received lost, nothing duplicated')
})

t.test('a silent stall triggers the watchdog and the stream resumes', async t => {
  const { sim, ingest, logs } = await harness(t, { ratePerSec: 1000 }, { finnhub: { staleAfterMs: 400 } })
  t.ok(await waitFor(() => ingest.counters.delivered > 100), 'trades flowing')
  sim.stall(3000)
  t.ok(await waitFor(() => ingest.counters.reconnects.stale >= 1, 10_000), 'the watchdog reconnected')
  t.ok(logs.some(l => /looks stalled/.test(String(l['msg']))), 'and said why')
  const before = ingest.counters.delivered
  t.ok(await waitFor(() => ingest.counters.delivered > before + 100, 20_000), 'trades flow again after the stall')
})

t.test('a bad token is a clear error with a long backoff, not a hot loop', async t => {
  const { sim, ingest, logs } = await harness(t, { ratePerSec: 100 }, { finnhub: { token: 'wrong', unauthorizedBackoffMs: 60_000 } })
  t.ok(await waitFor(() => ingest.counters.reconnects.unauthorized === 1), 'one 401')
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.equal(sim.stats().unauthorized, 1, 'no retry within the backoff')
  t.equal(ingest.client.connected, false)
  const line = logs.find(l => /refused the API token/.test(String(l['msg'])))
  t.ok(line, 'the log names the cause')
  t.match(String(line?.['msg']), /FINNHUB_TOKEN/, 'and what to fix')
  t.ok(Number(line?.['retryInMs']) >= 54_000, 'and the long wait')
  t.notMatch(JSON.stringify(logs), /wrong/, 'the token is never logged')
})

t.test('429 on the handshake backs off, then connects', async t => {
  const { sim, ingest } = await harness(t, { ratePerSec: 100 }, { finnhub: { reconnectMaxDelayMs: 300 } })
  t.ok(await waitFor(() => ingest.client.connected), 'connected first')
  sim.rejectNextHandshakes(429, 1)
  sim.dropConnections()
  t.ok(await waitFor(() => ingest.counters.reconnects.rate_limited === 1), 'the 429 was counted')
  t.ok(await waitFor(() => ingest.client.connected), 'connected again after the backoff')
})

t.test('malformed frames and bad trades are counted per reason; every good trade arrives', async t => {
  const { sim, ingest, topic } = await harness(t, { ratePerSec: 2000 })
  t.ok(await waitFor(() => ingest.counters.delivered > 200), 'trades flowing')
  sim.sendMalformed(BAD_FRAMES.map(f => f.data))
  const now = Date.now()
  for (const bad of badTrades(now)) sim.sendRaw(`{"type":"trade","data":[{"s":"GOOD","p":1.5,"t":${now},"v":2},${bad.json}]}`)
  sim.sendRaw('{"type":"news","data":[]}')
  sim.sendError('Invalid symbol BINANCE:FOO')
  t.ok(await waitFor(() => ingest.counters.framesError === 1 && ingest.counters.framesOther === 1), 'error and unknown frames counted')
  const expectFrames: Record<string, number> = {}
  for (const f of BAD_FRAMES) expectFrames[f.reason] = (expectFrames[f.reason] ?? 0) + 1
  const expectTrades: Record<string, number> = {}
  for (const b of BAD_TRADES) expectTrades[b.reason] = (expectTrades[b.reason] ?? 0) + 1
  for (const [reason, n] of Object.entries(expectFrames)) t.equal(ingest.counters.malformed[reason as keyof typeof ingest.counters.malformed], n, `frames: ${reason}`)
  for (const [reason, n] of Object.entries(expectTrades)) t.equal(ingest.counters.tradesRejected[reason as keyof typeof ingest.counters.tradesRejected], n, `trades: ${reason}`)
  sim.pause()
  const sent = sim.stats().tradesSent
  const good = sent + BAD_TRADES.length // each raw frame carried one good trade
  t.ok(await waitFor(() => ingest.counters.delivered === good, 30_000), `all ${good} good trades acknowledged`)
  const messages = await readTopic(kafkaBootstrap, topic, { expect: good, settleMs: 1500 })
  t.equal(messages.length, good, 'the topic holds every good trade and nothing else')
  t.equal(decodeAll(t, messages).filter(tr => tr.s === 'GOOD').length, BAD_TRADES.length, 'the good trades beside bad ones arrived')
})

t.test('an oversized frame is refused, counted, and the client reconnects', async t => {
  const { sim, ingest } = await harness(t, { ratePerSec: 500 }, { finnhub: { maxPayloadBytes: 64 * 1024 } })
  t.ok(await waitFor(() => ingest.counters.delivered > 50), 'trades flowing')
  sim.sendRaw(`{"type":"trade","data":[${Array.from({ length: 2000 }, () => `{"s":"AAPL","p":1,"t":${Date.now()},"v":1}`).join(',')}]}`)
  t.ok(await waitFor(() => ingest.counters.malformed.oversized === 1), 'counted as oversized')
  t.ok(await waitFor(() => ingest.counters.reconnects.oversized === 1 && ingest.client.connected), 'reconnected')
})

t.test('symbol changes are applied as diffs on the live socket', async t => {
  const { sim, ingest } = await harness(t, { ratePerSec: 2000 })
  t.ok(await waitFor(() => ingest.client.connected && sim.stats().subscribeCount === SYMBOLS.length))
  const diff = ingest.client.setSymbols(['AAPL', 'MSFT', 'NVDA'])
  t.same(diff, { added: ['NVDA'], removed: ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT'] })
  t.ok(await waitFor(() => sim.stats().subscribeCount === SYMBOLS.length + 1 && sim.stats().unsubscribeCount === 2), 'one subscribe, two unsubscribes')
  const seen = sim.stats().bySymbol['NVDA'] ?? 0
  t.ok(await waitFor(() => (sim.stats().bySymbol['NVDA'] ?? 0) > seen + 10), 'the new symbol streams')
})
