// The CPU budget of the running daemon: µs of CPU per stored trade for
// each stage of the pipeline, at the rate the bench is sending when it is called.
//
// Two sources, read over the same window:
//  - per-thread CPU from Linux, /proc/<pid>/task/<tid>/schedstat (ns on the CPU;
//    utime + stime in clock ticks where schedstat is missing), grouped: the main
//    thread; the Piscina worker threads (found through the inspector: each worker's
//    session reads /proc/thread-self); librdkafka's threads (`rdk:` names); V8's
//    platform threads (GC helpers, concurrent compiler: Node 20 leaves them all named
//    `node`, so they are the first 1 + --v8-pool-size threads the process started);
//    the V8 CPU profiler's own sampling thread (`v8:ProfEvntProc`); everything else
//    (libuv pool, inspector, signal watcher, threads that ended in the window);
//  - the main thread split into stages by a V8 CPU profile of that window, taken
//    through the inspector (Chrome DevTools Protocol over the `ws` package): each
//    sample goes to the stage of the nearest frame, from its leaf up, that a rule of
//    STAGE_RULES matches; `(idle)` samples are no CPU and left out. What a sampling
//    profile cannot tell: a function TurboFan inlined counts as its caller, and so
//    do samples in code V8 replaced on the stack (OSR) before the profiler started;
//    both mostly stay within one stage (a loop of frame.js inside client.js).
// Main-thread µs per trade of a stage = main-thread CPU × (its samples / non-idle
// samples) / trades. The profiler costs CPU itself: the window is cut into cycles,
// each an unprofiled stretch (a quarter) then a profiled one; the unprofiled ones
// give the main thread's µs per trade without the profiler, the method line states
// both, and the profiler's sampling thread is shown but left out of the total.

import { readdirSync, readFileSync } from 'node:fs'
import WebSocket from 'ws'
import type { DaemonProcess } from './daemon-process.js'

export interface CpuBudget { ratePerSec: number, seconds: number, trades: number, method: string, stages: Array<{ stage: string, usPerTrade: number }>, threads: Array<{ name: string, usPerTrade: number }>, totalUsPerTrade: number }

// ---------------------------------------------------------------------------
// Stages and the rules that give a profile frame its stage.

export const STAGE = {
  socket: 'socket + parse',
  produce: 'encode + produce',
  delivery: 'delivery',
  consume: 'consume',
  workerMain: 'worker (main thread: pack, dispatch, results)',
  workerThreads: 'worker threads (decode, transform, encode)',
  cassandra: 'Cassandra encode + send',
  candles: 'candles',
  gc: 'GC (main thread + V8 helper threads)',
  metrics: 'metrics + HTTP',
  otherMain: 'other, main thread (native "(program)", Node internals)',
  librdkafka: 'librdkafka threads (Kafka I/O, compression)',
  otherThreads: 'other threads (libuv pool, inspector, ended threads)'
} as const

/** The order of the table. */
export const STAGE_ORDER: readonly string[] = [
  STAGE.socket, STAGE.produce, STAGE.delivery, STAGE.consume, STAGE.workerMain, STAGE.workerThreads,
  STAGE.cassandra, STAGE.candles, STAGE.gc, STAGE.metrics, STAGE.otherMain, STAGE.librdkafka, STAGE.otherThreads
]

/** Samples that are no CPU: the main thread waiting in epoll. */
export const IDLE = '(idle)'

/**
 * A rule matches a frame when every pattern it has matches (url: the script's URL,
 * file:///…/dist/daemon/… for our code, …/node_modules/<pkg>/… for dependencies;
 * fn: the function's name, `#name` for private methods, '' for anonymous ones).
 * Rules are tried in order for each frame, so a narrow rule (one function of a file)
 * goes before the rule for its whole file; frames are tried from the sample's leaf
 * up, so the nearest matching frame decides (avsc called from producer.js is
 * encode + produce, cassandra-driver called from candles.js is Cassandra).
 */
export interface StageRule { stage: string, url?: RegExp, fn?: RegExp }

const ours = (path: string): RegExp => new RegExp(`/dist/daemon/${path.replace(/[.]/g, '\\.')}$`)
const dep = (pkg: string, path = ''): RegExp => new RegExp(`/node_modules/${pkg}/${path.replace(/[.]/g, '\\.')}`)

