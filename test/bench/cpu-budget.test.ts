// The CPU budget (tools/bench/cpu-budget.ts): the pure parts on hand-built profiles and
// thread stats, then the real thing on a small child process: its inspector found on
// stderr, a profile taken through our CDP client, its worker thread's id found
// through the worker's session, and its threads as Linux shows them.
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  classifyThreads, computeBudget, measureCpuBudget, frameStage, IDLE, Inspector, readThreads, renderCpuBudget, STAGE, STAGE_ORDER, STAGE_RULES,
  isPoolWorker, stageSamples, sumThreadUse, threadUse, v8PoolSize, type BudgetInput, type CpuProfile, type ProfileNode, type ThreadSnapshot, type ThreadStat, type ThreadUse
} from '../../tools/bench/cpu-budget.js'
import { DaemonProcess, freePort, inspectorUrlFrom } from '../../tools/bench/daemon-process.js'

const ROOT = 'file:///srv/finnhubd'
const ours = (path: string): string => `${ROOT}/dist/daemon/${path}`
const dep = (path: string): string => `${ROOT}/node_modules/${path}`

/** A profile from a tree given as [id, parentId, functionName, url] and the samples' leaf ids. */
function profileOf (tree: Array<[number, number | null, string, string]>, samples: number[]): CpuProfile {
  const nodes: ProfileNode[] = tree.map(([id, , functionName, url]) => ({ id, callFrame: { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 }, children: [] }))
  const byId = new Map(nodes.map(n => [n.id, n]))
  for (const [id, parent] of tree) if (parent !== null) byId.get(parent)?.children?.push(id)
  return { nodes, startTime: 0, endTime: samples.length * 250, samples, timeDeltas: samples.map(() => 250) }
}

// (root) 1
//   (program) 2, (idle) 3, (garbage collector) 4
//   writer #send 5 → cassandra-driver encode 6 → Buffer (node:buffer) 7
//   producer send 8 → avsc write 9
//   candles #write 10 → cassandra-driver batch 11
//   consumer #dispatch 12 → process handle 13 → piscina run 14
//   node-rdkafka delivery_cb '' 15 → emit (node:events) 16 → producer #onDelivery 17 → hdr-histogram recordValue 18 → wasm 19
//   onStreamRead (node:internal) 20 → ws Receiver 21 → client onMessage 22 → frame parseFrame 23
//   processTicksAndRejections (node:internal) 24 → runMicrotasks '' 25
//   consumer #onStats 26 → admin parseStats 27
const TREE: Array<[number, number | null, string, string]> = [
  [1, null, '(root)', ''],
  [2, 1, '(program)', ''], [3, 1, '(idle)', ''], [4, 1, '(garbage collector)', ''],
  [5, 1, '#send', ours('cassandra/writer.js')], [6, 5, 'encode', dep('cassandra-driver/lib/encoder.js')], [7, 6, 'FastBuffer', 'node:internal/buffer'],
  [8, 1, 'send', ours('kafka/producer.js')], [9, 8, 'write', dep('avsc/lib/types.js')],
  [10, 1, '#write', ours('cassandra/candles.js')], [11, 10, 'batch', dep('cassandra-driver/lib/client.js')],
  [12, 1, '#dispatch', ours('kafka/consumer.js')], [13, 12, 'handle', ours('process.js')], [14, 13, 'run', dep('piscina/dist/index.js')],
  [15, 1, '', dep('node-rdkafka/lib/producer.js')], [16, 15, 'emit', 'node:events'], [17, 16, '#onDelivery', ours('kafka/producer.js')],
  [18, 17, 'recordValue', dep('hdr-histogram-js/dist/wasm/index.js')], [19, 18, 'wasm-function[292]', 'wasm://wasm/0009ddfa'],
  [20, 1, 'onStreamRead', 'node:internal/stream_base_commons'], [21, 20, 'Receiver.getData', dep('ws/lib/receiver.js')],
  [22, 21, 'onMessage', ours('finnhub/client.js')], [23, 22, 'parseFrame', ours('core/frame.js')],
  [24, 1, 'processTicksAndRejections', 'node:internal/process/task_queues'], [25, 24, 'runMicrotasks', ''],
  [26, 1, '#onStats', ours('kafka/consumer.js')], [27, 26, 'parseStats', ours('kafka/admin.js')]
]

