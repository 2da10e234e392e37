// End to end on real components: the simulator's ws server → the daemon (both
// roles) → the local Kafka → the worker pool → the local Cassandra. Exactly the
// trades sent are stored, identical fills stay apart, candles equal their
// recomputation from the stored trades, and a replay of the whole topic changes
// nothing. Poison records go to the dead-letter topic, the records after them are
// stored. Long on purpose: it waits for real Kafka and Cassandra.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { identityKey } from '../../daemon/core/frame.js'
import { tradeId } from '../../daemon/core/transform.js'
import { startDaemon } from '../../daemon/daemon.js'
import { validateConfig } from '../../daemon/config/load.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { readTopic } from '../fixtures/kafka.js'
import {
  candleDifferences, cassandraClient, committedOffsets, encodeTrades, pipelineConfig, produceValues,
  committedTotal, expectedTradeIds, readCandles, readTrades, recomputeCandles, syntheticTrades, waitCommitted
} from '../fixtures/pipeline.js'

t.setTimeout(300_000)

const { kafkaBootstrap } = testEndpoints()
const quietLog = (): ReturnType<typeof createLogger> => createLogger({ level: 'warn', write: l => { process.stderr.write(l + '\n') } })
const never = new Promise<string>(() => {})

t.test('simulator → Kafka → workers → Cassandra: exactly the trades sent; candles recompute; a replay changes nothing', async t => {
  const N = 6000
  const SYMBOLS = ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT', 'AAPL', 'MSFT']
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 4000, keepSent: true, maxTotalTrades: N, seed: 11, duplicateFillRatio: 0.05, zeroVolumeRatio: 0.02, nullConditionsRatio: 0.2 })
  await sim.start()
  t.teardown(() => sim.close())
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: SYMBOLS } })
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], log: quietLog(), stopSignal: never })
  t.ok(await waitCommitted(config, N), `all ${N} records stored and committed`)
  t.equal(sim.stats().tradesSent, N)
  await daemon.stop('test')

  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const sent = sim.sent()
  const times = sent.map(s => s.t)
  const stored = await readTrades(client, config, SYMBOLS, times)
  const expected = expectedTradeIds(sent)
  t.same(stored.map(r => r.trade_id).sort(), [...expected].sort(),
    `exactly the trades sent, by deterministic id: ${expected.size} rows for ${N} trades (identical trades of different frames are one trade re-sent)`)
  const key = (x: { s: string, p: number, t: number, v: number, c: string[] | null }): string => identityKey(x)
  t.same([...new Set(stored.map(r => key({ s: r.symbol, p: r.price, t: r.trade_ts, v: r.volume, c: r.conditions })))].sort(), [...new Set(sent.map(key))].sort(),
    'with their content, columns renamed (s→symbol, p→price, t→trade_ts, v→volume, c→conditions)')
  t.ok(stored.length > new Set(sent.map(key)).size, 'identical fills in one frame are kept apart (more rows than distinct contents)')
  t.ok(stored.every(r => r.ingest_ts >= r.trade_ts - 5000 && r.process_ts >= r.ingest_ts), 'ingest_ts and process_ts are set, in order')
  t.ok(stored.some(r => r.conditions === null) && stored.some(r => r.volume === 0), 'null conditions and v = 0 updates are stored')

  const candles = await readCandles(client, config, SYMBOLS, times)
  t.ok(candles.length >= SYMBOLS.length, `${candles.length} candles`)
  t.same(candleDifferences(candles, recomputeCandles(stored)), [], 'every candle equals its recomputation from trades')
  t.same(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3).then(committedTotal), N,
    'every record committed, once stored')

  // Replay the whole topic with offsets reset (a new group reads from the beginning).
  const replay = validateConfig({ ...JSON.parse(JSON.stringify(config)), kafka: { ...config.kafka, groupId: `${config.kafka.groupId}_replay` } })
  const again = await startDaemon({ config: replay, roles: ['process'], log: quietLog(), stopSignal: never })
  t.ok(await waitCommitted(replay, N), 'the replay read and stored everything')
  await again.stop('test')
  const afterReplay = await readTrades(client, config, SYMBOLS, times)
  t.equal(afterReplay.length, stored.length, 'the replay added no row')
  t.same(candleDifferences(await readCandles(client, config, SYMBOLS, times), candles), [], 'and changed no candle')
})