export const STAGE_RULES: readonly StageRule[] = [
  // V8's pseudo-frames.
  { stage: IDLE, url: /^$/, fn: /^\(idle\)$/ },
  { stage: STAGE.gc, url: /^$/, fn: /^\(garbage collector\)$/ },
  { stage: STAGE.otherMain, url: /^$/, fn: /^\((program|root)\)$/ },
  // Kafka statistics callbacks are metrics, whichever file receives them.
  { stage: STAGE.metrics, url: /\/dist\/daemon\/kafka\/(producer|consumer)\.js$/, fn: /^#onStats$/ },
  // Delivery reports: the producer's handler, and node-rdkafka's poll and dispatch
  // (lib/producer.js: the poll timer and the delivery_cb that emits 'delivery-report').
  { stage: STAGE.delivery, url: ours('kafka/producer.js'), fn: /^#(onDelivery|settle)$/ },
  { stage: STAGE.delivery, url: dep('node-rdkafka', 'lib/producer.js'), fn: /poll|^$|delivery/i },
  // Socket + parse: the Finnhub WebSocket client, frame parsing and validation, ws.
  { stage: STAGE.socket, url: ours('finnhub/client.js') },
  { stage: STAGE.socket, url: ours('core/frame.js') },
  { stage: STAGE.socket, url: ours('core/validate.js') },
  { stage: STAGE.socket, url: ours('core/symbols.js') },
  { stage: STAGE.socket, url: dep('ws') },
  // Encode + produce: Avro encoding and handing records to librdkafka.
  { stage: STAGE.produce, url: ours('kafka/producer.js') },
  { stage: STAGE.produce, url: ours('core/avro-codec.js') },
  { stage: STAGE.produce, url: ours('core/trade-schema.js') },
  { stage: STAGE.produce, url: ours('ingest.js') },
  { stage: STAGE.produce, url: dep('avsc') },
  { stage: STAGE.produce, url: dep('node-rdkafka', 'lib/producer') },
  // Consume: the consumer loop, offsets, node-rdkafka's consumer.
  { stage: STAGE.consume, url: ours('kafka/consumer.js') },
  { stage: STAGE.consume, url: ours('core/offsets.js') },
  { stage: STAGE.consume, url: dep('node-rdkafka', 'lib/kafka-consumer') },
  // The main thread's side of the worker pool: packing, Piscina, results.
  { stage: STAGE.workerMain, url: ours('process.js') },
  { stage: STAGE.workerMain, url: ours('core/process-batch.js') },
  { stage: STAGE.workerMain, url: ours('core/decode-isolating.js') },
  { stage: STAGE.workerMain, url: dep('piscina') },
  // Cassandra encode + send.
  { stage: STAGE.cassandra, url: ours('cassandra/writer.js') },
  { stage: STAGE.cassandra, url: ours('cassandra/query.js') },
  { stage: STAGE.cassandra, url: ours('core/write-queue.js') },
  { stage: STAGE.cassandra, url: ours('core/batching.js') },
  { stage: STAGE.cassandra, url: ours('core/cql-rows.js') },
  { stage: STAGE.cassandra, url: dep('cassandra-driver') },
  // Candles.
  { stage: STAGE.candles, url: ours('cassandra/candles.js') },
  { stage: STAGE.candles, url: ours('core/candle.js') },
  { stage: STAGE.candles, url: ours('core/candle-book.js') },
  { stage: STAGE.candles, url: ours('core/id-set.js') },
  // Metrics, HTTP endpoints, the console.
  { stage: STAGE.metrics, url: /\/dist\/daemon\/(metrics|console)\// },
  { stage: STAGE.metrics, url: ours('http.js') },
  { stage: STAGE.metrics, url: ours('status-line.js') },
  { stage: STAGE.metrics, url: dep('prom-client') },
  { stage: STAGE.metrics, url: dep('hdr-histogram-js') },
  { stage: STAGE.metrics, url: dep('@assemblyscript/loader') }
]

// ---------------------------------------------------------------------------
// The profile (the shape of Profiler.stop's `profile`).

export interface CallFrame { functionName: string, url: string, scriptId?: string, lineNumber?: number, columnNumber?: number }
export interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number, children?: number[], parent?: number }
export interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples?: number[], timeDeltas?: number[] }

/** The stage of one frame by the rules (null: no rule matches). */
export function frameStage (frame: CallFrame, rules: readonly StageRule[] = STAGE_RULES): string | null {
  for (const r of rules) {
    if (r.url !== undefined && !r.url.test(frame.url)) continue
    if (r.fn !== undefined && !r.fn.test(frame.functionName)) continue
    return r.stage
  }
  return null
}

/**
 * Samples per stage: each sample's node, then its parents up to the root, until a
 * frame a rule matches; none: `fallback`. Idle samples are counted under IDLE.
 */
export function stageSamples (profile: CpuProfile, rules: readonly StageRule[] = STAGE_RULES, fallback: string = STAGE.otherMain): Map<string, number> {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) {
    if (n.parent !== undefined) parent.set(n.id, n.parent)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const stageOf = new Map<number, string>()
  const resolve = (id: number): string => {
    const known = stageOf.get(id)
    if (known !== undefined) return known
    // Walk up until a frame matches or a node whose stage is already known.
    const path: number[] = []
    let found = fallback
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const cached = stageOf.get(at)
      if (cached !== undefined) { found = cached; break }
      path.push(at)
      const node = byId.get(at)
      const s = node === undefined ? null : frameStage(node.callFrame, rules)
      if (s !== null) { found = s; break }
    }
    // Every node on the path below the match has the match as its nearest matching frame.
    for (const p of path) stageOf.set(p, found)
    return found
  }
  const counts = new Map<string, number>()
  const add = (stage: string, k: number): void => { counts.set(stage, (counts.get(stage) ?? 0) + k) }
  if (profile.samples !== undefined) {
    for (const id of profile.samples) add(resolve(id), 1)
  } else {
    for (const n of profile.nodes) if ((n.hitCount ?? 0) > 0) add(resolve(n.id), n.hitCount ?? 0)
  }
  return counts
}