t.test('frameStage: narrow rules before their file, V8 pseudo-frames, unmatched frames', async t => {
  t.equal(frameStage({ functionName: '#onDelivery', url: ours('kafka/producer.js') }), STAGE.delivery)
  t.equal(frameStage({ functionName: 'send', url: ours('kafka/producer.js') }), STAGE.produce)
  t.equal(frameStage({ functionName: '#onStats', url: ours('kafka/producer.js') }), STAGE.metrics)
  t.equal(frameStage({ functionName: 'Producer.poll', url: dep('node-rdkafka/lib/producer.js') }), STAGE.delivery)
  t.equal(frameStage({ functionName: 'Producer.produce', url: dep('node-rdkafka/lib/producer.js') }), STAGE.produce)
  t.equal(frameStage({ functionName: '(idle)', url: '' }), IDLE)
  t.equal(frameStage({ functionName: '(garbage collector)', url: '' }), STAGE.gc)
  t.equal(frameStage({ functionName: 'emit', url: 'node:events' }), null)
  t.equal(frameStage({ functionName: 'runMicrotasks', url: '' }), null, 'a builtin is not (program)')
  // CommonJS dependencies show as a path, not a file: URL.
  t.equal(frameStage({ functionName: 'x', url: '/srv/finnhubd/node_modules/cassandra-driver/lib/writers.js' }), STAGE.cassandra)
  // A file of ours named like a rule's but elsewhere does not match.
  t.equal(frameStage({ functionName: 'x', url: ours('kafka/not-producer.js') }), null)
  t.equal(frameStage({ functionName: 'x', url: ours('core/frame.js') }, [{ stage: 'mine', fn: /^x$/ }]), 'mine', 'rules are data')
  t.same(STAGE_RULES.map(r => r.stage).filter(s => s !== IDLE && !STAGE_ORDER.includes(s)), [], 'every rule\'s stage is a row of the table')
})

t.test('stageSamples walks from each leaf up to the nearest frame a rule matches', async t => {
  // Each leaf sampled a distinct number of times, so a misattribution changes a count.
  const leaves: Array<[number, number]> = [[2, 3], [3, 50], [4, 7], [7, 11], [9, 5], [11, 2], [14, 13], [19, 17], [23, 19], [20, 1], [25, 4], [27, 6], [16, 8]]
  const samples = leaves.flatMap(([id, n]) => Array<number>(n).fill(id))
  const counts = Object.fromEntries(stageSamples(profileOf(TREE, samples)))
  t.same(counts, {
    [STAGE.otherMain]: 3 + 1 + 4, // (program), onStreamRead with nothing above, runMicrotasks under Node internals
    [IDLE]: 50,
    [STAGE.gc]: 7,
    [STAGE.cassandra]: 11 + 2, // Buffer inside cassandra-driver under writer; cassandra-driver under candles (nearest wins)
    [STAGE.produce]: 5, // avsc under producer send
    [STAGE.workerMain]: 13, // piscina under process.js under consumer.js
    [STAGE.metrics]: 17 + 6, // wasm under hdr-histogram under #onDelivery; parseStats under #onStats
    [STAGE.socket]: 19, // frame.js under client.js under ws under net
    [STAGE.delivery]: 8 // emit under node-rdkafka's delivery_cb
  })
  // The same tree given by parent links instead of children, and by hit counts instead of samples.
  const byParent = profileOf(TREE, [])
  for (const n of byParent.nodes) delete n.children
  byParent.nodes.forEach((n, i) => { const p = TREE[i]?.[1]; if (p !== null && p !== undefined) n.parent = p })
  delete byParent.samples
  for (const [id, n] of leaves) { const node = byParent.nodes.find(x => x.id === id); if (node !== undefined) node.hitCount = n }
  t.same(Object.fromEntries(stageSamples(byParent)), counts)
})

