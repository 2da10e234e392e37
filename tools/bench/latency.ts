// `npm run bench -- latency`: the latency a user sees at a steady, realistic rate, from
// the daemon's first second on, as an A/B of builds or settings in one run on one
// stack. For each variant (a finnhubd installation's dist/, and config overrides), in
// rounds that alternate the order (A B, B A, …) so a drifting machine favours none:
//   1. a fresh daemon process (`finnhubd run`, both roles, as systemd runs it) until
//      GET /readyz answers;
//   2. at once, the simulator at 2,000 trades/s, open loop: the first 30 s are the
//      **start-up** row (JIT, prepared statements, the first candle rebuilds and
//      period loads: what `npm start` shows a new user), then 10 s not counted, then
//      60 s the **steady** row;
//   3. a drain, then **half load** (--half-rate, by default 8,000/s: half the
//      sustainable rate of the full bench on the 2-core development machine) for 30 s;
//   4. a drain and SIGTERM.
// Latency is the daemon's source_to_written histogram (the trade's intended send time
// → its row acknowledged by Cassandra), exact over each row (two GET /latency
// snapshots subtracted), and per second for the chart. Each row also has stored/s,
// the CPU of the daemon and of Cassandra, candle rows written per second by
// resolution (finnhubd_candle_rows_written_total; an older build without it shows
// its one-minute writes only) and the peak RSS. Before the first variant, the stack
// is warmed for 60 s at 2,000/s through the first variant's daemon (not counted): a
// freshly started Cassandra costs several times the CPU per row of a warm one. At the
// end every trade sent is accounted for against Cassandra (lost, duplicated).

import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { validateConfig } from '../../daemon/config/load.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { latencyBetween, type IntervalLatency } from '../../daemon/metrics/latency.js'
import { CQL_DIR, PROJECT_ROOT } from '../../daemon/paths.js'
import { sleep } from '../stack/proc.js'
import { quiet, round } from './ceilings.js'
import { DaemonProcess } from './daemon-process.js'
import {
  accountFor, drain, machineInfo, openStack, prepareRun, progress, runAt, scrape, STEADY_RATE,
  type Rig, type Run, type RunSetup, type Stack
} from './pipeline.js'
import { metricByLabel, metricSum, setPath, type SecondSample } from './report.js'
import { dropRunData } from '../verify/verify.js'
import type { IdAccount } from '../verify/accounting.js'

export interface Variant {
  name: string
  /** The installation whose dist/daemon/cli.js runs. */
  root: string
  /** Config overrides (key.path=value). */
  set: string[]
}

export interface LatencyRow {
  variant: string
  round: number
  phase: 'start-up' | 'steady' | 'half load'
  ratePerSec: number
  seconds: number
  storedPerSec: number
  latencyMs: IntervalLatency
  /** The worst and the median of the row's per-second p99s (ms). */
  secondP99Ms: { worst: number | null, median: number | null }
  cpuPercent: { daemon: number, cassandra: number, kafka: number }
  /** Candle rows written per second, by resolution. */
  candleRowsPerSec: Record<string, number>
  rssMaxMiB: number
  perSecond: SecondSample[]
}

export interface LatencyReport {
  startedAt: string
  durationSeconds: number
  machine: ReturnType<typeof machineInfo>
  variants: Variant[]
  rounds: number
  rows: LatencyRow[]
  /** Seconds from spawn to GET /readyz, per variant and round. */
  readySeconds: Array<{ variant: string, round: number, seconds: number }>
  account: IdAccount
}

interface LatencyOptions {
  variants: Variant[]
  rounds: number
  startupSeconds: number
  warmSeconds: number
  steadySeconds: number
  halfRate: number
  halfSeconds: number
  stackWarmSeconds: number
  set: string[]
  out: string
  keep: boolean
}

/** --variant NAME=ROOT[,key.path=value…]: a build and its overrides; `.` is this installation. */
export function parseVariant (raw: string): Variant {
  const eq = raw.indexOf('=')
  if (eq <= 0) throw new Error(`--variant takes NAME=ROOT[,key.path=value…], got "${raw}"`)
  const [root, ...set] = raw.slice(eq + 1).split(',')
  if (root === undefined || root === '') throw new Error(`--variant ${raw}: no installation root`)
  return { name: raw.slice(0, eq), root: root === '.' ? PROJECT_ROOT : resolve(root), set }
}

