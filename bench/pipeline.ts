// The whole-pipeline open-loop bench (`npm run bench [-- --quick]`): simulator →
// the real daemon (`finnhubd run`, its own process, default settings) → Kafka →
// workers → Cassandra, on the local stack (or on the cluster given by --kafka and
// --cassandra). In one run:
//  1. the ceilings: raw Kafka produce rate and raw Cassandra write rate of the same
//     rows (bench/ceilings.ts);
//  2. a rate sweep: the simulator (a thread of this process) sends open loop at a
//     constant rate for each step, in fractions of the lower ceiling, stamping each
//     trade's `t` with its intended send time. A step is sustainable when, at its
//     end, the backlog (trades sent and not yet stored) is under one second of the
//     offered rate and the p99 of intended send → stored (the daemon's
//     source_to_written histogram) is ≤ 1 s. Between steps the pipeline drains;
//  3. a latency phase at half the sustainable rate: per-stage p50/p99/p99.9/max from
//     the daemon's GET /latency, two snapshots subtracted (exact, not windowed);
//  4. the exact account: every frame the simulator sent is rebuilt from its
//     generation log, every trade's deterministic id worked out, and the set
//     compared with the ids stored in Cassandra: lost, duplicated, stored;
//  5. a JSON and a Markdown report under bench/results/.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, freemem, hostname, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import Kafka from 'node-rdkafka'
import { validateConfig } from '../daemon/config/load.js'
import type { Config } from '../daemon/config/schema.js'
import { runMigrate } from '../daemon/cassandra/migrate-command.js'
import { connectCassandra } from '../daemon/cassandra/client.js'
import { TradeEncoder } from '../daemon/core/avro-codec.js'
import { loadTradeType } from '../daemon/core/trade-schema.js'
import { createTopic } from '../daemon/kafka/admin.js'
import { latencyBetween, STAGES, type IntervalLatency, type Stage, type StageSnapshot } from '../daemon/metrics/latency.js'
import { CQL_DIR, PROJECT_ROOT, VERSION } from '../daemon/paths.js'
import { resolveSchemaPath } from '../daemon/ingest.js'
import type { GenerationCall, GeneratorOptions } from '../daemon/simulator/generator.js'
import type { SimulatorStats } from '../daemon/simulator/server.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { sleep } from '../stack/proc.js'
import { runningPid, selectComponents, up } from '../stack/stack.js'
import { ConsoleViewer, type ViewerCounts } from './console-viewer.js'
import { DaemonProcess, freePort } from './daemon-process.js'
import { cpuSeconds, quiet, rawCassandraWrite, rawKafkaProduce, round } from './ceilings.js'
import { BACKLOG_BOUND_S, metricSum, P99_BOUND_MS, renderMarkdown, setPath, sustainable, type BenchReport, type StepResult } from './report.js'
import type { SimCommand, SimWorkerData } from './sim-worker.js'
import { syntheticTrades } from './trades.js'
import { dropRunData, expectedTrades } from './verify.js'

const TOKEN = 'bench'
const SYMBOLS = Array.from({ length: 40 }, (_, i) => `BENCH:SYM${String(i).padStart(2, '0')}`)

interface Mode {
  name: 'quick' | 'full' | 'smoke'
  kafkaRecords: number
  cassandraRows: number
  fractions: number[]
  /** Steps halving the gap between the last passing and the first failing rate. */
  bisections: number
  stepSeconds: number
  warmupSeconds: number
  latencySeconds: number
}

const MODES: Record<Mode['name'], Mode> = {
  full: { name: 'full', kafkaRecords: 1_000_000, cassandraRows: 300_000, fractions: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.25], bisections: 2, stepSeconds: 30, warmupSeconds: 10, latencySeconds: 30 },
  quick: { name: 'quick', kafkaRecords: 200_000, cassandraRows: 60_000, fractions: [0.15, 0.3, 0.45, 0.6, 0.8, 1], bisections: 1, stepSeconds: 5, warmupSeconds: 4, latencySeconds: 8 },
  // For the test that keeps the bench working: tiny and short, the figures mean little.
  smoke: { name: 'smoke', kafkaRecords: 20_000, cassandraRows: 5_000, fractions: [0.05, 0.1], bisections: 0, stepSeconds: 2, warmupSeconds: 1, latencySeconds: 2 }
}

