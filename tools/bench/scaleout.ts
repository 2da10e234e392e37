// `npm run bench -- scaleout [--cluster]`: does a second process daemon add
// throughput? One ingest-only daemon (`roles: [ingest]`, fed by the simulator, a
// thread of this process) and N process-only daemons (`roles: [process]`, one
// consumer group), each `finnhubd run` in its own process, on the local stack or,
// with --cluster, on the cluster stack (3 brokers, 3 Cassandra nodes: topics with
// replication 3 and min.insync 2, the keyspace NetworkTopologyStrategy
// { datacenter1: 3 }, writes at LOCAL_QUORUM). For each N of --process-daemons, in
// the order given (1,2,2,1 alternates so a drifting machine favours neither):
//   - steady: the simulator open loop at --rate for --seconds (after --warm-seconds
//     not counted): stored/s, source_to_written p50/p99/max with every process
//     daemon's histogram merged, then a drain and the trades left unaccounted;
//   - drain: --drain-trades trades pre-filled into a topic of their own, then N fresh
//     process daemons on it: stored/s at saturation, from the moment every daemon
//     stores (start-up and the group's rebalance left out) to the last row.
// Per window, each process's CPU from /proc (every daemon, every JVM of the stack,
// the bench with its simulator thread) and the machine's busy share (/proc/stat).
// The report goes to tools/bench/results/<stamp>-scaleout.{json,md}.

import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { validateConfig } from '../../daemon/config/load.js'
import { topicMinInsyncReplicas, type Config } from '../../daemon/config/schema.js'
import { TradeEncoder } from '../../daemon/core/avro-codec.js'
import { utcDay } from '../../daemon/core/transform.js'
import { ensureTopics } from '../../daemon/kafka/admin.js'
import type { Stage, StageSnapshot } from '../../daemon/metrics/latency.js'
import { CQL_DIR, loadTradeType, PROJECT_ROOT, resolveSchemaPath } from '../../daemon/paths.js'
import { clusterEndpoints } from '../stack/nodes.js'
import { stackOptions } from '../stack/options.js'
import { sleep } from '../stack/proc.js'
import { runningPid, selectComponents, up } from '../stack/stack.js'
import { dropRunData } from '../verify/verify.js'
import { round } from './ceilings.js'
import { DaemonProcess, freePort } from './daemon-process.js'
import { progress, Sim, STEADY_RATE, SYMBOLS, TOKEN } from './pipeline.js'
import { corePercent, machineBusyPercent, readMachineTicks, readProcTicks } from './proc-stat.js'
import { produceAll } from './produce.js'
import { dropsIn, metricSum, setPath } from './report.js'
import { latencyAcross, renderScaleoutMarkdown, usPerStoredRow, type ProcessCpu, type ScaleoutReport, type ScaleoutRun, type ScaleoutWindow } from './scaleout-report.js'
import { syntheticTrades } from './trades.js'

export interface ScaleoutOptions {
  cluster: boolean
  rate: number
  seconds: number
  warmSeconds: number
  drainTrades: number
  processDaemons: number[]
  partitions: number
  set: string[]
  out: string
  keep: boolean
}

const positive = (name: string, v: string | undefined, fallback: number, min = 1): number => {
  if (v === undefined) return fallback
  const x = Number(v)
  if (!Number.isInteger(x) || x < min) throw new Error(`--${name} takes a whole number ≥ ${min}, got "${v}"`)
  return x
}

