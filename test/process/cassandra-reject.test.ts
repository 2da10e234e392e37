// Cassandra refusing writes, on the real stack (issue 16).
//
// The brief's setup does not produce a refusal: Cassandra applies
// batch_size_fail_threshold (the stack's is 50 KiB) only to batches that span
// partitions (CASSANDRA-10876, since 3.6; the stack runs 5.0), and the trade writer
// lets a request span partitions only under 45 KiB, so even at
// cassandra.batchMaxBytes' maximum (1,000,000) a consumer batch of big rows of one
// (symbol, day) is written in one request and nothing is refused. The first test pins
// that: the threshold is live (a two-partition batch of the same rows is refused),
// one partition's batch is not, and the role stores everything without a single
// failed request.
//
// The refusal splitting itself cannot be reached through the topic any more: the
// rows Cassandra refuses (a partition key over 65,535 bytes) are now stopped by the
// validator first. The second test drives the writer directly with such rows mixed
// into one write: the refused requests are halved until each refused row stands
// alone, the good rows are stored once, and nothing is retried forever.
import t from 'tap'
import cassandra from 'cassandra-driver'
import { Registry } from 'prom-client'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'
import { toTradeRow, tradeId } from '../../daemon/core/transform.js'
import { CassandraExecutor, TradeWriter } from '../../daemon/cassandra/writer.js'
import { createLogger } from '../../daemon/log.js'
import { StageLatency } from '../../daemon/metrics/latency.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { startProcess } from '../../daemon/process.js'
import { metricByLabel } from '../../tools/chaos/harness.js'
import { metricSum } from '../../tools/verify/prom-text.js'
import { readTopicIds } from '../../tools/verify/verify.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import {
  candleDifferences, cassandraClient, committedOffsets, committedTotal, encodeTrades, pipelineConfig, produceValues,
  readCandles, readTrades, recomputeCandles, waitCommitted
} from '../fixtures/pipeline.js'

t.setTimeout(300_000)

const { kafkaBootstrap } = testEndpoints()
const SYMBOLS = ['BIGROWS', 'BIGROWS.B']
/** A fixed day, so that every trade of a symbol falls into one (symbol, day) partition whenever the test runs. */
const NOON = Date.UTC(2024, 0, 2, 12)
const quiet = (): ReturnType<typeof createLogger> => createLogger({ level: 'error', write: l => { process.stderr.write(l + '\n') } })

/** Trades with 16 condition codes of 16 characters each: ~600 bytes a row in Cassandra, 1,000 rows ≈ 600 KB. */
function bigTrades (n: number, symbols: readonly string[]): TradeRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    s: symbols[i % symbols.length] as string,
    p: 100 + (i % 500) / 100,
    t: NOON + i * 10,
    v: 1 + (i % 7),
    c: Array.from({ length: 16 }, (_, k) => `C${k}-${i}`.padEnd(16, 'x')),
    ingest_ts: NOON + i * 10 + 3,
    ordinal: 0
  }))
}