const progress = (line: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`) }

class Sim {
  readonly #worker: Worker
  #next = 1
  readonly #waiting = new Map<number, (m: Record<string, unknown>) => void>()
  url = ''

  constructor (data: SimWorkerData) {
    this.#worker = new Worker(new URL('./sim-worker.js', import.meta.url), { workerData: data })
    this.#worker.on('message', (m: { id: number } & Record<string, unknown>) => {
      const w = this.#waiting.get(m.id)
      this.#waiting.delete(m.id)
      w?.(m)
    })
  }

  async started (): Promise<void> {
    const m = await new Promise<Record<string, unknown>>((resolve, reject) => {
      this.#waiting.set(0, resolve)
      this.#worker.once('error', reject)
    })
    this.url = m['url'] as string
  }

  async call (cmd: SimCommand['cmd'], extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#next++
    return await new Promise(resolve => {
      this.#waiting.set(id, resolve)
      this.#worker.postMessage({ id, cmd, ...extra })
    })
  }

  async stats (): Promise<SimulatorStats> { return (await this.call('stats'))['stats'] as SimulatorStats }
}

function versionOf (pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** The version the local stack runs, from its pom (stack/<name>/pom.xml). */
function pomVersion (name: 'kafka' | 'cassandra'): string {
  const pom = readFileSync(join(PROJECT_ROOT, 'stack', name, 'pom.xml'), 'utf8')
  return new RegExp(`<${name}\\.version>([^<]+)<`).exec(pom)?.[1] ?? 'unknown'
}

function machineInfo (): BenchReport['machine'] {
  const cpu = cpus()
  return {
    hostname: hostname(),
    cpuModel: cpu[0]?.model ?? 'unknown',
    cpus: cpu.length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    freeMemoryGiB: round(freemem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version
  }
}

interface Pids { kafka: number | null, cassandra: number | null, daemon: number | null }

function cpuSnapshot (pids: Pids): Record<keyof Pids | 'bench', number> {
  return { daemon: cpuSeconds(pids.daemon), kafka: cpuSeconds(pids.kafka), cassandra: cpuSeconds(pids.cassandra), bench: cpuSeconds(process.pid) }
}

export async function runPipelineBench (args: readonly string[]): Promise<BenchReport> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      quick: { type: 'boolean' },
      smoke: { type: 'boolean' },
      rates: { type: 'string' },
      'step-seconds': { type: 'string' },
      kafka: { type: 'string' },
      cassandra: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'cpu-prof': { type: 'boolean' },
      console: { type: 'boolean' }
    },
    strict: true
  })
  const mode = { ...MODES[values.smoke === true ? 'smoke' : values.quick === true ? 'quick' : 'full'] }
  if (values['step-seconds'] !== undefined) mode.stepSeconds = Number(values['step-seconds'])
  const started = Date.now()
  const stamp = new Date(started).toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
  const outDir = values.out ?? join(PROJECT_ROOT, 'bench', 'results')
  mkdirSync(outDir, { recursive: true })
  const base = join(outDir, `${stamp}-${mode.name}`)

  // The stack: local unless a cluster is named.
  const remote = values.kafka !== undefined || values.cassandra !== undefined
  const options = stackOptions(process.env)
  let kafkaBootstrap: string
  let cassandraHost: string
  let cassandraPort: number
  let pids: Pids = { kafka: null, cassandra: null, daemon: null }
  if (remote) {
    if (values.kafka === undefined || values.cassandra === undefined) throw new Error('--kafka HOST:PORT and --cassandra HOST:PORT go together')
    kafkaBootstrap = values.kafka
    const [host, port] = values.cassandra.split(':')
    cassandraHost = host ?? ''
    cassandraPort = Number(port ?? '9042')
    progress(`against Kafka ${kafkaBootstrap} and Cassandra ${cassandraHost}:${cassandraPort} (no local stack)`)
  } else {
    progress('starting the local stack (if it is not running)')
    await up(options, process.env, selectComponents([]), line => { progress(`stack: ${line}`) })
    const endpoints = stackEndpoints(options)
    kafkaBootstrap = endpoints.kafkaBootstrap
    cassandraHost = endpoints.cassandraHost
    cassandraPort = endpoints.cassandraPort
    const [k, c] = selectComponents([])
    pids = { kafka: k === undefined ? null : runningPid(k, options), cassandra: c === undefined ? null : runningPid(c, options), daemon: null }
  }

  const id = `bench_${stamp.replace('-', '_')}`
  const topic = `finnhub.bench.${stamp}`
  const httpPort = await freePort()
  const sim = new Sim({ token: TOKEN, seed: 7, maxTradesPerFrame: 40, tickMs: 1 })
  await sim.started()
  const raw: Record<string, unknown> = {
    logLevel: 'warn',
    finnhub: { url: sim.url, token: TOKEN, symbols: SYMBOLS },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: id, topicPartitions: 3 },
    cassandra: { contactPoints: [cassandraHost], port: cassandraPort, keyspace: id },
    http: { host: '127.0.0.1', port: httpPort }
  }
  for (const s of values.set ?? []) setPath(raw, s)
  const config: Config = validateConfig(raw)
  const configFile = join(tmpdir(), `finnhubd-bench-${stamp}.json`)
  writeFileSync(configFile, JSON.stringify(raw, null, 2))

  // 1. Ceilings.
  progress(`ceiling 1/2: raw Kafka produce of ${mode.kafkaRecords} records (the daemon's producer settings)`)
  const encoder = new TradeEncoder(loadTradeType(resolveSchemaPath(config.schemaPath)), { kind: 'single-object' })
  const ceilingTrades = syntheticTrades(Math.max(mode.kafkaRecords, mode.cassandraRows), SYMBOLS, Date.now() - 3_600_000, 1)
  await createTopic(kafkaBootstrap, `${topic}.ceiling`, config.kafka.topicPartitions)
  const keys = new Map(SYMBOLS.map(s => [s, Buffer.from(s)]))
  const kafkaCeiling = await rawKafkaProduce(config.kafka, `${topic}.ceiling`,
    ceilingTrades.slice(0, mode.kafkaRecords).map(tr => ({ key: keys.get(tr.s) as Buffer, value: encoder.encode(tr) })))
  progress(`raw Kafka produce: ${kafkaCeiling.recordsPerSec} records/s`)
  await quiet(pids.kafka)
  progress(`ceiling 2/2: raw Cassandra write of ${mode.cassandraRows} rows (prepared, batched like the daemon)`)
  await quiet(pids.cassandra)
  const cassandraCeiling = await rawCassandraWrite(validateConfig({ ...raw, cassandra: { ...(raw['cassandra'] as object), keyspace: `${id}_raw` } }),
    ceilingTrades.slice(0, mode.cassandraRows))
  progress(`raw Cassandra write: ${cassandraCeiling.rowsPerSec} rows/s (${cassandraCeiling.rowsPerRequest} rows per request)`)
  const lowerCeiling = Math.min(kafkaCeiling.recordsPerSec, cassandraCeiling.rowsPerSec)

  // 2. The daemon, as deployed.
  await runMigrate(config, CQL_DIR, () => {})
  await createTopic(kafkaBootstrap, topic, config.kafka.topicPartitions)
  await quiet(pids.cassandra)
  const daemon = new DaemonProcess(configFile, httpPort, `${base}.daemon.log`, values['cpu-prof'] === true ? `${base}.cpuprofile` : null)
  pids = { ...pids, daemon: daemon.child.pid ?? null }
  const readyBy = Date.now() + 60_000
  for (;;) {
    const ready = await fetch(`${daemon.url}/readyz`).then(r => r.ok, () => false)
    if (ready) break
    if (daemon.exitCode !== null || Date.now() > readyBy) throw new Error(`the daemon did not become ready (exit ${String(daemon.exitCode)}); see ${base}.daemon.log`)
    await sleep(200)
  }
  progress(`daemon ready (pid ${String(daemon.child.pid)}, ${daemon.url}); log: ${base}.daemon.log`)
  const viewer = values.console === true ? new ConsoleViewer(daemon.url, SYMBOLS[0] as string) : null
  if (viewer !== null) {
    viewer.start()
    progress(`console open: following ${daemon.url}/api/stream, polling topic, trades and candles every second`)
  }

  const written = async (): Promise<{ text: string, rows: number }> => {
    const text = await daemon.metrics()
    return { text, rows: metricSum(text, 'finnhubd_cassandra_rows_written_total') }
  }
  /** Waits until every trade sent is stored and acknowledged by Kafka, or nothing moves for 10 s (at most 120 s). */
  const drain = async (): Promise<number> => {
    const sent = (await sim.stats()).tradesSent
    const until = Date.now() + 120_000
    let last = -1
    let still = Date.now()
    for (;;) {
      const { text, rows } = await written()
      if (rows >= sent && metricSum(text, 'finnhubd_kafka_delivered_total') >= sent) return 0
      if (rows !== last) { last = rows; still = Date.now() }
      if (Date.now() - still > 10_000 || Date.now() > until) return sent - rows
      await sleep(100)
    }
  }

  interface Window { elMaxP99Ms: number, elP99sMs: number[], rssMaxMiB: number }
  /** Sends at `rate` for `seconds`, showing progress each second; returns the step's figures. */
  const runAt = async (rate: number, seconds: number, label: string): Promise<{ step: StepResult, before: Record<Stage, StageSnapshot>, after: Record<Stage, StageSnapshot>, window: Window }> => {
    const before = await daemon.latency()
    const sent0 = (await sim.stats()).tradesSent
    const m0 = await written()
    const rows0 = m0.rows
    const cpu0 = cpuSnapshot(pids)
    const window: Window = { elMaxP99Ms: 0, elP99sMs: [], rssMaxMiB: 0 }
    await sim.call('rate', { rate })
    const t0 = Date.now()
    for (let s = 1; s <= seconds; s++) {
      await sleep(t0 + s * 1000 - Date.now())
      // Each scrape reads (and resets) the event-loop delay histogram of the second before.
      const { text, rows } = await written()
      const el = metricSum(text, 'finnhubd_nodejs_eventloop_lag_p99_seconds') * 1000
      window.elP99sMs.push(el)
      window.elMaxP99Ms = Math.max(window.elMaxP99Ms, el)
      window.rssMaxMiB = Math.max(window.rssMaxMiB, daemon.memory().rssMiB)
      const sent = (await sim.stats()).tradesSent
      progress(`${label} ${rate}/s: ${s}/${seconds} s, sent ${sent - sent0}, stored ${rows - rows0}, backlog ${sent - rows}, event-loop p99 ${round(el, 1)} ms`)
    }
    const stats = (await sim.call('pause'))['stats'] as SimulatorStats
    const elapsed = (Date.now() - t0) / 1000
    const after = await daemon.latency()
    const m1 = await written()
    const rows1 = m1.rows
    const perSec = (name: string): number => Math.round((metricSum(m1.text, name) - metricSum(m0.text, name)) / elapsed)
    const cpu1 = cpuSnapshot(pids)
    const sent = stats.tradesSent - sent0
    const lat = latencyBetween(before.source_to_written, after.source_to_written)
    const cpu = (k: keyof ReturnType<typeof cpuSnapshot>): number => round((cpu1[k] - cpu0[k]) / elapsed * 100, 0)
    const step: StepResult = {
      offeredPerSec: rate,
      seconds: round(elapsed, 1),
      sent,
      storedPerSec: Math.round((rows1 - rows0) / elapsed),
      backlogAtEnd: stats.tradesSent - rows1,
      latencyMs: { p50: lat.p50, p99: lat.p99, max: lat.max },
      perSec: { consumedBatches: perSec('finnhubd_process_batches_total'), tradeRequests: perSec('finnhubd_cassandra_batches_total'), candleWrites: perSec('finnhubd_candles_written_total') },
      cpuPercent: { daemon: cpu('daemon'), kafka: cpu('kafka'), cassandra: cpu('cassandra'), bench: cpu('bench') },
      sustainable: false
    }
    step.sustainable = sustainable(step)
    return { step, before, after, window }
  }

  // A warm-up, not counted: JIT, prepared statements, the first candle rebuilds.
  const warmRate = Math.max(100, Math.round(mode.fractions[0] as number * lowerCeiling / 200) * 100)
  await runAt(warmRate, mode.warmupSeconds, 'warm-up')
  await drain()

  // 3. The sweep.
  const rates = values.rates !== undefined ? values.rates.split(',').map(Number) : mode.fractions.map(f => Math.max(100, Math.round(f * lowerCeiling / 100) * 100))
  const steps: StepResult[] = []
  const sweepStep = async (rate: number, label: string): Promise<boolean> => {
    const { step } = await runAt(rate, mode.stepSeconds, label)
    steps.push(step)
    progress(`${rate}/s → stored ${step.storedPerSec}/s, backlog at end ${step.backlogAtEnd}, p99 ${step.latencyMs.p99} ms: ${step.sustainable ? 'sustainable' : 'NOT sustainable'}`)
    const left = await drain()
    if (left > 0) progress(`after the step ${left} trades were still not stored`)
    return step.sustainable
  }
  let lastPass = 0
  let firstFail = 0
  for (const [i, rate] of rates.entries()) {
    if (!await sweepStep(rate, `sweep ${i + 1}/${rates.length}`)) { firstFail = rate; break }
    lastPass = rate
  }
  // Even the first step failed (a cold stack, a busy machine): halve until one passes.
  for (let h = 0; h < 3 && lastPass === 0 && firstFail > 100; h++) {
    const lower = Math.max(100, Math.round(firstFail / 200) * 100)
    if (await sweepStep(lower, `lower ${h + 1}/3`)) lastPass = lower
    else firstFail = lower
  }
  // Narrow the gap between the last passing and the first failing rate.
  for (let b = 0; b < mode.bisections && firstFail > 0 && lastPass > 0; b++) {
    const mid = Math.round((lastPass + firstFail) / 200) * 100
    if (mid <= lastPass || mid >= firstFail) break
    if (await sweepStep(mid, `bisect ${b + 1}/${mode.bisections}`)) lastPass = mid
    else firstFail = mid
  }
  const passing = steps.filter(s => s.sustainable)
  const sustainableRate = passing.length === 0 ? 0 : Math.max(...passing.map(s => s.offeredPerSec))

  // 4. Latency at half the sustainable rate (half the lowest step's when none passed).
  const halfRate = Math.max(50, Math.round((sustainableRate > 0 ? sustainableRate : (rates[0] ?? 100)) / 2))
  const latencyRun = await runAt(halfRate, mode.latencySeconds, 'latency')
  const stages = Object.fromEntries(STAGES.map(s => [s, latencyBetween(latencyRun.before[s], latencyRun.after[s])])) as Record<Stage, IntervalLatency>
  const leftAtEnd = await drain()
  const memory = daemon.memory()

  const watched: ViewerCounts | null = viewer === null ? null : await viewer.stop()
  if (watched !== null) progress(`console: ${watched.streamEvents} stream events, ${watched.requests} API requests, ${watched.failures} failed`)

  // 5. Stop the daemon as systemd would and account for every trade.
  daemon.child.kill('SIGTERM')
  const exitCode = await daemon.exited
  progress(`daemon stopped with exit code ${String(exitCode)}; checking every trade sent against Cassandra`)
  const finalStats = await sim.stats()
  const generation = await sim.call('generation') as unknown as { options: GeneratorOptions, calls: GenerationCall[] }
  await sim.call('close')
  const account = await accountFor(config, generation.options, generation.calls)
  if (account.sent !== finalStats.tradesSent) throw new Error(`bench bug: the generation log rebuilds ${account.sent} trades, the simulator sent ${finalStats.tradesSent}`)

  const report: BenchReport = {
    mode: mode.name,
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: machineInfo(),
    versions: {
      finnhubd: VERSION,
      node: process.version,
      librdkafka: Kafka.librdkafkaVersion,
      'node-rdkafka': versionOf('node-rdkafka'),
      'cassandra-driver': versionOf('cassandra-driver'),
      piscina: versionOf('piscina'),
      avsc: versionOf('avsc'),
      'hdr-histogram-js': versionOf('hdr-histogram-js'),
      kafka: remote ? 'remote' : pomVersion('kafka'),
      cassandra: remote ? 'remote' : pomVersion('cassandra')
    },
    stack: remote ? `remote: Kafka ${kafkaBootstrap}, Cassandra ${cassandraHost}:${cassandraPort}` : `local (${options.dir}), Kafka heap ${options.kafkaHeapMb} MiB, Cassandra heap ${options.cassandraHeapMb} MiB${options.fastUnsafe ? ', Cassandra without fsync' : ''}`,
    config: {
      overrides: values.set ?? [],
      workers: config.workers,
      kafka: { compression: config.kafka.compression, lingerMs: config.kafka.lingerMs, deliveryReports: config.kafka.deliveryReports, topicPartitions: config.kafka.topicPartitions },
      cassandra: { maxConcurrentWrites: config.cassandra.maxConcurrentWrites, batchMaxBytes: config.cassandra.batchMaxBytes },
      symbols: SYMBOLS.length,
      simulator: { maxTradesPerFrame: 40, tickMs: 1 },
      console: watched === null ? 'closed' : { open: 'followed /api/stream; polled /api/topic, /api/trades and /api/candles every second', ...watched }
    },
    ceilings: { kafkaProducePerSec: kafkaCeiling.recordsPerSec, kafkaRecords: kafkaCeiling.records, cassandraWritePerSec: cassandraCeiling.rowsPerSec, cassandraRows: cassandraCeiling.rows, cassandraRowsPerRequest: cassandraCeiling.rowsPerRequest, lower: lowerCeiling },
    criteria: { backlogBoundSeconds: BACKLOG_BOUND_S, p99BoundMs: P99_BOUND_MS },
    sweep: steps,
    sustainablePerSec: sustainableRate,
    ratios: {
      toKafkaCeiling: round(sustainableRate / kafkaCeiling.recordsPerSec, 2),
      toCassandraCeiling: round(sustainableRate / cassandraCeiling.rowsPerSec, 2),
      toLowerCeiling: round(sustainableRate / lowerCeiling, 2)
    },
    latency: {
      ratePerSec: halfRate,
      seconds: latencyRun.step.seconds,
      stages,
      eventLoopDelayP99Ms: {
        worstSecond: round(latencyRun.window.elMaxP99Ms, 2),
        medianSecond: round([...latencyRun.window.elP99sMs].sort((a, b) => a - b)[Math.floor(latencyRun.window.elP99sMs.length / 2)] ?? NaN, 2)
      },
      rssMaxMiB: latencyRun.window.rssMaxMiB,
      cpuPercent: latencyRun.step.cpuPercent
    },
    memory: { peakRssMiB: memory.peakMiB, rssAtEndMiB: memory.rssMiB },
    counts: { ...account, notStoredAtEnd: leftAtEnd },
    daemonExitCode: exitCode,
    goals: {
      throughputRatio: { goal: '≥ 0.8 of the lower ceiling', value: round(sustainableRate / lowerCeiling, 2), met: sustainableRate >= 0.8 * lowerCeiling },
      p99AtHalfLoad: { goal: 'end-to-end p99 ≤ 25 ms', value: stages.source_to_written.p99, met: stages.source_to_written.p99 <= 25 },
      peakRss: { goal: '≤ 300 MiB', value: memory.peakMiB, met: memory.peakMiB <= 300 },
      exact: { goal: 'lost = 0 and duplicated = 0', value: `${account.lost} lost, ${account.duplicated} duplicated`, met: account.lost === 0 && account.duplicated === 0 }
    }
  }
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${base}.md`, renderMarkdown(report))
  progress(`report: ${base}.md and ${base}.json`)
  if (values.keep !== true) await dropRunData(config, [`${id}_raw`], [topic, `${topic}.dlq`, `${topic}.ceiling`])
  return report
}

/** Rebuilds every trade sent, works out its id as the daemon should, and compares with the ids stored. */
async function accountFor (config: Config, options: GeneratorOptions, calls: readonly GenerationCall[]): Promise<Omit<BenchReport['counts'], 'notStoredAtEnd'>> {
  const expected = expectedTrades([{ options, calls }])
  const client = await connectCassandra(config.cassandra)
  let stored = 0
  let duplicated = 0
  const seen = new Set<string>()
  try {
    for (const symbol of expected.symbols) {
      for (const day of expected.days) {
        const rs = await client.execute(`SELECT trade_id FROM ${config.cassandra.keyspace}.${config.cassandra.tradesTable} WHERE symbol = ? AND day = ?`,
          [symbol, day], { prepare: true, fetchSize: 5000 })
        // The result set fetches the following pages as it is iterated.
        for await (const row of rs) {
          const tid = String(row.get('trade_id'))
          stored++
          // A row for no trade sent, under another trade's symbol, or twice.
          if (expected.ids.get(tid)?.symbol !== symbol || seen.has(tid)) duplicated++
          else seen.add(tid)
        }
      }
    }
  } finally {
    await client.shutdown()
  }
  let lost = 0
  for (const tid of expected.ids.keys()) if (!seen.has(tid)) lost++
  return { sent: expected.sent, distinctTrades: expected.ids.size, identicalResends: expected.sent - expected.ids.size, stored, lost, duplicated }
}