// ---------------------------------------------------------------------------
// Threads.

export interface ThreadStat {
  tid: number
  /** comm: what the thread calls itself (15 characters at most). */
  name: string
  /** When it started, in clock ticks since boot (stat field 22). */
  startTicks: number
  /** CPU used, ms: schedstat's ns on the CPU, or utime + stime where schedstat is missing. */
  cpuMs: number
}
export interface ThreadSnapshot {
  pid: number
  /** When it was read (Date.now()). */
  at: number
  /** The whole process, utime + stime of every thread, live or ended (ms, 10 ms ticks; Linux derives it from the same ns as schedstat). */
  processTicksMs: number
  /** Every thread's cpuMs came from schedstat (ns), not ticks. */
  precise: boolean
  threads: ThreadStat[]
}

const TICK_MS = 10 // getconf CLK_TCK is 100 on Linux

function statFields (text: string): string[] {
  // The name in parentheses may hold spaces and parentheses: split after the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/** Every thread of a process, from /proc (threads that end while being read are skipped). */
export function readThreads (pid: number, proc = '/proc'): ThreadSnapshot {
  const fields = statFields(readFileSync(`${proc}/${pid}/stat`, 'utf8'))
  const processTicksMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS
  const threads: ThreadStat[] = []
  let precise = true
  for (const entry of readdirSync(`${proc}/${pid}/task`)) {
    const dir = `${proc}/${pid}/task/${entry}`
    try {
      const f = statFields(readFileSync(`${dir}/stat`, 'utf8'))
      let cpuMs = NaN
      try {
        cpuMs = Number(readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0]) / 1e6
      } catch {}
      if (!Number.isFinite(cpuMs)) { precise = false; cpuMs = (Number(f[11]) + Number(f[12])) * TICK_MS }
      threads.push({ tid: Number(entry), name: readFileSync(`${dir}/comm`, 'utf8').trim(), startTicks: Number(f[19]), cpuMs })
    } catch {}
  }
  return { pid, at: Date.now(), processTicksMs, precise, threads }
}

export type ThreadGroup = 'main' | 'worker' | 'librdkafka' | 'v8' | 'profiler' | 'other'

export const THREAD_GROUP_NAMES: Record<ThreadGroup, string> = {
  main: 'main thread (event loop)',
  worker: 'Piscina worker threads',
  librdkafka: 'librdkafka',
  v8: 'V8 platform (GC helpers, compiler)',
  other: 'other (libuv pool, inspector, ended threads)',
  profiler: 'V8 profiler\'s sampling thread (not in the total)'
}

/**
 * Each thread's group. `workerTids`: the worker threads' ids (from the inspector).
 * Node ≥ 22.14 names its threads (V8Worker, DelayedTaskSch…, WorkerThread,
 * libuv-worker); Node 20 calls them all `node`, and there V8's platform threads are
 * the first `1 + v8PoolSize` threads after the main one (NodePlatform starts them
 * before any JavaScript runs; the libuv pool starts on its first job, later).
 */
