// Process benchmark: a pre-filled topic → the process role (this process: consumer,
// worker pool, Cassandra writers, candles) → the local Cassandra. Reports, in one
// run on the same machine and the same rows:
//  - the ceiling: the raw Cassandra write rate of the same rows, written straight
//    from the main thread with the same batching and concurrency (no Kafka, no
//    decode, no candles);
//  - the pipeline's sustained rows/s draining the topic, and its ratio to the
//    ceiling;
//  - consume → written latency per batch (p50/p99/max, HDR), peak RSS, main-thread
//    CPU per row.
// Run through `npm run bench -- process [--trades 300000] [--symbols 40]`.

import { parseArgs } from 'node:util'
import { Registry } from 'prom-client'
import { validateConfig } from '../daemon/config/load.js'
import type { Config } from '../daemon/config/schema.js'
import { runMigrate } from '../daemon/cassandra/migrate-command.js'
import { TradeEncoder } from '../daemon/core/avro-codec.js'
import { loadTradeType } from '../daemon/core/trade-schema.js'
import { createTopic } from '../daemon/kafka/admin.js'
import { createLogger } from '../daemon/log.js'
import { StageLatency } from '../daemon/metrics/latency.js'
import { CQL_DIR } from '../daemon/paths.js'
import { resolveSchemaPath } from '../daemon/ingest.js'
import { startProcess } from '../daemon/process.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { runningPid, selectComponents, up } from '../stack/stack.js'
import { cpuSeconds, quiet, rawCassandraWrite, type CpuShare } from './ceilings.js'
import { mainThreadCpuMs } from './ingest.js'
import { produceAll } from './produce.js'
import { syntheticTrades } from './trades.js'

export interface ProcessRun {
  trades: number
  /** Mean of the raw runs before and after the pipeline. */
  rawRowsPerSec: number
  rawRuns: number[]
  pipelineRowsPerSec: number
  ratio: number
  consumeToWrittenMs: { p50: number, p99: number, max: number }
  mainCpuUsPerRow: number
  /** CPU µs per row by process, for the raw writes and for the pipeline. */
  cpuRaw: CpuShare
  cpuPipeline: CpuShare
  peakRssMiB: number
  candlesWritten: number
  /** Records per consumed batch, and trade rows per Cassandra request (batch or single insert). */
  recordsPerBatch: number
  rowsPerRequest: { raw: number, pipeline: number }
}