function parseLatencyArgs (args: readonly string[]): LatencyOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      variant: { type: 'string', multiple: true },
      rounds: { type: 'string' },
      'startup-seconds': { type: 'string' },
      'warm-seconds': { type: 'string' },
      'steady-seconds': { type: 'string' },
      'half-rate': { type: 'string' },
      'half-seconds': { type: 'string' },
      'stack-warm-seconds': { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      smoke: { type: 'boolean' }
    },
    strict: true
  })
  const smoke = values.smoke === true
  const n = (v: string | undefined, fallback: number, smokeValue: number): number => {
    const x = v === undefined ? (smoke ? smokeValue : fallback) : Number(v)
    if (!Number.isFinite(x) || x < 0) throw new Error(`a number of seconds, rounds or trades/s must be ≥ 0, got "${String(v)}"`)
    return x
  }
  return {
    variants: (values.variant ?? ['this=.']).map(parseVariant),
    rounds: Math.max(1, n(values.rounds, 1, 1)),
    startupSeconds: n(values['startup-seconds'], 30, 3),
    warmSeconds: n(values['warm-seconds'], 10, 1),
    steadySeconds: n(values['steady-seconds'], 60, 3),
    halfRate: n(values['half-rate'], 8000, 500),
    halfSeconds: n(values['half-seconds'], 30, 3),
    stackWarmSeconds: n(values['stack-warm-seconds'], 60, 2),
    set: values.set ?? [],
    out: values.out ?? join(PROJECT_ROOT, 'tools', 'bench', 'results'),
    keep: values.keep === true
  }
}

const median = (xs: number[]): number | null => xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** A fresh daemon of `variant` on the run's topic and keyspace, ready; its config file beside the report. */
async function startVariant (setup: RunSetup, variant: Variant, base: string, tag: string): Promise<{ daemon: DaemonProcess, readySeconds: number }> {
  const raw = structuredClone(setup.raw)
  for (const s of variant.set) setPath(raw, s)
  const file = join(tmpdir(), `finnhubd-bench-latency-${tag}.json`)
  writeFileSync(file, JSON.stringify(raw, null, 2))
  const spawned = Date.now()
  const daemon = new DaemonProcess(file, setup.httpPort, `${base}.${tag}.daemon.log`, null, { root: variant.root })
  for (const until = Date.now() + 60_000; !await daemon.ready();) {
    if (daemon.exitCode !== null || Date.now() > until) {
      await daemon.stop()
      throw new Error(`${variant.name}: the daemon did not become ready (exit ${String(daemon.exitCode)}); see ${base}.${tag}.daemon.log`)
    }
    await sleep(100)
  }
  return { daemon, readySeconds: round((Date.now() - spawned) / 1000, 1) }
}

function rowOf (variant: string, roundNo: number, phase: LatencyRow['phase'], run: Run, before: string, after: string, seconds: number): LatencyRow {
  const p99s = run.sampler.samples.map(s => s.p99Ms).filter((x): x is number => x !== null)
  const c0 = metricByLabel(before, 'finnhubd_candle_rows_written_total', 'resolution')
  const c1 = metricByLabel(after, 'finnhubd_candle_rows_written_total', 'resolution')
  const candleRowsPerSec: Record<string, number> = {}
  for (const [res, v] of Object.entries(c1)) candleRowsPerSec[res] = round((v - (c0[res] ?? 0)) / seconds, 0)
  if (Object.keys(c1).length === 0) {
    // A build before candles at several resolutions: its one-minute writes.
    const v = metricSum(after, 'finnhubd_candles_written_total') - metricSum(before, 'finnhubd_candles_written_total')
    if (Number.isFinite(v)) candleRowsPerSec['1m'] = round(v / seconds, 0)
  }
  return {
    variant,
    round: roundNo,
    phase,
    ratePerSec: run.step.offeredPerSec,
    seconds: run.step.seconds,
    storedPerSec: run.step.storedPerSec,
    latencyMs: latencyBetween(run.before.source_to_written, run.after.source_to_written),
    secondP99Ms: { worst: p99s.length === 0 ? null : Math.max(...p99s), median: median(p99s) },
    cpuPercent: { daemon: run.step.cpuPercent.daemon, cassandra: run.step.cpuPercent.cassandra, kafka: run.step.cpuPercent.kafka },
    candleRowsPerSec,
    rssMaxMiB: run.window.rssMaxMiB,
    perSecond: run.sampler.samples
  }
}

/** One phase at a constant rate, with the metrics text before and after it for the candle counts. */
async function measured (rig: Rig, variant: string, roundNo: number, phase: LatencyRow['phase'], rate: number, seconds: number): Promise<LatencyRow> {
  const before = (await scrape(rig.daemon)).text
  const run = await runAt(rig, rate, seconds, `${variant} ${phase}`, true)
  const after = (await scrape(rig.daemon)).text
  const row = rowOf(variant, roundNo, phase, run, before, after, run.step.seconds)
  progress(`${variant} round ${roundNo} ${phase}: p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, p99.9 ${row.latencyMs.p999} ms, max ${row.latencyMs.max} ms; stored ${row.storedPerSec}/s`)
  return row
}