export function classifyThreads (snapshot: Pick<ThreadSnapshot, 'pid' | 'threads'>, workerTids: ReadonlySet<number>, v8PoolSize = 4): Map<number, ThreadGroup> {
  const groups = new Map<number, ThreadGroup>()
  const unnamed: ThreadStat[] = []
  // Unnamed threads keep the process's name (comm of the main thread: `node`).
  const processName = snapshot.threads.find(t => t.tid === snapshot.pid)?.name ?? 'node'
  for (const t of snapshot.threads) {
    let g: ThreadGroup | null = null
    if (t.tid === snapshot.pid) g = 'main'
    else if (workerTids.has(t.tid) || t.name === 'WorkerThread') g = 'worker'
    else if (t.name.startsWith('rdk:')) g = 'librdkafka'
    else if (t.name.startsWith('v8:Prof')) g = 'profiler'
    else if (t.name === 'V8Worker' || t.name.startsWith('DelayedTaskSch')) g = 'v8'
    else if (t.name === processName) unnamed.push(t)
    else g = 'other'
    if (g !== null) groups.set(t.tid, g)
  }
  unnamed.sort((a, b) => a.startTicks - b.startTicks || a.tid - b.tid)
  const namesThreads = snapshot.threads.some(t => t.name === 'V8Worker')
  unnamed.forEach((t, i) => { groups.set(t.tid, !namesThreads && i < 1 + v8PoolSize ? 'v8' : 'other') })
  return groups
}

/** V8's platform pool size the process runs with (--v8-pool-size in its command line or NODE_OPTIONS; 4 by default). */
export function v8PoolSize (pid: number, proc = '/proc'): number {
  let words: string[] = []
  try {
    words = readFileSync(`${proc}/${pid}/cmdline`, 'utf8').split('\0')
    const env = readFileSync(`${proc}/${pid}/environ`, 'utf8').split('\0').find(e => e.startsWith('NODE_OPTIONS='))
    if (env !== undefined) words.push(...env.slice('NODE_OPTIONS='.length).split(/\s+/))
  } catch {}
  let size = 4
  for (const [i, w] of words.entries()) {
    const m = /^--v8-pool-size(?:=(\d+))?$/.exec(w)
    if (m !== null) size = Number(m[1] ?? words[i + 1])
  }
  // Node: 0 means one fewer than the available parallelism, at least 1.
  return size > 0 ? size : 1
}

export interface ThreadUse {
  /** CPU ms per group over the window (threads that started in it count from 0). */
  groupMs: Record<ThreadGroup, number>
  /** Threads per group at the end of the window. */
  groupThreads: Record<ThreadGroup, number>
  /** Names seen per group (distinct, in order). */
  groupNames: Record<ThreadGroup, string[]>
  /** CPU of threads that ended inside the window (from the process's total; in `other`). */
  endedMs: number
  /** The whole process over the window (utime + stime), ms. */
  processMs: number
  /** Thread figures from schedstat (ns) at both ends. */
  precise: boolean
  /** The main thread's name, which Node 20's unnamed threads share. */
  processName: string
}

const emptyGroups = <T>(v: () => T): Record<ThreadGroup, T> => ({ main: v(), worker: v(), librdkafka: v(), v8: v(), profiler: v(), other: v() })

/** The CPU each group used between two snapshots of one process. */
export function threadUse (start: ThreadSnapshot, end: ThreadSnapshot, groups: ReadonlyMap<number, ThreadGroup>): ThreadUse {
  const before = new Map(start.threads.map(t => [t.tid, t]))
  const groupMs = emptyGroups(() => 0)
  const groupThreads = emptyGroups(() => 0)
  const groupNames = emptyGroups<string[]>(() => [])
  let liveMs = 0
  for (const t of end.threads) {
    // A tid seen at both ends but started anew (reused id) counts from 0.
    const b = before.get(t.tid)
    const same = b !== undefined && b.startTicks === t.startTicks
    const g = groups.get(t.tid) ?? 'other'
    groupMs[g] += Math.max(0, t.cpuMs - (same ? b.cpuMs : 0))
    groupThreads[g]++
    if (!groupNames[g].includes(t.name)) groupNames[g].push(t.name)
    liveMs += Math.max(0, t.cpuMs - (same ? b.cpuMs : 0))
  }
  const processMs = end.processTicksMs - start.processTicksMs
  // What the process used beyond its live threads went to threads that ended in the
  // window. The process's ticks are its threads' ns rounded once (a tick at each end
  // is noise); per-thread ticks are rounded one by one (a tick per thread).
  const slack = (start.precise && end.precise ? 2 : end.threads.length + 1) * TICK_MS
  const gap = processMs - liveMs
  const endedMs = gap > slack ? gap : 0
  groupMs.other += endedMs
  const processName = end.threads.find(t => t.tid === end.pid)?.name ?? 'node'
  return { groupMs, groupThreads, groupNames, endedMs, processMs, precise: start.precise && end.precise, processName }
}