const thread = (tid: number, name: string, startTicks: number, cpuMs: number): ThreadStat => ({ tid, name, startTicks, cpuMs })
const snapshot = (threads: ThreadStat[], processTicksMs: number, at = 0): ThreadSnapshot => ({ pid: 100, at, processTicksMs, precise: true, threads })

t.test('classifyThreads: main, workers by tid, rdk:, the profiler, V8 platform by start order, the rest', async t => {
  const threads = [
    thread(100, 'node', 5, 0),
    // The platform: started first (one with a wrapped-around tid, so order is by start time first).
    thread(101, 'node', 10, 0), thread(102, 'node', 10, 0), thread(103, 'node', 10, 0), thread(104, 'node', 10, 0), thread(40, 'node', 9, 0),
    thread(106, 'node', 11, 0), thread(107, 'node', 11, 0), // signal watcher, inspector
    thread(108, 'node', 12, 0), thread(109, 'node', 12, 0), // libuv pool
    thread(112, 'node', 13, 0), thread(113, 'node', 13, 0), // worker threads
    thread(114, 'rdk:main', 14, 0), thread(115, 'rdk:broker1', 14, 0),
    thread(116, 'v8:ProfEvntProc', 20, 0),
    thread(117, 'cassandra-x', 21, 0)
  ]
  const groups = classifyThreads({ pid: 100, threads }, new Set([112, 113]))
  const of = (tid: number): string | undefined => groups.get(tid)
  t.equal(of(100), 'main')
  t.same([40, 101, 102, 103, 104].map(of), ['v8', 'v8', 'v8', 'v8', 'v8'])
  t.same([106, 107, 108, 109, 117].map(of), ['other', 'other', 'other', 'other', 'other'])
  t.same([112, 113].map(of), ['worker', 'worker'])
  t.same([114, 115].map(of), ['librdkafka', 'librdkafka'])
  t.equal(of(116), 'profiler')
  // A smaller pool: fewer platform threads.
  const small = classifyThreads({ pid: 100, threads }, new Set([112, 113]), 2)
  t.same([40, 101, 102, 103].map(tid => small.get(tid)), ['v8', 'v8', 'v8', 'other'])
  // Node ≥ 22.14 names its threads: names decide, order does not.
  const named = classifyThreads({
    pid: 100,
    threads: [thread(100, 'MainThread', 5, 0), thread(101, 'libuv-worker', 6, 0), thread(102, 'V8Worker', 7, 0), thread(103, 'DelayedTaskSche', 7, 0), thread(104, 'WorkerThread', 8, 0), thread(105, 'SignalInspector', 8, 0)]
  }, new Set())
  t.same([100, 101, 102, 103, 104, 105].map(tid => named.get(tid)), ['main', 'other', 'v8', 'v8', 'worker', 'other'])
})