/** The command line of `npm run bench -- scaleout`; a bad value is refused by name. */
export function parseScaleoutArgs (args: readonly string[]): ScaleoutOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      cluster: { type: 'boolean' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      'warm-seconds': { type: 'string' },
      'drain-trades': { type: 'string' },
      'process-daemons': { type: 'string' },
      partitions: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      smoke: { type: 'boolean' }
    },
    strict: true,
    allowPositionals: false
  })
  const smoke = values.smoke === true
  const list = values['process-daemons'] ?? '1,2'
  const processDaemons = list.split(',').map(x => positive('process-daemons', x.trim(), NaN))
  const partitions = positive('partitions', values.partitions, 6)
  const most = Math.max(...processDaemons)
  if (most > partitions) {
    throw new Error(`--process-daemons ${list}: ${most} consumers in one group on ${partitions} partitions would leave ${most - partitions} idle; raise --partitions to at least ${most}`)
  }
  return {
    cluster: values.cluster === true,
    rate: positive('rate', values.rate, smoke ? 300 : STEADY_RATE),
    seconds: positive('seconds', values.seconds, smoke ? 3 : 30),
    warmSeconds: positive('warm-seconds', values['warm-seconds'], smoke ? 1 : 10, 0),
    drainTrades: positive('drain-trades', values['drain-trades'], smoke ? 2000 : 200_000),
    processDaemons,
    partitions,
    set: values.set ?? [],
    out: values.out ?? join(PROJECT_ROOT, 'tools', 'bench', 'results'),
    keep: values.keep === true
  }
}

export interface Endpoints { kafkaBootstrap: string, cassandraContactPoints: string[], cassandraPort: number }

/**
 * One daemon's config: the run's topic, group and keyspace on the stack's endpoints,
 * replicated as the stack allows (a cluster: topics RF 3 / min.insync 2, the keyspace
 * { datacenter1: 3 } at LOCAL_QUORUM), with the role given; `--set` overrides last.
 */
export function scaleoutConfig (p: {
  endpoints: Endpoints
  cluster: boolean
  role: 'ingest' | 'process'
  topic: string
  groupId: string
  keyspace: string
  partitions: number
  httpPort: number
  simUrl: string
  set: readonly string[]
}): Record<string, unknown> {
  const raw: Record<string, unknown> = {
    logLevel: 'warn',
    roles: [p.role],
    ...(p.role === 'ingest' ? { finnhub: { url: p.simUrl, token: TOKEN, symbols: SYMBOLS } } : {}),
    kafka: {
      bootstrapServers: p.endpoints.kafkaBootstrap.split(','),
      topic: p.topic,
      deadLetterTopic: `${p.topic}.dlq`,
      groupId: p.groupId,
      topicPartitions: p.partitions,
      topicReplicationFactor: p.cluster ? 3 : 1,
      topicMinInsyncReplicas: p.cluster ? 2 : 1
    },
    cassandra: {
      contactPoints: p.endpoints.cassandraContactPoints,
      port: p.endpoints.cassandraPort,
      keyspace: p.keyspace,
      consistency: 'LOCAL_QUORUM',
      replication: p.cluster ? { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 3 } } : { class: 'SimpleStrategy', replicationFactor: 1 }
    },
    http: { host: '127.0.0.1', port: p.httpPort }
  }
  for (const s of p.set) setPath(raw, s)
  return raw
}

/** A daemon of the run, started from its config and waited for until GET /readyz answers. */
async function startDaemon (raw: Record<string, unknown>, name: string, base: string): Promise<DaemonProcess> {
  validateConfig(raw)
  const file = join(tmpdir(), `finnhubd-${basename(base)}.${name}.json`)
  writeFileSync(file, JSON.stringify(raw, null, 2))
  const log = `${base}.${name}.log`
  const daemon = new DaemonProcess(file, (raw['http'] as { port: number }).port, log)
  for (const until = Date.now() + 120_000; !await daemon.ready();) {
    if (!daemon.running || Date.now() > until) {
      await daemon.stop()
      throw new Error(`the ${name} daemon did not become ready (exit ${String(daemon.exitCode)}); see ${log}`)
    }
    await sleep(200)
  }
  return daemon
}

/**
 * N process daemons started together (so that on a pre-filled topic none has drained
 * it before the others join); every one that started is stopped when one fails.
 */
async function startProcessDaemons (n: number, cfg: () => Promise<Record<string, unknown>>, tag: string, base: string): Promise<Array<{ name: string, daemon: DaemonProcess }>> {
  const configs = await Promise.all(Array.from({ length: n }, async () => await cfg()))
  const started = await Promise.allSettled(configs.map(async (c, i) => ({ name: `process-${i + 1}`, daemon: await startDaemon(c, `${tag}.process-${i + 1}`, base) })))
  const ok = started.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) {
    await stopAll(ok.map(p => p.daemon))
    throw failed.reason
  }
  return ok
}