/** Several windows' use added up (thread counts and names: as many as any window had, every name seen). */
export function sumThreadUse (uses: readonly ThreadUse[]): ThreadUse {
  const sum: ThreadUse = { groupMs: emptyGroups(() => 0), groupThreads: emptyGroups(() => 0), groupNames: emptyGroups<string[]>(() => []), endedMs: 0, processMs: 0, precise: true, processName: uses[0]?.processName ?? 'node' }
  for (const u of uses) {
    for (const g of Object.keys(sum.groupMs) as ThreadGroup[]) {
      sum.groupMs[g] += u.groupMs[g]
      sum.groupThreads[g] = Math.max(sum.groupThreads[g], u.groupThreads[g])
      for (const n of u.groupNames[g]) if (!sum.groupNames[g].includes(n)) sum.groupNames[g].push(n)
    }
    sum.endedMs += u.endedMs
    sum.processMs += u.processMs
    sum.precise &&= u.precise
  }
  return sum
}

// ---------------------------------------------------------------------------
// The arithmetic.

export interface BudgetInput {
  /** The whole window (unprofiled and profiled stretches, and the moments between). */
  seconds: number
  trades: number
  /** The profiled stretches together, which the figures are for. */
  profiled: { seconds: number, trades: number, threads: ThreadUse, samples: ReadonlyMap<string, number>, samplingUs: number }
  /** The unprofiled stretches, for the profiler's cost (null: none). */
  unprofiled: { seconds: number, trades: number, mainMs: number } | null
  /** How many unprofiled + profiled cycles the window was cut into. */
  cycles: number
}

const r2 = (x: number): number => Math.round(x * 100) / 100
const r1 = (x: number): number => Math.round(x * 10) / 10