t.test('threadUse: deltas per group, new and reused tids from 0, ended threads from the process total', async t => {
  const groups = new Map<number, 'main' | 'worker' | 'v8' | 'other' | 'profiler'>([[100, 'main'], [101, 'v8'], [112, 'worker'], [120, 'other'], [116, 'profiler'], [130, 'other']])
  const start = snapshot([thread(100, 'node', 5, 1000), thread(101, 'node', 10, 50), thread(112, 'node', 13, 300), thread(120, 'node', 30, 70), thread(130, 'node', 40, 400)], 2000)
  const end = snapshot([
    thread(100, 'node', 5, 1600), // +600
    thread(101, 'node', 10, 80), // +30
    thread(112, 'node', 13, 500), // +200
    thread(120, 'node', 31, 25), // the same tid, a new thread: 25 from 0
    thread(116, 'v8:ProfEvntProc', 50, 40) // new: 40
  ], 3000)
  // Thread 130 ended: the process used 1000 ms, its live threads 895.
  const u = threadUse(start, end, groups)
  t.same(u.groupMs, { main: 600, worker: 200, librdkafka: 0, v8: 30, profiler: 40, other: 25 + 105 })
  t.equal(u.endedMs, 105)
  t.equal(u.processMs, 1000)
  t.same(u.groupThreads, { main: 1, worker: 1, librdkafka: 0, v8: 1, profiler: 1, other: 1 })
  t.same(u.groupNames.profiler, ['v8:ProfEvntProc'])
  // Within rounding (two ticks) of the live threads, nothing ended.
  const close = threadUse(start, { ...end, processTicksMs: 2000 + 895 + 20 }, groups)
  t.equal(close.endedMs, 0)
  t.equal(close.groupMs.other, 25)
  // Tick-based figures are rounded per thread: more slack.
  const coarse = threadUse({ ...start, precise: false }, { ...end, processTicksMs: 2000 + 895 + 50 }, groups)
  t.equal(coarse.endedMs, 0)
  t.equal(coarse.precise, false)
  const twice = sumThreadUse([u, close])
  t.equal(twice.groupMs.main, 1200)
  t.equal(twice.endedMs, 105)
  t.equal(twice.groupThreads.main, 1, 'thread counts are not added up')
})

function use (ms: Partial<ThreadUse['groupMs']>, threads: Partial<ThreadUse['groupThreads']> = {}): ThreadUse {
  const groupMs = { main: 0, worker: 0, librdkafka: 0, v8: 0, profiler: 0, other: 0, ...ms }
  const groupThreads = { main: 1, worker: 2, librdkafka: 8, v8: 5, profiler: 1, other: 6, ...threads }
  const groupNames = { main: ['node'], worker: ['node'], librdkafka: ['rdk:main', 'rdk:broker1'], v8: ['node'], profiler: ['v8:ProfEvntProc'], other: ['node'] }
  return { groupMs, groupThreads, groupNames, endedMs: 0, processMs: Object.values(groupMs).reduce((a, b) => a + b, 0), precise: true, processName: 'node' }
}

const INPUT: BudgetInput = {
  seconds: 12,
  trades: 12_000,
  cycles: 1,
  profiled: {
    seconds: 9,
    trades: 10_000,
    // 100, 40, 20, 30, 10 µs per trade; the profiler's 15 is not in the total.
    threads: use({ main: 1000, worker: 400, librdkafka: 200, v8: 300, other: 100, profiler: 150 }),
    samples: new Map([[STAGE.socket, 200], [STAGE.cassandra, 600], [IDLE, 5000], [STAGE.gc, 200]]),
    samplingUs: 250
  },
  unprofiled: { seconds: 3, trades: 2000, mainMs: 180 }
}