function config (endpoints: ReturnType<typeof stackEndpoints>, keyspace: string, topic: string): Config {
  return validateConfig({
    logLevel: 'warn',
    kafka: { bootstrapServers: [endpoints.kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: `bench-${topic}`, statsIntervalMs: 1000 },
    cassandra: { contactPoints: [endpoints.cassandraHost], port: endpoints.cassandraPort, keyspace }
  })
}

export async function runProcessBench (args: readonly string[]): Promise<ProcessRun> {
  const { values } = parseArgs({ args: [...args], options: { trades: { type: 'string' }, symbols: { type: 'string' } } })
  const n = Number(values.trades ?? '300000')
  const symbolCount = Number(values.symbols ?? '40')
  const options = stackOptions(process.env)
  await up(options, process.env, selectComponents([]), line => { process.stderr.write(`[stack] ${line}\n`) })
  const endpoints = stackEndpoints(options)
  const [kafkaComponent, cassandraComponent] = selectComponents([])
  const pids = { node: process.pid, kafka: kafkaComponent === undefined ? null : runningPid(kafkaComponent, options), cassandra: cassandraComponent === undefined ? null : runningPid(cassandraComponent, options) }
  const snapshot = (): CpuShare => ({ node: cpuSeconds(pids.node), kafka: cpuSeconds(pids.kafka), cassandra: cpuSeconds(pids.cassandra) })
  const perRow = (a: CpuShare, b: CpuShare): CpuShare => ({
    node: Math.round((b.node - a.node) * 1e6 / n * 10) / 10,
    kafka: Math.round((b.kafka - a.kafka) * 1e6 / n * 10) / 10,
    cassandra: Math.round((b.cassandra - a.cassandra) * 1e6 / n * 10) / 10
  })
  const stamp = Date.now()
  const topic = `finnhub.bench.process.${stamp}`
  const symbols = Array.from({ length: symbolCount }, (_, i) => `BENCH:SYM${String(i).padStart(2, '0')}`)
  const trades = syntheticTrades(n, symbols, Date.now() - n, 1)
  const pipeCfg = config(endpoints, `bench_pipe_${stamp}`, topic)
  await runMigrate(pipeCfg, CQL_DIR, () => {})
  process.stdout.write(`process bench: ${n} trades over ${symbolCount} symbols; Kafka ${endpoints.kafkaBootstrap}, Cassandra ${endpoints.cassandraContactPoint}` +
    `${options.fastUnsafe ? ' (Cassandra without fsync: FINNHUBD_STACK_FAST_UNSAFE)' : ''}\n`)

  // Pre-fill the topic.
  await createTopic(endpoints.kafkaBootstrap, topic, 6)
  const encoder = new TradeEncoder(loadTradeType(resolveSchemaPath(pipeCfg.schemaPath)), { kind: 'single-object' })
  await produceAll(endpoints.kafkaBootstrap, topic, trades.map(tr => ({ key: tr.s, value: encoder.encode(tr) })))

  // Ceiling: the same rows written straight to Cassandra, before and after the pipeline
  // (so flushes and compactions one phase leaves behind weigh on both sides), each
  // phase starting once Cassandra is idle again.
  const rawWrite = async (keyspace: string): Promise<{ rowsPerSec: number, cpu: CpuShare, rowsPerRequest: number }> => {
    await quiet(pids.cassandra)
    const cpu0 = snapshot()
    const r = await rawCassandraWrite(config(endpoints, keyspace, topic), trades)
    return { rowsPerSec: r.rowsPerSec, cpu: perRow(cpu0, snapshot()), rowsPerRequest: r.rowsPerRequest }
  }
  const rawBefore = await rawWrite(`bench_raw_${stamp}`)
  await quiet(pids.cassandra)

  // The pipeline draining the topic.
  const latency = new StageLatency(600_000)
  let peakRss = process.memoryUsage.rss()
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 100)
  const cpu0 = mainThreadCpuMs()
  const pipeCpu0 = snapshot()
  const started = Date.now()
  const role = await startProcess(pipeCfg, { log: createLogger({ level: 'warn' }), registry: new Registry(), latency })
  while (role.counters.rowsWritten < n) await new Promise(resolve => setTimeout(resolve, 20))
  const seconds = (Date.now() - started) / 1000
  const cpuMs = mainThreadCpuMs() - cpu0
  const cpuPipeline = perRow(pipeCpu0, snapshot())
  clearInterval(rssTimer)
  await role.stop()
  const rawAfter = await rawWrite(`bench_raw2_${stamp}`)
  const rawRowsPerSec = Math.round((rawBefore.rowsPerSec + rawAfter.rowsPerSec) / 2)
  const pipelineRowsPerSec = Math.round(n / seconds)
  const q = (x: number): number => Math.round(latency.quantileMs('consume_to_written', x) * 10) / 10
  return {
    trades: n,
    rawRowsPerSec,
    rawRuns: [rawBefore.rowsPerSec, rawAfter.rowsPerSec],
    pipelineRowsPerSec,
    ratio: Math.round(pipelineRowsPerSec / rawRowsPerSec * 100) / 100,
    consumeToWrittenMs: { p50: q(0.5), p99: q(0.99), max: q(1) },
    mainCpuUsPerRow: Math.round(cpuMs * 1000 / n * 100) / 100,
    cpuRaw: rawBefore.cpu,
    cpuPipeline,
    peakRssMiB: Math.round(peakRss / 1048576),
    candlesWritten: role.counters.candlesWritten,
    recordsPerBatch: Math.round(role.counters.consumed / Math.max(1, role.counters.batches)),
    rowsPerRequest: {
      raw: rawBefore.rowsPerRequest,
      pipeline: Math.round(role.counters.rowsWritten / Math.max(1, role.counters.cassandraBatches) * 10) / 10
    }
  }
}