/** Turns the measurements into the budget (µs per trade, rounded to 0.01). */
export function computeBudget (input: BudgetInput): CpuBudget {
  const p = input.profiled
  const per = (ms: number): number => p.trades > 0 ? ms * 1000 / p.trades : NaN
  const g = p.threads.groupMs
  let busy = 0
  for (const [stage, n] of p.samples) if (stage !== IDLE) busy += n
  const stageUs = new Map<string, number>(STAGE_ORDER.map(s => [s, 0]))
  const add = (stage: string, us: number): void => { stageUs.set(stage, (stageUs.get(stage) ?? 0) + us) }
  if (busy > 0) {
    for (const [stage, n] of p.samples) if (stage !== IDLE) add(stage, per(g.main) * n / busy)
  } else {
    add(STAGE.otherMain, per(g.main))
  }
  add(STAGE.workerThreads, per(g.worker))
  add(STAGE.gc, per(g.v8))
  add(STAGE.librdkafka, per(g.librdkafka))
  add(STAGE.otherThreads, per(g.other))
  const stages = [...stageUs].map(([stage, us]) => ({ stage, usPerTrade: r2(us) }))
  const total = [...stageUs.values()].reduce((a, b) => a + b, 0)

  const threads = (Object.keys(THREAD_GROUP_NAMES) as ThreadGroup[])
    .filter(k => p.threads.groupThreads[k] > 0 || g[k] > 0)
    .map(k => {
      const n = p.threads.groupThreads[k]
      const names = p.threads.groupNames[k]
      // Node 20 leaves most threads with the process's own name: listing it says nothing.
      const listed = names.length > 1 || (names.length === 1 && names[0] !== p.threads.processName) ? ` (${names.join(', ')})` : ''
      const ended = k === 'other' && p.threads.endedMs > 0 ? `; ${fix1(per(p.threads.endedMs))} µs of it in threads that ended in the window` : ''
      return { name: `${THREAD_GROUP_NAMES[k]}${k === 'main' ? '' : `, ${n} thread${n === 1 ? '' : 's'}`}${listed}${ended}`, usPerTrade: r2(per(g[k])) }
    })

  let samples = 0
  for (const n of p.samples.values()) samples += n
  const profiledMain = per(g.main)
  const u = input.unprofiled
  const unprofiledMain = u === null || u.trades <= 0 ? NaN : u.mainMs * 1000 / u.trades
  const stretches = input.cycles === 1 ? '' : ` in ${input.cycles} stretches`
  const cost = u === null
    ? 'no unprofiled stretch to compare with, so its cost on the main thread is not known'
    : `the main thread used ${fix1(profiledMain)} µs per trade with it and ${fix1(unprofiledMain)} without it (${fix1(u.seconds)} s unprofiled, ${input.cycles === 1 ? 'just before the profiled stretch' : 'each just before a profiled stretch'}, ${u.trades.toLocaleString('en-US')} trades): ${signed(profiledMain - unprofiledMain)} µs`
  const source = p.threads.precise ? 'schedstat' : 'stat (utime + stime)'
  const method = `Per-thread CPU of the daemon from /proc/<pid>/task/*/${source} over ${fix1(p.seconds)} s${stretches} in which ${p.trades.toLocaleString('en-US')} trades were stored; ` +
    `the main thread's CPU split into stages in proportion to a V8 CPU profile of the same ${fix1(p.seconds)} s taken through the inspector (${samples.toLocaleString('en-US')} samples, ${busy.toLocaleString('en-US')} not idle; a sample counts for the stage of the nearest frame from its leaf that a rule matches); ` +
    'the Piscina worker threads (found through their inspector sessions) as their own row, V8\'s platform threads (GC helpers, compiler) in GC, librdkafka\'s rdk: threads as theirs, the rest as other threads; all divided by the trades stored. ' +
    `Figures include profiler sampling at ${p.samplingUs} µs (one sample per ${samples > 0 ? Math.round(p.seconds * 1e6 / samples) : '–'} µs taken): ${cost}; its sampling thread used ${fix1(per(g.profiler))} µs per trade, not counted in the total.`
  return {
    ratePerSec: input.seconds > 0 ? Math.round(input.trades / input.seconds) : NaN,
    seconds: r1(input.seconds),
    trades: input.trades,
    method,
    stages,
    threads,
    totalUsPerTrade: r2(total)
  }
}

const fix1 = (x: number): string => Number.isFinite(x) ? x.toFixed(1) : '–'
const signed = (x: number): string => Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(1)}` : '–'

// ---------------------------------------------------------------------------
// Markdown.

const fmt = (x: number, digits: number): string => Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–'

export function renderCpuBudget (b: CpuBudget): string {
  const lines = [
    `## CPU budget at ${fmt(b.ratePerSec, 0)} trades/s (${fmt(b.seconds, 0)} s, ${fmt(b.trades, 0)} trades stored)`, '',
    b.method, '',
    '| stage | µs per trade | share |',
    '| --- | ---: | ---: |'
  ]
  const share = (us: number): string => b.totalUsPerTrade > 0 && Number.isFinite(us) ? `${fmt(us / b.totalUsPerTrade * 100, 1)} %` : '–'
  for (const s of b.stages) lines.push(`| ${s.stage} | ${fmt(s.usPerTrade, 1)} | ${share(s.usPerTrade)} |`)
  lines.push(`| **total** | **${fmt(b.totalUsPerTrade, 1)}** | 100 % |`, '')
  lines.push('| thread | µs per trade |', '| --- | ---: |')
  for (const t of b.threads) lines.push(`| ${t.name} | ${fmt(t.usPerTrade, 1)} |`)
  lines.push('')
  return lines.join('\n')
}

// ---------------------------------------------------------------------------
// A small Chrome DevTools Protocol client (the inspector's WebSocket).

export interface WorkerThread { tid: number, url: string }

/** The daemon's own worker threads (Piscina's), not Node's internal ones. */
export const isPoolWorker = (w: WorkerThread): boolean => !w.url.startsWith('node:')

export class Inspector {
  readonly #ws: WebSocket
  #next = 1
  readonly #pending = new Map<number, { resolve: (v: Record<string, unknown>) => void, reject: (e: Error) => void }>()
  readonly #listeners = new Set<(method: string, params: Record<string, unknown>) => void>()
  #closed: Error | null = null