t.test('computeBudget: main-thread CPU by sample share, threads as their own rows, per trade', async t => {
  const b = computeBudget(INPUT)
  const us = Object.fromEntries(b.stages.map(s => [s.stage, s.usPerTrade]))
  t.same(b.stages.map(s => s.stage), STAGE_ORDER, 'every stage, in order')
  t.equal(us[STAGE.socket], 20)
  t.equal(us[STAGE.cassandra], 60)
  t.equal(us[STAGE.gc], 20 + 30, 'main-thread GC and the V8 platform threads')
  t.equal(us[STAGE.workerThreads], 40)
  t.equal(us[STAGE.librdkafka], 20)
  t.equal(us[STAGE.otherThreads], 10)
  t.equal(us[STAGE.delivery], 0)
  t.equal(b.totalUsPerTrade, 200)
  t.equal(b.ratePerSec, 1000)
  t.equal(b.seconds, 12)
  t.equal(b.trades, 12_000)
  t.same(b.threads.map(x => x.usPerTrade), [100, 40, 20, 30, 10, 15])
  t.match(b.threads[2]?.name, /^librdkafka, 8 threads \(rdk:main, rdk:broker1\)$/)
  t.match(b.threads[1]?.name, /^Piscina worker threads, 2 threads$/, 'no list of names that are all the process name')
  t.match(b.threads[5]?.name, /sampling thread \(not in the total\), 1 thread \(v8:ProfEvntProc\)/)
  t.match(b.method, /profiler sampling at 250 µs \(one sample per 1500 µs taken\)/)
  t.match(b.method, /100\.0 µs per trade with it and 90\.0 without it \(3\.0 s unprofiled, just before the profiled stretch, 2,000 trades\): \+10\.0 µs/)
  t.match(b.method, /its sampling thread used 15\.0 µs per trade, not counted in the total/)
  t.match(b.method, /over 9\.0 s in which 10,000 trades were stored/)
  t.notMatch(b.method, /\n/, 'one line')

  // No profile samples: the main thread is all "other"; no unprofiled stretch: said so.
  const bare = computeBudget({ ...INPUT, cycles: 3, profiled: { ...INPUT.profiled, samples: new Map([[IDLE, 10]]) }, unprofiled: null })
  t.equal(bare.stages.find(s => s.stage === STAGE.otherMain)?.usPerTrade, 100)
  t.match(bare.method, /in 3 stretches/)
  t.match(bare.method, /cost on the main thread is not known/)
  // No trades: no figures, not Infinity.
  const none = computeBudget({ ...INPUT, profiled: { ...INPUT.profiled, trades: 0 } })
  t.ok(Number.isNaN(none.totalUsPerTrade))
})

t.test('renderCpuBudget: heading, method line, stage table with shares and total, thread table', async t => {
  const md = renderCpuBudget(computeBudget(INPUT))
  const lines = md.split('\n')
  t.equal(lines[0], '## CPU budget at 1,000 trades/s (12 s, 12,000 trades stored)')
  t.match(lines[2], /^Per-thread CPU of the daemon from \/proc\/<pid>\/task\/\*\/schedstat/)
  t.equal(lines[4], '| stage | µs per trade | share |')
  t.ok(lines.includes('| socket + parse | 20.0 | 10.0 % |'))
  t.ok(lines.includes(`| ${STAGE.cassandra} | 60.0 | 30.0 % |`))
  t.ok(lines.includes(`| ${STAGE.gc} | 50.0 | 25.0 % |`))
  t.ok(lines.includes('| **total** | **200.0** | 100 % |'))
  t.ok(lines.includes('| thread | µs per trade |'))
  t.ok(lines.includes('| main thread (event loop) | 100.0 |'))
  t.equal(lines.filter(l => l.startsWith('| ')).length, 2 + STAGE_ORDER.length + 1 + 2 + 6)
  t.match(renderCpuBudget(computeBudget({ ...INPUT, profiled: { ...INPUT.profiled, trades: 0 } })), /\| socket \+ parse \| – \| – \|/)
})

