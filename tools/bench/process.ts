// Process benchmark: a pre-filled topic → the process role (a daemon of its own,
// `finnhubd run` with roles [process]: consumer, worker pool, Cassandra writers,
// candles) → the local Cassandra. Reports, in one
// run on the same machine and the same rows:
//  - the ceiling: the raw Cassandra write rate of the same rows, written straight
//    from the main thread with the same batching and concurrency (no Kafka, no
//    decode, no candles);
//  - the pipeline's sustained rows/s draining the topic, and its ratio to the
//    ceiling;
//  - consume → written latency per batch (p50/p99/max, HDR, from the daemon's
//    GET /latency), the daemon's peak RSS, its main-thread CPU per row; rates and
//    CPU from its first row written to its last.
// Run through `npm run bench -- process [--trades 300000] [--symbols 40]`.

import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { TradeEncoder } from '../../daemon/core/avro-codec.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { latencyBetween } from '../../daemon/metrics/latency.js'
import { CQL_DIR, loadTradeType, resolveSchemaPath } from '../../daemon/paths.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { runningPid, selectComponents, up } from '../stack/stack.js'
import { cpuSeconds, procCpuMs, quiet, rawCassandraWrite, type CpuShare } from './ceilings.js'
import { DaemonProcess, freePort } from './daemon-process.js'
import { produceAll } from './produce.js'
import { metricSum } from './report.js'
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
  /** The process-role daemon's peak resident memory (VmHWM). */
  peakRssMiB: number
  /** Seconds from spawning the daemon to its first row written (left out of the figures). */
  startupSeconds: number
  candlesWritten: number
  /** Records per consumed batch, and trade rows per Cassandra request (batch or single insert). */
  recordsPerBatch: number
  rowsPerRequest: { raw: number, pipeline: number }
}

function rawConfig (endpoints: ReturnType<typeof stackEndpoints>, keyspace: string, topic: string): Record<string, unknown> {
  return {
    logLevel: 'warn',
    kafka: { bootstrapServers: [endpoints.kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: `bench-${topic}`, statsIntervalMs: 1000 },
    cassandra: { contactPoints: [endpoints.cassandraHost], port: endpoints.cassandraPort, keyspace }
  }
}

function config (endpoints: ReturnType<typeof stackEndpoints>, keyspace: string, topic: string): Config {
  return validateConfig(rawConfig(endpoints, keyspace, topic))
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
  /** CPU µs per row from two snapshots, over `rows` rows (all the trades unless said). */
  const perRow = (a: CpuShare, b: CpuShare, rows = n): CpuShare => ({
    node: Math.round((b.node - a.node) * 1e6 / rows * 10) / 10,
    kafka: Math.round((b.kafka - a.kafka) * 1e6 / rows * 10) / 10,
    cassandra: Math.round((b.cassandra - a.cassandra) * 1e6 / rows * 10) / 10
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

  // The pipeline draining the topic: the process role alone in a daemon of its own
  // (`finnhubd run`, as systemd runs it), so its CPU, threads and resident memory are
  // the daemon's and not this bench's (which holds every trade and its encoding).
  const port = await freePort()
  const configFile = join(tmpdir(), `finnhubd-bench-process-${stamp}.json`)
  writeFileSync(configFile, JSON.stringify({ ...rawConfig(endpoints, `bench_pipe_${stamp}`, topic), roles: ['process'], http: { host: '127.0.0.1', port } }, null, 2))
  const logFile = join(tmpdir(), `finnhubd-bench-process-${stamp}.log`)
  const spawned = Date.now()
  const daemon = new DaemonProcess(configFile, port, logFile)
  const daemonCpu = (): CpuShare => ({ ...snapshot(), node: cpuSeconds(daemon.pid) })
  const mainCpuMs = (): number => procCpuMs(`/proc/${daemon.pid}/task/${daemon.pid}/stat`)
  // Measured from the first row written (the daemon's start-up, connections and JIT
  // warm-up before it are left out) to the last, as the Spark comparison was.
  let first: { at: number, rows: number, cpu: CpuShare, mainMs: number } | null = null
  let m = ''
  try {
    for (;;) {
      if (!daemon.running) throw new Error(`the process-role daemon exited (code ${String(daemon.exitCode)}); see ${logFile}`)
      try { m = await daemon.metrics() } catch { m = '' }
      const rows = m === '' ? 0 : metricSum(m, 'finnhubd_cassandra_rows_written_total')
      if (first === null && rows > 0) first = { at: Date.now(), rows, cpu: daemonCpu(), mainMs: mainCpuMs() }
      if (rows >= n) break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  } catch (err) {
    await daemon.stop()
    throw err
  }
  const done = Date.now()
  const from = first as NonNullable<typeof first>
  const measuredRows = n - from.rows
  const cpuEnd = daemonCpu()
  const cpuPipeline = perRow(from.cpu, cpuEnd, measuredRows)
  const mainCpuUsPerRow = Math.round((mainCpuMs() - from.mainMs) * 1000 / measuredRows * 100) / 100
  const peakRssMiB = daemon.memory().peakMiB
  const latency = latencyBetween(null, (await daemon.latency()).consume_to_written)
  const exitCode = await daemon.stop()
  if (exitCode !== 0) throw new Error(`the process-role daemon stopped with exit code ${String(exitCode)}; see ${logFile}`)
  const rawAfter = await rawWrite(`bench_raw2_${stamp}`)
  const rawRowsPerSec = Math.round((rawBefore.rowsPerSec + rawAfter.rowsPerSec) / 2)
  const pipelineRowsPerSec = Math.round(measuredRows / ((done - from.at) / 1000))
  return {
    trades: n,
    rawRowsPerSec,
    rawRuns: [rawBefore.rowsPerSec, rawAfter.rowsPerSec],
    pipelineRowsPerSec,
    ratio: Math.round(pipelineRowsPerSec / rawRowsPerSec * 100) / 100,
    consumeToWrittenMs: { p50: latency.p50, p99: latency.p99, max: latency.max },
    startupSeconds: Math.round((from.at - spawned) / 100) / 10,
    mainCpuUsPerRow,
    cpuRaw: rawBefore.cpu,
    cpuPipeline,
    peakRssMiB,
    candlesWritten: metricSum(m, 'finnhubd_candles_written_total'),
    recordsPerBatch: Math.round(metricSum(m, 'finnhubd_kafka_consumed_total') / Math.max(1, metricSum(m, 'finnhubd_process_batches_total'))),
    rowsPerRequest: {
      raw: rawBefore.rowsPerRequest,
      pipeline: Math.round(metricSum(m, 'finnhubd_cassandra_rows_written_total') / Math.max(1, metricSum(m, 'finnhubd_cassandra_batches_total')) * 10) / 10
    }
  }
}