  private constructor (ws: WebSocket) {
    this.#ws = ws
    ws.on('message', (data: WebSocket.RawData) => {
      const m = JSON.parse(data.toString()) as { id?: number, result?: Record<string, unknown>, error?: { message: string }, method?: string, params?: Record<string, unknown> }
      if (m.id !== undefined) {
        const p = this.#pending.get(m.id)
        this.#pending.delete(m.id)
        if (m.error !== undefined) p?.reject(new Error(`inspector: ${m.error.message}`))
        else p?.resolve(m.result ?? {})
      } else if (m.method !== undefined) {
        for (const l of this.#listeners) l(m.method, m.params ?? {})
      }
    })
    ws.on('close', () => {
      this.#closed = new Error('inspector: the connection closed')
      for (const p of this.#pending.values()) p.reject(this.#closed)
      this.#pending.clear()
    })
  }

  static async connect (url: string, timeoutMs = 10_000): Promise<Inspector> {
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve() })
      ws.once('error', reject)
    })
    ws.on('error', () => {}) // a later error also closes it, which fails what is pending
    return new Inspector(ws)
  }

  async call (method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (this.#closed !== null) throw this.#closed
    const id = this.#next++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`inspector: ${method} got no answer in ${timeoutMs} ms`)) }, timeoutMs)
      this.#pending.set(id, {
        resolve: v => { clearTimeout(timer); resolve(v) },
        reject: e => { clearTimeout(timer); reject(e) }
      })
      this.#ws.send(JSON.stringify({ id, method, params }))
    })
  }

  on (listener: (method: string, params: Record<string, unknown>) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  async close (): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return
    await new Promise<void>(resolve => { this.#ws.once('close', () => { resolve() }); this.#ws.close() })
  }

  /** Starts the sampling profiler of the thread this session is on (the main thread). */
  async startProfiler (samplingUs: number): Promise<void> {
    await this.call('Profiler.enable')
    await this.call('Profiler.setSamplingInterval', { interval: samplingUs })
    await this.call('Profiler.start')
  }

  async stopProfiler (): Promise<CpuProfile> {
    const { profile } = await this.call('Profiler.stop', {}, 120_000) as { profile: CpuProfile }
    await this.call('Profiler.disable')
    return profile
  }

  /**
   * The process's worker threads with their OS thread ids: each worker's session
   * evaluates readlink /proc/thread-self. `url` is the worker's script (Node's own
   * workers, such as the module loader hooks' thread, have a node:internal/ one).
   */
  async workerThreads (timeoutMs = 5000): Promise<WorkerThread[]> {
    const sessions: string[] = []
    const urls = new Map<string, string>()
    const answers = new Map<string, (message: string) => void>()
    const off = this.on((method, params) => {
      if (method === 'NodeWorker.attachedToWorker') {
        const sessionId = String(params['sessionId'])
        sessions.push(sessionId)
        urls.set(sessionId, String((params['workerInfo'] as { url?: string } | undefined)?.url ?? ''))
      }
      if (method === 'NodeWorker.receivedMessageFromWorker') answers.get(String(params['sessionId']))?.(String(params['message']))
    })
    try {
      // Existing workers are announced before the answer to enable.
      await this.call('NodeWorker.enable', { waitForDebuggerOnStart: false })
      const expression = "(globalThis.process?.getBuiltinModule?.('node:fs') ?? require('node:fs')).readlinkSync('/proc/thread-self')"
      const tids = await Promise.all(sessions.map(async sessionId => {
        const answer = new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new Error(`inspector: worker session ${sessionId} did not answer in ${timeoutMs} ms`)) }, timeoutMs)
          answers.set(sessionId, m => { clearTimeout(timer); resolve(m) })
        })
        // Both awaited together: a failed send leaves no answer to reject unheard.
        const [, text] = await Promise.all([
          this.call('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression, includeCommandLineAPI: true, returnByValue: true } }) }),
          answer
        ])
        const m = JSON.parse(text) as { result?: { result?: { value?: unknown } } }
        await this.call('NodeWorker.detach', { sessionId }).catch(() => {})
        // "PID/task/TID"
        return { tid: Number(/task\/(\d+)$/.exec(String(m.result?.result?.value))?.[1] ?? NaN), url: urls.get(sessionId) ?? '' }
      }))
      return tids.filter(w => Number.isInteger(w.tid))
    } finally {
      off()
      await this.call('NodeWorker.disable').catch(() => {})
    }
  }
}