const basename = (path: string): string => path.slice(path.lastIndexOf('/') + 1)

interface Named { name: string, pid: number | null }

/** Every process whose CPU a window reports: the daemons, the stack's JVMs, this bench (with the simulator thread). */
function watched (daemons: ReadonlyArray<{ name: string, daemon: DaemonProcess }>, jvms: readonly Named[]): Named[] {
  return [...daemons.map(d => ({ name: d.name, pid: d.daemon.pid })), ...jvms, { name: 'bench', pid: process.pid }]
}

interface CpuMark { at: number, ticks: Array<number | null>, machine: ReturnType<typeof readMachineTicks> }

const cpuMark = (procs: readonly Named[]): CpuMark => ({ at: Date.now(), ticks: procs.map(p => readProcTicks(p.pid)), machine: readMachineTicks() })

function cpuBetween (procs: readonly Named[], a: CpuMark, b: CpuMark, storedPerSec: number): { cpu: ProcessCpu[], machineBusyPercent: number } {
  const seconds = (b.at - a.at) / 1000
  const cpu = procs.map((p, i) => {
    const percent = corePercent(a.ticks[i] ?? null, b.ticks[i] ?? null, seconds)
    return { name: p.name, pid: p.pid, percent, usPerRow: usPerStoredRow(percent, storedPerSec) }
  })
  return { cpu, machineBusyPercent: machineBusyPercent(a.machine, b.machine) }
}

async function rowsOf (daemons: readonly DaemonProcess[]): Promise<number[]> {
  return await Promise.all(daemons.map(async d => metricSum(await d.metrics(), 'finnhubd_cassandra_rows_written_total') || 0))
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)