export async function runLatencyBench (args: readonly string[]): Promise<LatencyReport> {
  const opts = parseLatencyArgs(args)
  const started = Date.now()
  const stamp = new Date(started).toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
  mkdirSync(opts.out, { recursive: true })
  const base = join(opts.out, `${stamp}-latency`)
  const stack: Stack = await openStack(undefined, undefined)
  const setup = await prepareRun(stack, stamp, opts.set)
  await runMigrate(setup.config, CQL_DIR, () => {})
  await createTopic(stack.kafkaBootstrap, setup.topic, setup.config.kafka.topicPartitions)
  const rows: LatencyRow[] = []
  let countedDrops = 0
  const readySeconds: LatencyReport['readySeconds'] = []
  const rig = async (daemon: DaemonProcess): Promise<Rig> =>
    ({ daemon, sim: setup.sim, pids: { ...stack.pids, daemon: daemon.child.pid ?? null }, chartOrigin: null, sentBase: (await setup.sim.stats()).tradesSent })
  try {
    // The stack warm, through the first variant (not counted).
    const first = opts.variants[0] as Variant
    const warm = await startVariant(setup, first, base, 'stack-warm-up')
    try {
      const g = await rig(warm.daemon)
      await runAt(g, STEADY_RATE, opts.stackWarmSeconds, 'stack warm-up')
      await drain(g)
    } finally {
      countedDrops += (await scrape(warm.daemon).catch(() => null))?.drops.total ?? 0
      await warm.daemon.stop()
    }
    for (let r = 1; r <= opts.rounds; r++) {
      const order = r % 2 === 1 ? opts.variants : [...opts.variants].reverse()
      for (const v of order) {
        await quiet(stack.pids.cassandra)
        const { daemon, readySeconds: ready } = await startVariant(setup, v, base, `${v.name}-${r}`)
        readySeconds.push({ variant: v.name, round: r, seconds: ready })
        progress(`${v.name} round ${r}: ready ${ready} s after spawn (${v.root}${v.set.length > 0 ? `, ${v.set.join(' ')}` : ''})`)
        const g = await rig(daemon)
        try {
          rows.push(await measured(g, v.name, r, 'start-up', STEADY_RATE, opts.startupSeconds))
          if (opts.warmSeconds > 0) await runAt(g, STEADY_RATE, opts.warmSeconds, `${v.name} between`)
          rows.push(await measured(g, v.name, r, 'steady', STEADY_RATE, opts.steadySeconds))
          await drain(g)
          rows.push(await measured(g, v.name, r, 'half load', opts.halfRate, opts.halfSeconds))
          await drain(g)
        } finally {
          countedDrops += (await scrape(daemon).catch(() => null))?.drops.total ?? 0
          await daemon.stop()
        }
      }
    }
  } finally {
    await setup.sim.call('pause').catch(() => {})
  }
  const generation = await setup.sim.call('generation') as unknown as { options: Parameters<typeof accountFor>[1], calls: Parameters<typeof accountFor>[2] }
  await setup.sim.call('close')
  const account = await accountFor(setup.config, generation.options, generation.calls, countedDrops)
  const report: LatencyReport = {
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: machineInfo(),
    variants: opts.variants,
    rounds: opts.rounds,
    rows,
    readySeconds,
    account
  }
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${base}.md`, renderLatencyMarkdown(report))
  progress(`report: ${base}.md and ${base}.json`)
  if (!opts.keep) await dropRunData(validateConfig(setup.raw), [], [setup.topic, `${setup.topic}.dlq`])
  return report
}

/** The report as Markdown: one table row per variant, round and phase. */
export function renderLatencyMarkdown (r: LatencyReport): string {
  const ms = (x: number | null): string => x === null ? '–' : String(round(x, 1))
  const out = [
    `# finnhubd latency bench, ${r.startedAt}`,
    '',
    `${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB; ${r.durationSeconds} s; ${r.rounds} round(s), the order of the variants alternating.`,
    '',
    'Latency: a trade\'s intended send time → its row acknowledged by Cassandra (source_to_written), exact over each row; "worst s" and "median s" are the worst and the median of its per-second p99s.',
    '',
    '| variant | round | phase | trades/s | stored/s | p50 ms | p99 ms | p99.9 ms | max ms | worst s p99 | median s p99 | daemon CPU % | Cassandra CPU % | candle rows/s | peak RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  ]
  for (const x of r.rows) {
    const candles = Object.entries(x.candleRowsPerSec).map(([k, v]) => `${k} ${v}`).join(', ')
    out.push(`| ${x.variant} | ${x.round} | ${x.phase} | ${x.ratePerSec} | ${x.storedPerSec} | ${ms(x.latencyMs.p50)} | ${ms(x.latencyMs.p99)} | ${ms(x.latencyMs.p999)} | ${ms(x.latencyMs.max)} | ` +
      `${ms(x.secondP99Ms.worst)} | ${ms(x.secondP99Ms.median)} | ${x.cpuPercent.daemon} | ${x.cpuPercent.cassandra} | ${candles === '' ? '–' : candles} | ${x.rssMaxMiB} |`)
  }
  out.push('', '| variant | root | overrides |', '|---|---|---|')
  for (const v of r.variants) out.push(`| ${v.name} | ${v.root} | ${v.set.length === 0 ? '–' : v.set.join(' ')} |`)
  out.push('', `Ready after spawn: ${r.readySeconds.map(x => `${x.variant} ${x.round}: ${x.seconds} s`).join('; ')}.`)
  const a = r.account
  out.push('', `Every trade sent accounted for: ${a.sent} sent, ${a.stored} stored, ${a.countedDrops} dropped and counted by the daemon, ${a.lost} lost, ${a.duplicated} duplicated.`, '')
  return out.join('\n')
}