function insertOf (keyspace: string, table: string): string {
  return `INSERT INTO ${keyspace}.${table} (symbol, day, trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
}

t.test('batchMaxBytes above batch_size_fail_threshold: one partition\'s big batch is not refused, every row stored once in whole batches', async t => {
  const N = 1500
  const config = await pipelineConfig({ cassandra: { batchMaxBytes: 1_000_000 }, workers: { batchSize: 1000 } })
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())

  // The threshold is live: the same rows over two partitions in one batch are refused;
  // in one partition (what the writer sends) they are not.
  const insert = insertOf(config.cassandra.keyspace, config.cassandra.tradesTable)
  const asBatch = (rows: ReturnType<typeof toTradeRow>[]): Array<{ query: string, params: unknown[] }> => rows.map(r => ({
    query: insert,
    params: [r.symbol, cassandra.types.LocalDate.fromString(r.day), r.trade_ts, r.trade_id, r.price, r.volume, r.conditions, r.ingest_ts, r.process_ts]
  }))
  await t.rejects(client.batch(asBatch(bigTrades(200, ['PROBE.A', 'PROBE.B']).map(tr => toTradeRow(tr, Date.now()))), { prepare: true, logged: false }),
    /Batch too large/, 'Cassandra refuses 200 such rows over two partitions as one batch (batch_size_fail_threshold)')
  await t.resolves(client.batch(asBatch(bigTrades(config.workers.batchSize, ['PROBE.C']).map(tr => toTradeRow(tr, Date.now()))), { prepare: true, logged: false }),
    `and takes ${config.workers.batchSize} of them in one partition as one batch`)

  const trades = bigTrades(N, SYMBOLS)
  // All in the topic before the role starts: its first consumer batches are full ones.
  await produceValues(kafkaBootstrap, config.kafka.topic, encodeTrades(trades))
  const registry = new Registry()
  const role = await startProcess(config, { log: quiet(), registry, latency: new StageLatency() })
  let stopped = false
  t.teardown(async () => { if (!stopped) await role.stop() })
  t.ok(await waitCommitted(config, N, 90_000), `the group committed all ${N} records: nothing stalled`)
  const metrics = await registry.metrics()
  const { abandonedBatches } = await role.stop()
  stopped = true
  t.equal(abandonedBatches, 0, 'stopping the role abandons no batch')
  t.equal(committedTotal(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3)), N, 'lag 0: committed to the end of the topic')

  t.equal(metricSum(metrics, 'finnhubd_cassandra_errors_total'), 0, 'no Cassandra request failed: the writer never sent a batch Cassandra refuses for its size (a batch spanning partitions stays under 45 KiB)')
  t.ok(metricSum(metrics, 'finnhubd_cassandra_rows_written_total') / metricSum(metrics, 'finnhubd_cassandra_batches_total') > 100,
    `whole batches of big rows (${metricSum(metrics, 'finnhubd_cassandra_rows_written_total')} rows in ${metricSum(metrics, 'finnhubd_cassandra_batches_total')} requests), well over 50 KiB each`)
  t.equal(metricSum(metrics, 'finnhubd_cassandra_rejected_rows_total'), 0, 'no row was refused on its own (finnhubd_cassandra_rejected_rows_total = 0)')
  t.ok(Object.values(metricByLabel(metrics, 'finnhubd_poison_records_total')).every(n => n === 0), 'no record counted as poison')
  t.equal(metricSum(metrics, 'finnhubd_dlq_produced_total'), 0, 'nothing produced to the dead-letter topic')
  t.equal((await readTopicIds(kafkaBootstrap, config.kafka.deadLetterTopic, config.schemaPath)).records, 0, 'the dead-letter topic is empty')

  const stored = await readTrades(client, config, SYMBOLS, [NOON])
  t.equal(stored.length, N, 'every row stored')
  t.same(stored.map(r => r.trade_id).sort(), trades.map(tradeId).sort(), 'exactly once, by deterministic id')
  t.ok(stored.every(r => r.conditions?.length === 16), 'with all 16 condition codes')
  t.same(candleDifferences(await readCandles(client, config, SYMBOLS, [NOON]), recomputeCandles(stored)), [], 'candles equal their recomputation')
})

t.test('rows Cassandra refuses, mixed into one write: the refused requests are halved until each bad row stands alone; the good rows are stored once', async t => {
  const config = await pipelineConfig({ cassandra: { batchMaxBytes: 1_000_000 } })
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const counters = createProcessCounters()
  const opts = { client, cassandra: config.cassandra, log: quiet(), counters }
  const exec = new CassandraExecutor(opts)
  t.teardown(() => exec.close())
  const writer = new TradeWriter(exec, opts)
  const processTs = Date.now()
  const good = bigTrades(40, ['GOOD']).map(tr => toTradeRow(tr, processTs))
  // 65,530 bytes: the driver encodes it, Cassandra refuses the composite key (65,540 bytes > 65,535).
  const serverRefused = bigTrades(5, ['K'.repeat(65_530)]).map(tr => toTradeRow(tr, processTs))
  // 70,000 bytes: no partition key can hold it (a component's length is 16 bits).
  const driverRefused = bigTrades(3, ['D'.repeat(70_000)]).map(tr => toTradeRow(tr, processTs))
  const rows = [...good.slice(0, 20), ...serverRefused, ...good.slice(20, 30), ...driverRefused, ...good.slice(30)]

  const rejected = await writer.writeRows(rows)
  const bad = new Set([...serverRefused, ...driverRefused].map(r => rows.indexOf(r)))
  t.equal(rejected.length, bad.size, 'every refused row is handed back, and only those')
  t.ok(rejected.every(r => bad.has(r.index)), 'none of them a good row')
  t.ok(rejected.every(r => /Key length of \d+ is longer than maximum of 65535|out of range|could not encode/.test(r.error)), `with Cassandra's or the driver's reason (${rejected[0]?.error.slice(0, 120) ?? ''})`)
  t.equal(counters.cassandraRejectedRows, 8, 'finnhubd_cassandra_rejected_rows_total counts them')
  // The halving tree of a request of n rows has at most 2n − 1 failing nodes; retrying a refused request as it was would be unbounded.
  t.ok(counters.cassandraErrors >= 8 && counters.cassandraErrors <= 2 * rows.length - 1, `each refused request was halved, none retried as it was (${counters.cassandraErrors} failed requests)`)
  t.equal(counters.rowsWritten, good.length, 'the good rows written once each')
  const stored = await readTrades(client, config, ['GOOD'], [NOON])
  t.same(stored.map(r => r.trade_id).sort(), good.map(r => r.trade_id).sort(), 'and stored')
  t.same(good.map(r => r.trade_id), bigTrades(40, ['GOOD']).map(tradeId), 'under their deterministic ids')
})