async function stopAll (daemons: readonly DaemonProcess[]): Promise<void> {
  const codes = await Promise.all(daemons.map(async d => await d.stop()))
  const bad = codes.map((c, i) => ({ c, i })).filter(x => x.c !== 0)
  if (bad.length > 0) progress(`warning: daemon exit codes ${bad.map(x => `#${x.i}: ${String(x.c)}`).join(', ')}`)
}

interface RunContext {
  opts: ScaleoutOptions
  endpoints: Endpoints
  keyspace: string
  stamp: string
  base: string
  sim: Sim
  jvms: Named[]
  config: Config
}

async function steadyWindow (ctx: RunContext, n: number, runNo: number): Promise<ScaleoutRun['steady']> {
  const { opts } = ctx
  const topic = `finnhub.scaleout.${ctx.stamp}.${runNo}`
  const groupId = `${ctx.keyspace}_${runNo}`
  const cfg = async (role: 'ingest' | 'process'): Promise<Record<string, unknown>> => scaleoutConfig({
    endpoints: ctx.endpoints, cluster: opts.cluster, role, topic, groupId, keyspace: ctx.keyspace, partitions: opts.partitions, httpPort: await freePort(), simUrl: ctx.sim.url, set: opts.set
  })
  const topicConfig = validateConfig(await cfg('process'))
  await ensureTopics(topicConfig.kafka, [topic, `${topic}.dlq`])
  const sentBase = (await ctx.sim.stats()).tradesSent
  const processes: Array<{ name: string, daemon: DaemonProcess }> = []
  let ingest: DaemonProcess | null = null
  try {
    processes.push(...await startProcessDaemons(n, async () => await cfg('process'), `${runNo}.steady`, ctx.base))
    ingest = await startDaemon(await cfg('ingest'), `${runNo}.steady.ingest`, ctx.base)
    progress(`run ${runNo} (${n} process daemon${n === 1 ? '' : 's'}) steady: ready; warming ${opts.warmSeconds} s at ${opts.rate}/s`)
    const pd = processes.map(p => p.daemon)
    await ctx.sim.call('rate', { rate: opts.rate })
    await sleep(opts.warmSeconds * 1000)
    const procs = watched([{ name: 'ingest', daemon: ingest }, ...processes], ctx.jvms)
    const lat0 = await Promise.all(pd.map(async d => await d.latency()))
    const rows0 = await rowsOf(pd)
    const sent0 = (await ctx.sim.stats()).tradesSent
    const cpu0 = cpuMark(procs)
    for (let s = 1; s <= opts.seconds; s++) {
      await sleep(cpu0.at + s * 1000 - Date.now())
      const rows = await rowsOf(pd)
      progress(`run ${runNo} steady ${opts.rate}/s: ${s}/${opts.seconds} s, stored ${sum(rows) - sum(rows0)} (${rows.map((r, i) => r - (rows0[i] ?? 0)).join(' + ')})`)
    }
    const cpu1 = cpuMark(procs)
    const rows1 = await rowsOf(pd)
    const lat1 = await Promise.all(pd.map(async d => await d.latency()))
    const stats = (await ctx.sim.call('pause'))['stats'] as { tradesSent: number }
    const seconds = (cpu1.at - cpu0.at) / 1000
    const storedPerSec = Math.round((sum(rows1) - sum(rows0)) / seconds)
    // The drain: every trade sent stored or counted as dropped, or nothing moving for 10 s.
    const sent = stats.tradesSent - sentBase
    const daemons = [ingest, ...pd]
    let left = 0
    for (let last = -1, still = Date.now(), until = Date.now() + 120_000; ;) {
      const texts = await Promise.all(daemons.map(async d => await d.metrics()))
      const stored = sum(texts.slice(1).map(t => metricSum(t, 'finnhubd_cassandra_rows_written_total') || 0))
      const dropped = sum(texts.map(t => dropsIn(t).total))
      left = sent - stored - dropped
      if (left <= 0 || Date.now() > until || Date.now() - still > 10_000) break
      if (stored !== last) { last = stored; still = Date.now() }
      await sleep(200)
    }
    const dropped = sum((await Promise.all(daemons.map(async d => await d.metrics()))).map(t => dropsIn(t).total))
    const window: ScaleoutWindow = {
      seconds: round(seconds, 1),
      offeredPerSec: opts.rate,
      storedPerSec,
      storedPerSecByDaemon: rows1.map((r, i) => Math.round((r - (rows0[i] ?? 0)) / seconds)),
      latencyMs: latencyAcross(pd.map((_, i) => pair(lat0[i], lat1[i], 'source_to_written'))),
      ...cpuBetween(procs, cpu0, cpu1, storedPerSec)
    }
    progress(`run ${runNo} steady: ${storedPerSec} stored/s, p99 ${window.latencyMs.p99} ms; ${left} left after the drain`)
    return { ...window, sent: stats.tradesSent - sent0, leftAfterDrain: Math.max(0, left), dropped }
  } finally {
    await ctx.sim.call('pause').catch(() => {})
    if (ingest !== null) await stopAll([ingest])
    await stopAll(processes.map(p => p.daemon))
  }
}

function pair (before: Record<Stage, StageSnapshot> | undefined, after: Record<Stage, StageSnapshot> | undefined, stage: Stage): { before: StageSnapshot | null, after: StageSnapshot } {
  if (after === undefined) throw new Error('a daemon answered no GET /latency')
  return { before: before?.[stage] ?? null, after: after[stage] }
}

async function drainWindow (ctx: RunContext, n: number, runNo: number): Promise<ScaleoutRun['drain']> {
  const { opts } = ctx
  const topic = `finnhub.scaleout.${ctx.stamp}.${runNo}.fill`
  const groupId = `${ctx.keyspace}_${runNo}_fill`
  const cfg = async (): Promise<Record<string, unknown>> => scaleoutConfig({
    endpoints: ctx.endpoints, cluster: opts.cluster, role: 'process', topic, groupId, keyspace: ctx.keyspace, partitions: opts.partitions, httpPort: await freePort(), simUrl: ctx.sim.url, set: opts.set
  })
  const config = validateConfig(await cfg())
  await ensureTopics(config.kafka, [topic, `${topic}.dlq`])
  // Distinct trades per run, under symbols of their own (FILL<run>:SYM00 …), so the
  // rows stored can be counted apart from every other window's.
  const m = opts.drainTrades
  const symbols = SYMBOLS.map((_, i) => `FILL${runNo}:SYM${String(i).padStart(2, '0')}`)
  const trades = syntheticTrades(m, symbols, Date.now() - m, 1)
  const encoder = new TradeEncoder(loadTradeType(resolveSchemaPath(config.schemaPath)), { kind: 'single-object' })
  progress(`run ${runNo} drain: pre-filling ${m} trades into ${topic}`)
  await produceAll(ctx.endpoints.kafkaBootstrap, topic, trades.map(tr => ({ key: tr.s, value: encoder.encode(tr) })))
  const spawned = Date.now()
  const processes: Array<{ name: string, daemon: DaemonProcess }> = []
  try {
    processes.push(...await startProcessDaemons(n, cfg, `${runNo}.drain`, ctx.base))
    const pd = processes.map(p => p.daemon)
    const procs = watched(processes, ctx.jvms)
    type Mark = { mark: CpuMark, rows: number[], lat: Array<Record<Stage, StageSnapshot>> }
    let from: Mark | null = null
    // When one daemon drains the whole topic before the others store anything (a tiny
    // topic), the window is from the first row any of them stored.
    let first: Mark | null = null
    let rows: number[] = []
    for (let last = -1, still = Date.now(); ;) {
      rows = await rowsOf(pd)
      const total = sum(rows)
      if (first === null && total > 0) first = { mark: cpuMark(procs), rows, lat: await Promise.all(pd.map(async d => await d.latency())) }
      if (from === null && rows.every(r => r > 0)) from = first !== null && first.rows.every(r => r > 0) ? first : { mark: cpuMark(procs), rows, lat: await Promise.all(pd.map(async d => await d.latency())) }
      if (total >= m) break
      if (total !== last) { last = total; still = Date.now() }
      if (Date.now() - still > 60_000) throw new Error(`run ${runNo} drain: stuck at ${total} of ${m} rows for 60 s; see ${ctx.base}.${runNo}.drain.process-*.log`)
      await sleep(100)
    }
    const to = cpuMark(procs)
    const lat1 = await Promise.all(pd.map(async d => await d.latency()))
    // Records a daemon had not committed when the group rebalanced are consumed again by
    // their new owner and written twice (the same rows: at least once, idempotent):
    // wait for those writes to end, then count the distinct rows in Cassandra.
    let written = sum(rows)
    for (let still = Date.now(); Date.now() - still < 3000;) {
      await sleep(500)
      const now = sum(await rowsOf(pd))
      if (now !== written) { written = now; still = Date.now() }
    }
    const stored = await countRows(config, symbols, trades.map(tr => tr.t))
    const start = from ?? first ?? { mark: to, rows, lat: lat1 }
    const seconds = (to.at - start.mark.at) / 1000
    const storedInWindow = sum(rows) - sum(start.rows)
    const storedPerSec = seconds > 0 ? Math.round(storedInWindow / seconds) : NaN
    const window: ScaleoutWindow = {
      seconds: round(seconds, 1),
      offeredPerSec: null,
      storedPerSec,
      storedPerSecByDaemon: rows.map((r, i) => seconds > 0 ? Math.round((r - (start.rows[i] ?? 0)) / seconds) : NaN),
      latencyMs: latencyAcross(pd.map((_, i) => pair(start.lat[i], lat1[i], 'consume_to_written'))),
      ...cpuBetween(procs, start.mark, to, storedPerSec)
    }
    progress(`run ${runNo} drain: ${storedPerSec} stored/s over ${window.seconds} s (${window.storedPerSecByDaemon.join(' + ')})`)
    return { ...window, trades: m, startupSeconds: round((start.mark.at - spawned) / 1000, 1), stored, rowsWritten: written, everyDaemonStored: from !== null }
  } finally {
    await stopAll(processes.map(p => p.daemon))
  }
}

/** Distinct trade rows of these symbols on the days of these times (count(*) per partition). */
async function countRows (config: Config, symbols: readonly string[], times: readonly number[]): Promise<number> {
  const days = [...new Set(times.map(utcDay))]
  const client = await connectCassandra(config.cassandra)
  try {
    let n = 0
    for (const symbol of symbols) {
      for (const day of days) {
        const rs = await client.execute(`SELECT count(*) AS n FROM ${config.cassandra.keyspace}.${config.cassandra.tradesTable} WHERE symbol = ? AND day = ?`, [symbol, day], { prepare: true })
        n += Number(rs.first()?.get('n') ?? 0)
      }
    }
    return n
  } finally {
    await client.shutdown()
  }
}

export async function runScaleoutBench (args: readonly string[]): Promise<ScaleoutReport> {
  const opts = parseScaleoutArgs(args)
  const started = Date.now()
  const stamp = new Date(started).toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
  mkdirSync(opts.out, { recursive: true })
  const base = join(opts.out, `${stamp}-scaleout`)
  const o = stackOptions(process.env, { cluster: opts.cluster })
  progress(`starting the ${opts.cluster ? 'cluster' : 'local'} stack (if it is not running) in ${o.dir}`)
  await up(o, process.env, selectComponents([], o), line => { progress(`stack: ${line}`) })
  const ep = clusterEndpoints(o)
  const endpoints: Endpoints = { kafkaBootstrap: ep.kafkaBootstrap, cassandraContactPoints: ep.cassandraContactPoints, cassandraPort: ep.cassandraPort }
  const jvms = selectComponents([], o).map(c => ({ name: c.name, pid: runningPid(c, o) }))
  const keyspace = `scaleout_${stamp.replace('-', '_')}`
  const sim = new Sim({ token: TOKEN, seed: 7, maxTradesPerFrame: 40, tickMs: 1 })
  await sim.started()
  const raw = scaleoutConfig({ endpoints, cluster: opts.cluster, role: 'process', topic: `finnhub.scaleout.${stamp}`, groupId: keyspace, keyspace, partitions: opts.partitions, httpPort: 1, simUrl: sim.url, set: opts.set })
  const config = validateConfig(raw)
  await runMigrate(config, CQL_DIR, () => {})
  progress(`keyspace ${keyspace} migrated; runs with ${opts.processDaemons.join(', ')} process daemons`)
  const ctx: RunContext = { opts, endpoints, keyspace, stamp, base, sim, jvms, config }
  const runs: ScaleoutRun[] = []
  const topics: string[] = []
  try {
    for (const [i, n] of opts.processDaemons.entries()) {
      const runNo = i + 1
      topics.push(`finnhub.scaleout.${stamp}.${runNo}`, `finnhub.scaleout.${stamp}.${runNo}.fill`)
      const steady = await steadyWindow(ctx, n, runNo)
      const drain = await drainWindow(ctx, n, runNo)
      runs.push({ processDaemons: n, steady, drain })
    }
  } finally {
    await sim.call('close').catch(() => {})
  }
  const cpu = cpus()
  const report: ScaleoutReport = {
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 1) },
    stack: {
      cluster: opts.cluster,
      kafkaBootstrap: endpoints.kafkaBootstrap,
      cassandraContactPoints: endpoints.cassandraContactPoints,
      cassandraPort: endpoints.cassandraPort,
      topicPartitions: opts.partitions,
      topicReplicationFactor: config.kafka.topicReplicationFactor,
      topicMinInsyncReplicas: topicMinInsyncReplicas(config.kafka),
      replication: JSON.stringify(config.cassandra.replication ?? { class: 'SimpleStrategy', replicationFactor: config.cassandra.replicationFactor }),
      consistency: config.cassandra.consistency
    },
    ratePerSec: opts.rate,
    steadySeconds: opts.seconds,
    drainTrades: opts.drainTrades,
    command: `npm run bench -- scaleout ${args.join(' ')}`.trim(),
    runs
  }
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${base}.md`, renderScaleoutMarkdown(report))
  progress(`report: ${base}.md and ${base}.json`)
  if (!opts.keep) {
    await dropRunData(config, [], topics.flatMap(t => [t, `${t}.dlq`])).catch((err: Error) => { progress(`could not drop the run's keyspace and topics: ${err.message}`) })
  }
  return report
}