// ---------------------------------------------------------------------------
// The measurement.

export interface MeasureOptions {
  /** The profiler's sampling interval, µs (250 by default). */
  samplingUs?: number
  /** The share of each cycle measured without the profiler, at its start, for the profiler's cost (0.25 by default; 0: none). */
  unprofiledShare?: number
  /** About how long one cycle (unprofiled, then profiled) lasts, s: the window is cut into whole cycles so that load drifting over the window hits both alike (8 by default). */
  cycleSeconds?: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, Math.max(0, ms))) }

interface Mark { at: number, rows: number, threads: ThreadSnapshot }

/**
 * Measures the daemon's CPU budget over the next `seconds` while the caller keeps
 * the load steady. The window is cut into cycles; each starts with an unprofiled
 * stretch (a quarter: the profiler's cost is the main thread's µs per trade with
 * it against without it) and ends with the profiled one, from which every figure
 * comes. Starting and stopping the profiler falls between the stretches and counts
 * in neither (nor do the trades stored meanwhile). `storedRows` reads the rows stored
 * so far (the daemon's counter); the daemon must have been started with `{ inspect: true }`.
 */
export async function measureCpuBudget (daemon: DaemonProcess, seconds: number, storedRows: () => Promise<number>, options: MeasureOptions = {}): Promise<CpuBudget> {
  const samplingUs = options.samplingUs ?? 250
  const share = Math.min(0.9, Math.max(0, options.unprofiledShare ?? 0.25))
  const cycles = Math.max(1, Math.floor(seconds / (options.cycleSeconds ?? 8)))
  const pid = daemon.pid
  const inspector = await Inspector.connect(await daemon.inspectorUrl())
  try {
    const pool = v8PoolSize(pid)
    const workers = new Set((await inspector.workerThreads()).filter(isPoolWorker).map(w => w.tid))
    const mark = async (): Promise<Mark> => ({ at: Date.now(), rows: await storedRows(), threads: readThreads(pid) })
    const mainMs = (s: ThreadSnapshot): number => s.threads.find(t => t.tid === pid)?.cpuMs ?? NaN
    const cycleMs = seconds * 1000 / cycles
    const profiled = { seconds: 0, trades: 0, samples: new Map<string, number>(), pairs: [] as Array<[ThreadSnapshot, ThreadSnapshot]> }
    const unprofiled = { seconds: 0, trades: 0, mainMs: 0 }
    const t0 = Date.now()
    let first: Mark | null = null
    let last: Mark | null = null
    for (let c = 0; c < cycles; c++) {
      const start = t0 + c * cycleMs
      const a = await mark()
      first ??= a
      if (share > 0) {
        await sleep(start + cycleMs * share - Date.now())
        const b = await mark()
        unprofiled.seconds += (b.at - a.at) / 1000
        unprofiled.trades += b.rows - a.rows
        unprofiled.mainMs += mainMs(b.threads) - mainMs(a.threads)
      }
      await inspector.startProfiler(samplingUs)
      const p0 = await mark()
      await sleep(start + cycleMs - Date.now())
      // Read before the profiler stops: its sampling thread ends with it.
      const p1 = await mark()
      last = p1
      const profile = await inspector.stopProfiler()
      profiled.seconds += (p1.at - p0.at) / 1000
      profiled.trades += p1.rows - p0.rows
      for (const [stage, n] of stageSamples(profile)) profiled.samples.set(stage, (profiled.samples.get(stage) ?? 0) + n)
      profiled.pairs.push([p0.threads, p1.threads])
    }
    for (const w of await inspector.workerThreads()) if (isPoolWorker(w)) workers.add(w.tid)
    // Every thread seen at any mark, once (threads may start or end in between).
    const seen = new Map(profiled.pairs.flat().flatMap(s => s.threads).map(t => [t.tid, t]))
    const groups = classifyThreads({ pid, threads: [...seen.values()] }, workers, pool)
    const threads = sumThreadUse(profiled.pairs.map(([s0, s1]) => threadUse(s0, s1, groups)))
    if (first === null || last === null) throw new Error('cpu budget: no cycle ran')
    return computeBudget({
      seconds: (last.at - first.at) / 1000,
      trades: last.rows - first.rows,
      cycles,
      profiled: { seconds: profiled.seconds, trades: profiled.trades, threads, samples: profiled.samples, samplingUs },
      unprofiled: share > 0 ? unprofiled : null
    })
  } finally {
    await inspector.close()
  }
}
