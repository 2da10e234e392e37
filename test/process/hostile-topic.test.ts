// The process role against a hostile topic, on the real stack (issue 16). The
// trades topic is shared infrastructure: anything may be in it. Each class below
// once broke the daemon: t = 9e15 threw in the worker and its batch was retried
// forever (the partition stalled, every restart hit it again), a 70,000-byte symbol
// made the driver throw encoding the partition key (retried forever too), and
// NaN/∞/0/negative prices, negative or NaN volumes, empty symbols and symbols with
// control characters were stored and folded into candles (NaN VWAP). Good trades
// are produced between them; afterwards the group must have committed everything,
// every good trade be stored once and nothing else, the candles recompute, every
// hostile record be in the dead-letter topic once with its reason (and the field
// named), and the role stop with nothing abandoned. One subtest per class, so a
// regression names its input.
import t from 'tap'
import type Kafka from 'node-rdkafka'
import { Registry } from 'prom-client'
import { POISON_REASONS, type PoisonReason } from '../../daemon/core/avro-codec.js'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'
import { tradeId } from '../../daemon/core/transform.js'
import { SYMBOL_PATTERN } from '../../daemon/core/validate.js'
import { candleOfRow, tradeOfRow, type StoredCandle, type StoredTrade } from '../../daemon/cassandra/query.js'
import { createLogger } from '../../daemon/log.js'
import { StageLatency } from '../../daemon/metrics/latency.js'
import { startProcess } from '../../daemon/process.js'
import { metricByLabel } from '../../tools/chaos/harness.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { readTopic } from '../fixtures/kafka.js'
import {
  candleDifferences, cassandraClient, committedOffsets, committedTotal, encodeTrades, pipelineConfig, produceValues,
  recomputeCandles, syntheticTrades, waitCommitted
} from '../fixtures/pipeline.js'

t.setTimeout(300_000)

const { kafkaBootstrap } = testEndpoints()
const SYMBOLS = ['AAPL', 'MSFT', 'BINANCE:BTCUSDT']
const YEAR_MS = 365 * 86_400_000

interface HostileCase {
  name: string
  key: string
  value: Buffer
  reason: PoisonReason
  /** For invalid_trade: the field `finnhubd-detail` must name. */
  field?: string
  /** For valid Avro: the trade, whose id must not be stored. */
  trade?: TradeRecord
}

/** Records that decode as Avro but are no trade: one bad field each, on top of a valid trade. */
function invalidTrades (now: number): Array<{ name: string, field: string, trade: TradeRecord }> {
  let i = 0
  // Distinct valid trades to spoil (distinct encodings: the dead-letter copies are told apart by value).
  const base = (): TradeRecord => { i++; return { s: 'AAPL', p: 101.25, t: now - 60_000 + i, v: 3, c: ['1'], ingest_ts: now - 60_000 + i + 2, ordinal: 0 } }
  return [
    { name: 't = 9e15 (beyond what a Date holds)', field: 't', trade: { ...base(), t: 9e15 } },
    { name: 'a 70,000-byte symbol (over the partition key limit)', field: 's', trade: { ...base(), s: 'A'.repeat(70_000) } },
    { name: 'p = NaN', field: 'p', trade: { ...base(), p: NaN } },
    { name: 'p = Infinity', field: 'p', trade: { ...base(), p: Infinity } },
    { name: 'p = 0', field: 'p', trade: { ...base(), p: 0 } },
    { name: 'p = -1', field: 'p', trade: { ...base(), p: -1 } },
    { name: 'v = -1', field: 'v', trade: { ...base(), v: -1 } },
    { name: 'v = NaN', field: 'v', trade: { ...base(), v: NaN } },
    { name: 's = empty', field: 's', trade: { ...base(), s: '' } },
    { name: 's = "AAPL\\u0000"', field: 's', trade: { ...base(), s: 'AAPL\u0000' } },
    { name: 's = "AA\\nPL"', field: 's', trade: { ...base(), s: 'AA\nPL' } },
    { name: 'ingest_ts ten years ahead', field: 'ingest_ts', trade: { ...base(), ingest_ts: now + 10 * YEAR_MS } },
    { name: 'ordinal = -1', field: 'ordinal', trade: { ...base(), ordinal: -1 } },
    { name: '65 condition codes', field: 'c', trade: { ...base(), c: Array.from({ length: 65 }, (_, k) => String(k)) } }
  ]
}

function hostileCases (now: number, sampleRecord: Buffer): HostileCase[] {
  const valid = invalidTrades(now).map(({ name, field, trade }) => {
    const [encoded] = encodeTrades([trade])
    // Keyed by the symbol, as the ingest keys records, where a key can hold it: node-rdkafka
    // passes a string key as a C string (cut at a NUL), so control characters stay out of it.
    const key = SYMBOL_PATTERN.test(trade.s) || trade.s.length > 64 ? trade.s : 'AAPL'
    return { name, key, value: (encoded as { value: Buffer }).value, reason: 'invalid_trade' as const, field, trade }
  })
  return [
    ...valid,
    { name: 'JSON text instead of Avro', key: 'AAPL', value: Buffer.from('{"s":"AAPL","p":1,"t":1,"v":1}'), reason: 'unknown_framing' },
    { name: 'random bytes', key: 'MSFT', value: Buffer.from([0x42, 0x13, 0x37, 0xff, 0x00, 0x01, 0x02]), reason: 'unknown_framing' },
    { name: 'a record cut inside its single-object header', key: 'AAPL', value: sampleRecord.subarray(0, 6), reason: 'truncated' },
    { name: 'a record cut inside its Avro body', key: 'MSFT', value: sampleRecord.subarray(0, sampleRecord.length - 9), reason: 'invalid_body' },
    { name: 'an unknown schema fingerprint', key: 'AAPL', value: Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 0x5a), sampleRecord.subarray(10)]), reason: 'unknown_schema' }
  ]
}