t.test('a poison record goes to the dead-letter topic with its reason; the records after it are stored', async t => {
  const config = await pipelineConfig()
  const good = syntheticTrades(300)
  const encoded = encodeTrades(good)
  const poison = [
    { key: 'AAPL', value: Buffer.from('{"s":"AAPL"}') },
    { key: 'AAPL', value: Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 7), Buffer.from([1, 2, 3])]) },
    { key: 'MSFT', value: (encoded[0]?.value ?? Buffer.alloc(0)).subarray(0, 14) }
  ]
  // Poison in the middle of each symbol's stream: what follows it must still be stored.
  await produceValues(kafkaBootstrap, config.kafka.topic, [...encoded.slice(0, 150), ...poison, ...encoded.slice(150)])
  const daemon = await startDaemon({ config, roles: ['process'], log: quietLog(), stopSignal: never })
  const proc = daemon.process!
  t.ok(await waitCommitted(config, good.length + poison.length, 60_000), 'good rows stored, poison dead-lettered, all committed')
  t.same(proc.counters.poison, { empty: 0, unknown_framing: 1, truncated: 0, unknown_schema: 1, invalid_body: 1, invalid_trade: 0, internal: 0, cassandra_rejected: 0 }, 'counted by reason')
  const metrics = await daemon.registry.metrics()
  t.match(metrics, /finnhubd_poison_records_total\{reason="unknown_framing"\} 1/)
  t.match(metrics, /finnhubd_dlq_produced_total 3/)
  await daemon.stop('test')
  const dlq = await readTopic(kafkaBootstrap, config.kafka.deadLetterTopic, { expect: poison.length, settleMs: 500 })
  t.equal(dlq.length, poison.length, 'every poison record is in the dead-letter topic')
  const headers = dlq.map(m => Object.assign({}, ...(m.headers ?? []).map(h => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)])))) as Record<string, string>)
  t.same(headers.map(h => h['finnhubd-reason']).sort(), ['invalid_body', 'unknown_framing', 'unknown_schema'])
  t.ok(headers.every(h => h['finnhubd-source-topic'] === config.kafka.topic && /^\d+$/.test(h['finnhubd-source-offset'] ?? '')), 'with where it came from')
  t.same(dlq.map(m => String(m.value)).sort(), poison.map(p => String(p.value)).sort(), 'the value unchanged')
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const stored = await readTrades(client, config, ['AAPL', 'MSFT', 'BINANCE:BTCUSDT'], good.map(g => g.t))
  t.same(stored.map(r => r.trade_id).sort(), good.map(tradeId).sort(), 'every good record is stored, those after the poison too')
  t.same(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3).then(committedTotal),
    good.length + poison.length, 'committed past the poison, and no further')
})

t.test('`finnhubd process` and `run` refuse an unreachable Cassandra clearly', async t => {
  const { main } = await import('../../daemon/cli.js')
  const err: string[] = []
  const code = await main(['process'], {
    env: { KAFKA_BOOTSTRAP_SERVERS: kafkaBootstrap, KAFKA_TOPIC: `finnhubd.unreachable.${randomUUID().slice(0, 8)}`, CASSANDRA_HOST: '127.0.0.1', CASSANDRA_PORT: '1' },
    out: () => {},
    err: l => err.push(l),
    signals: async () => await never
  })
  t.equal(code, 1)
  t.match(err.join('\n'), /cannot reach Cassandra at 127\.0\.0\.1:1 .*npm run stack -- up.*\[FINNHUBD_ERR_CASSANDRA_UNREACHABLE\]/)
})

t.test('candle writes are shared: at most one per minute per candles.flushIntervalMs (and per longer period per periodFlushIntervalMs), and the candles still recompute', async t => {
  const N = 3000
  const SYMBOLS = ['AAPL', 'MSFT']
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 3000, keepSent: true, maxTotalTrades: N, seed: 12, maxTradesPerFrame: 5 })
  await sim.start()
  t.teardown(() => sim.close())
  // A long interval, so that the whole run fits in about one of them.
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: SYMBOLS }, candles: { flushIntervalMs: 5000, periodFlushIntervalMs: 5000 }, workers: { poolSize: 1, batchSize: 100 } })
  const started = Date.now()
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], log: quietLog(), stopSignal: never })
  t.ok(await waitCommitted(config, N), `all ${N} records stored and committed`)
  const intervals = Math.ceil((Date.now() - started) / 5000)
  const counters = daemon.process?.counters
  await daemon.stop('test')
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const sent = sim.sent()
  const stored = await readTrades(client, config, SYMBOLS, sent.map(s => s.t))
  // Every candle of every resolution the trades fall in: a minute, and its 5 m, 15 m, 1 h and 1 d periods.
  const minutes = new Set(stored.map(r => `${r.symbol}/${Math.floor(r.trade_ts / 60_000)}`)).size
  const periods = new Set(stored.flatMap(r => [300_000, 900_000, 3_600_000, 86_400_000].map(ms => `${r.symbol}/${ms}/${Math.floor(r.trade_ts / ms)}`))).size
  t.ok((counters?.batches ?? 0) >= 20, `many batches (${counters?.batches ?? 0})`)
  t.ok((counters?.candlesWritten ?? Infinity) <= (minutes + periods) * (1 + intervals),
    `${counters?.candlesWritten ?? 0} candle writes for ${minutes} minute(s) and ${periods} longer period(s) of ${counters?.batches ?? 0} batches over ${intervals} interval(s): the first write, then at most one per interval`)
  t.ok((counters?.candlesWritten ?? Infinity) < (counters?.batches ?? 0), 'fewer writes than batches')
  t.same(candleDifferences(await readCandles(client, config, SYMBOLS, sent.map(s => s.t)), recomputeCandles(stored)), [], 'every candle equals its recomputation')
})