t.test('readThreads and v8PoolSize read a /proc tree', async t => {
  const proc = t.testdir()
  const stat = (name: string, utime: number, stime: number, start: number): string =>
    // Fields 3 onward; utime, stime, starttime are fields 14, 15, 22.
    `7 (${name}) S 1 7 7 0 -1 4194560 1 0 0 0 ${utime} ${stime} 0 0 20 0 3 0 ${start} 1000 100\n`
  mkdirSync(join(proc, '7', 'task', '7'), { recursive: true })
  mkdirSync(join(proc, '7', 'task', '8'), { recursive: true })
  writeFileSync(join(proc, '7', 'stat'), stat('no de) (x', 40, 2, 300))
  writeFileSync(join(proc, '7', 'task', '7', 'stat'), stat('node', 30, 1, 300))
  writeFileSync(join(proc, '7', 'task', '7', 'schedstat'), '311234567 5 6\n')
  writeFileSync(join(proc, '7', 'task', '7', 'comm'), 'node\n')
  writeFileSync(join(proc, '7', 'task', '8', 'stat'), stat('rdk:main', 9, 1, 305))
  writeFileSync(join(proc, '7', 'task', '8', 'comm'), 'rdk:main\n')
  const s = readThreads(7, proc)
  t.equal(s.processTicksMs, 420, 'a name with ") " in it does not shift the fields')
  const byTid = new Map(s.threads.map(x => [x.tid, x]))
  t.same(byTid.get(7), { tid: 7, name: 'node', startTicks: 300, cpuMs: 311.234567 })
  t.same(byTid.get(8), { tid: 8, name: 'rdk:main', startTicks: 305, cpuMs: 100 }, 'no schedstat: ticks')
  t.equal(s.precise, false)

  writeFileSync(join(proc, '7', 'cmdline'), ['node', '--v8-pool-size=2', '--', 'cli.js'].join('\0'))
  writeFileSync(join(proc, '7', 'environ'), ['A=1', 'NODE_OPTIONS=--max-old-space-size=100 --v8-pool-size 3'].join('\0'))
  t.equal(v8PoolSize(7, proc), 3, 'NODE_OPTIONS comes after the command line')
  writeFileSync(join(proc, '7', 'environ'), 'A=1')
  t.equal(v8PoolSize(7, proc), 2)
  t.equal(v8PoolSize(99, proc), 4, 'unreadable: the default')
})

// The child: one worker thread, a busy loop in a named function on the main thread
// (in 20 ms slices, so it never starves the event loop), garbage on request.
const CHILD = `
const { Worker } = require('node:worker_threads')
new Worker('setInterval(() => {}, 1000)', { eval: true }).on('online', () => process.stdout.write('ready\\n'))
let mode = 'spin'
process.stdin.on('data', d => { mode = String(d).trim() })
let sink = 0
let keep = []
function spinHere () { const end = Date.now() + 20; while (Date.now() < end) sink += Math.sqrt(sink + 1) }
function allocateHere () { for (let i = 0; i < 2e5; i++) keep.push({ i, s: 'x' + i }); if (keep.length > 1e6) keep = [] }
function loop () { if (mode === 'spin') spinHere(); else allocateHere(); setImmediate(loop) }
loop()
`