function headersOf (m: Kafka.Message): Record<string, string> {
  return Object.assign({}, ...(m.headers ?? []).map(h => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)])))) as Record<string, string>
}

t.test('a topic full of hostile records: none stalls the partition, none is stored, each is dead-lettered once with its reason', async t => {
  const config = await pipelineConfig({ workers: { batchSize: 50 } })
  const now = Date.now()
  const good = syntheticTrades(700, SYMBOLS, now - 240_000)
  const encodedGood = encodeTrades(good)
  const cases = hostileCases(now, (encodedGood[0] as { value: Buffer }).value)
  // The hostile records between runs of good ones, so that each shares its batch with good trades.
  const records: Array<{ key: string, value: Buffer }> = []
  const run = Math.floor(good.length / (cases.length + 1))
  for (let i = 0; i <= cases.length; i++) {
    records.push(...encodedGood.slice(i * run, i === cases.length ? undefined : (i + 1) * run))
    const c = cases[i]
    if (c !== undefined) records.push({ key: c.key, value: c.value })
  }
  t.equal(records.length, good.length + cases.length)
  await produceValues(kafkaBootstrap, config.kafka.topic, records)

  const registry = new Registry()
  const role = await startProcess(config, { log: createLogger({ level: 'error', write: l => { process.stderr.write(l + '\n') } }), registry, latency: new StageLatency() })
  let stopped = false
  t.teardown(async () => { if (!stopped) await role.stop() })
  t.ok(await waitCommitted(config, records.length, 90_000), `the group committed all ${records.length} records: no hostile record stalls its partition`)
  const metrics = await registry.metrics()
  const { abandonedBatches } = await role.stop()
  stopped = true
  t.equal(abandonedBatches, 0, 'stopping the role abandons no batch')
  t.equal(committedTotal(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3)), records.length, 'committed to the end, no further')

  const expectedByReason = Object.fromEntries(POISON_REASONS.map(r => [r, cases.filter(c => c.reason === r).length]))
  t.same(metricByLabel(metrics, 'finnhubd_poison_records_total'), expectedByReason, 'finnhubd_poison_records_total by reason counts each hostile record once')

  const dlq = await readTopic(kafkaBootstrap, config.kafka.deadLetterTopic, { expect: cases.length, settleMs: 1500 })
  t.equal(dlq.length, cases.length, 'the dead-letter topic holds the hostile records and nothing else')

  // Whole-table reads: a row stored under a bad symbol would be in no partition we could name.
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const stored: StoredTrade[] = (await client.execute(`SELECT * FROM ${config.cassandra.keyspace}.${config.cassandra.tradesTable}`, [], { fetchSize: 100_000 })).rows.map(tradeOfRow)
  const storedCandles: StoredCandle[] = (await client.execute(`SELECT * FROM ${config.cassandra.keyspace}.candles_1m`, [], { fetchSize: 100_000 })).rows.map(candleOfRow)
  const storedIds = new Set(stored.map(r => r.trade_id))

  t.same(stored.map(r => r.trade_id).sort(), good.map(tradeId).sort(), 'every good trade stored exactly once, and nothing else')
  t.same(stored.filter(r => !(Number.isFinite(r.price) && r.price > 0)).map(r => r.price), [], 'no stored row has a non-finite or ≤ 0 price')
  t.same(stored.filter(r => !(Number.isFinite(r.volume) && r.volume >= 0)).map(r => r.volume), [], 'no stored row has a negative or non-finite volume')
  t.same(stored.filter(r => !SYMBOL_PATTERN.test(r.symbol)).map(r => JSON.stringify(r.symbol.slice(0, 20))), [], 'no stored row has a symbol outside the pattern')
  t.same(stored.filter(r => !Number.isFinite(r.trade_ts)).length, 0, 'no stored row has a trade time outside Date')
  t.same(candleDifferences(storedCandles, recomputeCandles(stored)), [], 'candles equal their recomputation from the stored trades')
  const numeric = ['open', 'high', 'low', 'close', 'volume', 'notional', 'vwap'] as const
  t.same(storedCandles.filter(c => numeric.some(k => c[k] !== null && !Number.isFinite(c[k]))).map(c => `${c.symbol}@${c.minute}`), [], 'no candle holds NaN or Infinity')

  const byValue = new Map<string, Kafka.Message[]>()
  for (const m of dlq) {
    const k = m.value?.toString('hex') ?? ''
    byValue.set(k, [...(byValue.get(k) ?? []), m])
  }
  for (const c of cases) {
    t.test(c.name, async t => {
      const copies = byValue.get(c.value.toString('hex')) ?? []
      t.equal(copies.length, 1, 'dead-lettered exactly once, the value unchanged')
      const h = copies[0] === undefined ? {} : headersOf(copies[0])
      t.equal(h['finnhubd-reason'], c.reason, `reason ${c.reason}`)
      if (c.field !== undefined) t.match(h['finnhubd-detail'] ?? '', new RegExp(`^field ${c.field}: `), `the detail names field ${c.field}`)
      else t.ok((h['finnhubd-detail'] ?? '').length > 0, 'with a detail')
      t.equal(h['finnhubd-source-topic'], config.kafka.topic, 'with its source topic')
      t.match(h['finnhubd-source-offset'] ?? '', /^\d+$/, 'and its offset')
      t.equal(String(copies[0]?.key ?? ''), c.key, 'the key unchanged')
      if (c.trade !== undefined) t.notOk(storedIds.has(tradeId(c.trade)), 'not stored in trades')
    })
  }
})