t.test('the real thing: a child under --inspect, profiled through the CDP client', async t => {
  // Under tap, NODE_OPTIONS adds a module loader hook, which Node runs on a worker thread of its own.
  // --no-use-osr: V8's profiler misses on-stack-replaced code compiled before it started and
  // gives its samples to the caller (loop instead of spinHere, about one run in four).
  const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', '--no-use-osr', '-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const ready = new Promise<void>(resolve => { child.stdout.once('data', () => { resolve() }) })
  const url = await inspectorUrlFrom(child)
  t.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+$/)
  await ready
  const inspector = await Inspector.connect(url)
  t.teardown(async () => { await inspector.close() })
  const pid = child.pid as number

  const all = await inspector.workerThreads()
  const workers = all.filter(isPoolWorker).map(w => w.tid)
  t.equal(workers.length, 1, 'one worker thread of its own')
  t.ok(all.every(w => isPoolWorker(w) || w.url.startsWith('node:internal/')), 'others are Node\'s')
  const before = readThreads(pid)
  const tids = before.threads.map(x => x.tid)
  t.ok(tids.includes(workers[0] as number) && workers[0] !== pid, `the worker's tid ${workers[0]} is a thread of the child, not its main one`)

  await inspector.startProfiler(250)
  await new Promise(resolve => setTimeout(resolve, 1000))
  const during = readThreads(pid)
  const profile = await inspector.stopProfiler()
  const counts = stageSamples(profile, [{ stage: IDLE, fn: /^\(idle\)$/ }, { stage: 'spin', fn: /^spinHere$/ }], 'rest')
  const spin = counts.get('spin') ?? 0
  const busy = spin + (counts.get('rest') ?? 0)
  t.ok(spin > 500, `spinHere sampled ${spin} times in 1 s at 250 µs`)
  t.ok(spin / busy > 0.8, `spinHere has ${Math.round(spin / busy * 100)} % of the non-idle samples`)

  const groups = classifyThreads({ pid, threads: [...before.threads, ...during.threads.filter(x => !tids.includes(x.tid))] }, new Set(workers))
  const use = threadUse(before, during, groups)
  t.equal(use.groupThreads.profiler, 1, 'the sampling thread shows while the profiler runs')
  t.equal(use.groupThreads.v8, 5, 'V8 platform: 4 workers and the delayed-task scheduler')
  t.equal(use.groupThreads.worker, 1)
  t.ok(use.groupMs.main > 500, `the main thread used ${Math.round(use.groupMs.main)} ms of the ~1000 ms`)
  t.ok(use.groupMs.main > 5 * use.groupMs.worker, 'the idle worker used little')

  // Garbage: V8's platform threads (the first five started) do GC work.
  child.stdin.write('allocate\n')
  const a = readThreads(pid)
  await new Promise(resolve => setTimeout(resolve, 1500))
  const gc = threadUse(a, readThreads(pid), groups)
  t.ok(gc.groupMs.v8 > 20, `V8 platform threads used ${Math.round(gc.groupMs.v8)} ms while the main thread made garbage`)
  t.ok(gc.groupMs.v8 > gc.groupMs.other, 'more than the libuv pool and the inspector threads')

  // The whole measurement on it: two cycles of 0.25 s unprofiled, 0.75 s profiled; a
  // made-up counter of 1,000 "trades" a second. The spinning main thread is no stage
  // of the daemon's, so nearly all of it is "other, main thread".
  child.stdin.write('spin\n')
  const t0 = Date.now()
  const asDaemon = { pid, inspectorUrl: async () => url } as unknown as DaemonProcess
  const b = await measureCpuBudget(asDaemon, 2, async () => Date.now() - t0, { cycleSeconds: 1 })
  t.ok(b.seconds >= 1.9 && b.seconds <= 3, `a window of ${b.seconds} s`)
  t.ok(Math.abs(b.trades - b.seconds * 1000) < 50 && Math.abs(b.ratePerSec - 1000) < 50, `${b.trades} trades, ${b.ratePerSec}/s`)
  t.match(b.method, /in 2 stretches/)
  t.match(b.method, /sampling at 250 µs/)
  const sum = b.stages.reduce((x, s) => x + s.usPerTrade, 0)
  t.ok(Math.abs(sum - b.totalUsPerTrade) < 0.1, 'the stages add up to the total')
  const main = b.threads[0]
  t.match(main?.name, /^main thread/)
  const other = b.stages.find(s => s.stage === STAGE.otherMain)?.usPerTrade ?? 0
  t.ok(other > 0.8 * (main?.usPerTrade ?? NaN), `the spinning is "other, main thread": ${other} of ${main?.usPerTrade} µs per trade`)
  t.ok((main?.usPerTrade ?? 0) > 100, `the main thread spun ${main?.usPerTrade} µs per 1 ms "trade"`)
  t.ok(b.threads.some(x => /^V8 profiler's sampling thread/.test(x.name)), 'the sampling thread has its row')
})

t.test('DaemonProcess hands back the inspector URL with { inspect: true } and refuses without', async t => {
  const log = join(t.testdir(), 'daemon.log')
  const port = await freePort()
  // A config that is not there: the daemon exits at once, after Node's inspector has listened.
  const inspected = new DaemonProcess('/nonexistent/finnhubd.json', port, log, null, { inspect: true })
  t.match(await inspected.inspectorUrl(), /^ws:\/\/127\.0\.0\.1:\d+\//)
  t.equal(await inspected.exited, 1)
  const plain = new DaemonProcess('/nonexistent/finnhubd.json', port, log, null)
  await t.rejects(plain.inspectorUrl(), /without \{ inspect: true \}/)
  t.equal(await plain.exited, 1)
})
