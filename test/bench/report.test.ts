// The bench's pure parts: reading Prometheus text, --set overrides, the
// sustainability rule, drops by reason, the goals, the chart and the Markdown report.
import t from 'tap'
import {
  computeGoals, dropsBetween, dropsIn, dropText, GOAL_KEYS, metricByLabel, metricSum, renderLatencyChart, renderMarkdown, renderSlowSeconds, setPath, sustainable, sustainableStep, usPerRow,
  type BenchReport, type OverloadResult, type PhaseResult, type StepResult
} from '../../tools/bench/report.js'
import type { SettleResult } from '../../tools/bench/ceilings.js'
import { STAGES } from '../../daemon/metrics/latency.js'

t.test('metricSum adds every series of one name and only that name', async t => {
  const text = [
    '# HELP finnhubd_kafka_consumer_lag lag',
    'finnhubd_kafka_consumer_lag{partition="0"} 3',
    'finnhubd_kafka_consumer_lag{partition="1"} 4',
    'finnhubd_kafka_consumer_lag_total 100',
    'finnhubd_cassandra_rows_written_total 42'
  ].join('\n')
  t.equal(metricSum(text, 'finnhubd_kafka_consumer_lag'), 7)
  t.equal(metricSum(text, 'finnhubd_cassandra_rows_written_total'), 42)
  t.ok(Number.isNaN(metricSum(text, 'finnhubd_absent')), 'absent: NaN, not 0')
})

t.test('setPath sets nested keys, JSON values where they parse, and refuses a bare word', async t => {
  const o: Record<string, unknown> = { kafka: { topic: 'x' }, n: 1 }
  setPath(o, 'kafka.deliveryReports=errors')
  setPath(o, 'workers.maxQueue=16')
  setPath(o, 'n.deep=true')
  t.same(o, { kafka: { topic: 'x', deliveryReports: 'errors' }, workers: { maxQueue: 16 }, n: { deep: true } })
  t.throws(() => { setPath(o, 'novalue') }, /--set takes key\.path=value, got "novalue"/)
})

t.test('a step is sustainable with a backlog under a second of its rate and a bounded p99', async t => {
  t.equal(sustainable({ offeredPerSec: 1000, backlogAtEnd: 1000, latencyMs: { p50: 5, p99: 1000, max: 2000 } }), true)
  t.equal(sustainable({ offeredPerSec: 1000, backlogAtEnd: 1001, latencyMs: { p50: 5, p99: 10, max: 20 } }), false, 'backlog growing')
  t.equal(sustainable({ offeredPerSec: 1000, backlogAtEnd: 0, latencyMs: { p50: 5, p99: 1001, max: 2000 } }), false, 'p99 unbounded')
  t.equal(sustainable({ offeredPerSec: 1000, backlogAtEnd: 10, dropped: 10, latencyMs: { p50: 5, p99: 10, max: 20 } }), false, 'the daemon dropped trades')
  t.equal(sustainable({ offeredPerSec: 1000, backlogAtEnd: 10, dropped: 0, latencyMs: { p50: 5, p99: 10, max: 20 } }), true)
})

t.test('metricByLabel reads every label value present; dropsIn and dropsBetween count drops by reason', async t => {
  const before = [
    '# HELP finnhubd_kafka_dropped_total lost',
    'finnhubd_kafka_dropped_total{reason="queue_full"} 5',
    'finnhubd_kafka_dropped_total{reason="delivery_failed"} 0',
    'finnhubd_kafka_dropped_total_other{reason="queue_full"} 99',
    'finnhubd_trades_rejected_total{reason="price"} 1',
    'finnhubd_trades_rejected_total{role="ingest",reason="volume"} 2'
  ].join('\n')
  t.same(metricByLabel(before, 'finnhubd_kafka_dropped_total', 'reason'), { queue_full: 5, delivery_failed: 0 }, 'only that metric, zeros kept')
  t.same(metricByLabel(before, 'finnhubd_trades_rejected_total', 'reason'), { price: 1, volume: 2 }, 'the label among others')
  t.same(metricByLabel('x{reason="a\\"b"} 3', 'x', 'reason'), { 'a"b': 3 }, 'an escaped quote in a value, unescaped')
  t.same(metricByLabel('', 'x', 'reason'), {})
  const d0 = dropsIn(before)
  t.same(d0, { kafka: { queue_full: 5, delivery_failed: 0 }, rejected: { price: 1, volume: 2 }, total: 8 })
  // A reason the daemon adds later (overload) is read without being listed anywhere.
  const after = before.replace('{reason="queue_full"} 5', '{reason="queue_full"} 7') + '\nfinnhubd_kafka_dropped_total{reason="overload"} 1200'
  const d = dropsBetween(d0, dropsIn(after))
  t.same(d, { kafka: { queue_full: 2, delivery_failed: 0, overload: 1200 }, rejected: { price: 0, volume: 0 }, total: 1202 })
  t.equal(dropText(d), 'queue_full 2 (Kafka), overload 1,200 (Kafka)')
  t.equal(dropText(dropsBetween(d0, d0)), '0')
})

t.test('usPerRow is CPU % × 10,000 ÷ rows/s; sustainableStep is the highest passing step', async t => {
  t.equal(usPerRow(80, 10_000), 80)
  t.equal(usPerRow(33, 7000), 47.1)
  t.ok(Number.isNaN(usPerRow(50, 0)), 'no rows: NaN')
  const s = (offeredPerSec: number, ok: boolean): StepResult => ({ ...step, offeredPerSec, sustainable: ok })
  t.equal(sustainableStep([s(1000, true), s(4000, false), s(2500, true), s(2000, true)])?.offeredPerSec, 2500)
  t.equal(sustainableStep([s(1000, false)]), undefined)
})

const lat = { count: 10, p50: 1.5, p90: 2, p99: 12.25, p999: 30, max: 31 }
const step: StepResult = { offeredPerSec: 5000, seconds: 5, sent: 25000, storedPerSec: 5000, backlogAtEnd: 40, dropped: 0, latencyMs: { p50: 3, p99: 20, max: 40 }, perSec: { consumedBatches: 50, tradeRequests: 250, candleWrites: 100 }, cpuPercent: { daemon: 8, kafka: 2, cassandra: 6, bench: 10 }, sustainable: true }
const settled: SettleResult = { waitedFor: ['Cassandra compactions: none running or pending', 'Kafka CPU < 10 % of a core'], seconds: 4.5, boundSeconds: 120, timedOut: false, pending: [], compactionsAtStart: 3, compactionsMax: 4 }
const noDrops = { kafka: { queue_full: 0 }, rejected: { price: 0 }, total: 0 }
const second = (t: number, p99Ms: number | null, sending = true): PhaseResult['perSecond'][number] => ({ t, sending, sentPerSec: 2000, storedPerSec: 1990, p50Ms: p99Ms === null ? null : p99Ms / 4, p99Ms, maxMs: p99Ms, backlog: 10, rssMiB: 200, stageMaxMs: Object.fromEntries(STAGES.map((st, i) => [st, p99Ms === null ? null : p99Ms + i])) as PhaseResult['perSecond'][number]['stageMaxMs'] })
const phase = (name: PhaseResult['name'], ratePerSec: number, startT: number, latencyMs = lat): PhaseResult => ({
  name,
  ratePerSec,
  seconds: 3,
  sent: ratePerSec * 3,
  storedPerSec: ratePerSec - 10,
  latencyMs,
  drops: noDrops,
  rssMaxMiB: 210,
  cpuPercent: step.cpuPercent,
  startT,
  endT: startT + 3,
  perSecond: [second(startT + 1, 10), second(startT + 2, null), second(startT + 3, 12)]
})
const overload: OverloadResult = {
  ...phase('overload', 10_000, 20),
  storedPerSec: 4750,
  drops: { kafka: { queue_full: 0, overload: 120 }, rejected: { price: 0 }, total: 120 },
  perSecond: [second(21, 40), second(22, 80), second(23, 90), second(24, 30, false)],
  sustainablePerSec: 5000,
  storedToSustainable: 0.95,
  backlogAtEnd: 9000,
  recoveryBound: 5000,
  recoverySeconds: 2.5,
  recoveryLimitSeconds: 60,
  unaccountedAfterDrain: 0
}

function fixture (): Omit<BenchReport, 'goals'> {
  return {
    mode: 'quick',
    startedAt: '2026-11-25T00:00:00.000Z',
    durationSeconds: 100,
    machine: { hostname: 'h', cpuModel: 'CPU', cpus: 2, memoryGiB: 24, freeMemoryGiB: 20, kernel: '6', node: 'v20' },
    versions: { node: 'v20', kafka: '4.2.2' },
    stack: 'local',
    config: { workers: { batchSize: 2000 } },
    ceilings: {
      kafkaProducePerSec: 300000,
      kafkaRecords: 1000,
      cassandraWritePerSec: 20000,
      cassandraRows: 1000,
      cassandraRowsPerRequest: 30,
      lower: 20000,
      warmup: { kafkaRecords: 150, cassandraRows: 150 },
      settle: { kafka: settled, cassandra: { ...settled, seconds: 120, timedOut: true, pending: ['2 compaction tasks'] } },
      cassandraCpuSeconds: 0.011,
      cassandraCpuUsPerRow: 11
    },
    criteria: { backlogBoundSeconds: 1, p99BoundMs: 1000 },
    sweep: [step, { ...step, offeredPerSec: 10000, storedPerSec: 9000, perSec: { ...step.perSec, tradeRequests: 900 }, sustainable: false }],
    sustainablePerSec: 5000,
    ratios: { toKafkaCeiling: 0.02, toCassandraCeiling: 0.25, toLowerCeiling: 0.25 },
    cpuBudget: { ratePerSec: 5000, seconds: 5, trades: 25000, method: 'per-thread CPU and a profile', stages: [{ stage: 'socket + parse', usPerTrade: 3.25 }], threads: [{ name: 'main (event loop)', usPerTrade: 9.5 }], totalUsPerTrade: 17.75 },
    cpuBudgetError: null,
    latency: { ratePerSec: 2500, seconds: 8, stages: Object.fromEntries(STAGES.map(s => [s, lat])) as BenchReport['latency']['stages'], eventLoopDelayP99Ms: { worstSecond: 20, medianSecond: 10 }, rssMaxMiB: 200, cpuPercent: step.cpuPercent },
    phases: { latency: phase('latency', 2500, 0), steady: phase('steady', 2000, 10, { ...lat, p99: 20, p999: 60 }), overload },
    latencyChart: '20261125-000000-quick.latency.svg',
    memory: { peakRssMiB: 250, rssAtEndMiB: 240 },
    counts: { sent: 1000, distinctTrades: 999, identicalResends: 1, stored: 879, notStored: 120, countedDrops: 120, lost: 0, overCountedDrops: 0, duplicated: 0, notStoredAtEnd: 0 },
    drops: overload.drops,
    daemonExitCode: 0
  }
}

t.test('computeGoals: one goal per line of issue 17, each from its figure', async t => {
  const g = computeGoals(fixture())
  t.same(Object.keys(g), [...GOAL_KEYS], 'every goal, in order')
  t.match(g.throughputRatio, { value: 0.25, met: false })
  t.match(g.p99AtHalfLoad, { value: 12.25, met: true })
  t.match(g.steadyLatency, { value: 'p99 20.0, p99.9 60.0', met: false }, 'p99.9 over 50 ms')
  t.match(g.daemonCpuPerTrade, { value: '16 (at 5,000/s)', met: true }, '8 % of a core at 5,000 rows/s')
  t.match(g.processCpuPerRow, { value: '32 (at 5,000/s)', met: true }, '(8 + 2 + 6) % at 5,000 rows/s')
  t.match(g.rowsPerRequest, { value: 'lowest 10 (at 10,000/s); ceiling 30', met: false }, 'the failing step counts too')
  t.match(g.cassandraCpuPerRow, { value: '12 vs 11 = 1.09 × (at 5,000/s)', met: true })
  t.match(g.peakRss, { value: 250, met: true })
  t.match(g.overload, { value: '0.95 × sustainable; 120 dropped (counted), 0 unaccounted; recovered in 2.5 s', met: true })
  t.match(g.exact, { value: '0 lost, 0 duplicated (120 dropped and counted)', met: true })

  // identicalResends is 1 in the fixture: one drop beyond the missing trades can be a re-sent twin's, two cannot.
  const twin = computeGoals({ ...fixture(), counts: { ...fixture().counts, notStored: 119, overCountedDrops: 1 } })
  t.match(twin.exact, { value: /1 drops counted beyond the trades missing \(at most the 1 identical re-sends/, met: true }, 'a dropped copy of a stored twin')
  t.match(computeGoals({ ...fixture(), counts: { ...fixture().counts, overCountedDrops: 2 } }).exact, { met: false }, 'more than the re-sends: a drop counted for a stored trade')
  const f = fixture()
  const worse = computeGoals({
    ...f,
    sweep: f.sweep.map(s => ({ ...s, sustainable: false })),
    phases: { ...f.phases, overload: { ...overload, recoverySeconds: null } },
    counts: { ...f.counts, lost: 3, overCountedDrops: 2 }
  })
  t.match(worse.daemonCpuPerTrade, { value: '– (no sustainable step)', met: false }, 'no sustainable step: not met')
  t.match(worse.cassandraCpuPerRow, { met: false })
  t.match(worse.overload, { value: /no recovery within 60 s$/, met: false })
  t.match(worse.exact, { value: /^3 lost, 0 duplicated \(120 dropped and counted\); 2 drops counted beyond the trades missing$/, met: false })
  t.match(computeGoals({ ...f, phases: { ...f.phases, overload: { ...overload, storedToSustainable: 0.89 } } }).overload, { met: false }, 'stored under 0.9 × sustainable')
  t.match(computeGoals({ ...f, phases: { ...f.phases, overload: { ...overload, unaccountedAfterDrain: 1 } } }).overload, { met: false }, 'a trade neither stored nor counted')
})

t.test('the latency chart: per phase a p99 and a p50 line, sent/s and stored/s, phase boundaries', async t => {
  const f = fixture()
  const svg = renderLatencyChart(Object.values(f.phases), 'latency <over> time')
  t.match(svg, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg /)
  t.match(svg, /latency &lt;over&gt; time/)
  for (const name of ['latency 2,500/s p99', 'latency 2,500/s p50', 'steady 2,000/s p99', 'overload 10,000/s p99', 'overload 10,000/s stored/s', 'overload 10,000/s sent/s', 'overload step ends']) t.ok(svg.includes(`>${name}<`), name)
  // latency and steady: two runs of one point around their empty second (dots) on the latency panel; overload one run of 4.
  t.equal((svg.match(/<circle /g) ?? []).length, 8, 'a second with nothing stored is a gap')
  t.equal((svg.match(/<polyline /g) ?? []).length, 2 + 6, 'the overload p99 and p50 lines, and sent/stored lines for each phase')
})

t.test('the Markdown report shows every goal, the settling, the sweep, the CPU budget, every stage, the phases, the chart and the counts', async t => {
  const f = fixture()
  const report: BenchReport = { ...f, goals: computeGoals(f) }
  const md = renderMarkdown(report)
  t.match(md, /^# finnhubd bench \(quick\), 2026-11-25T00:00:00\.000Z/)
  t.match(md, /\| sustainable end-to-end throughput \/ lower ceiling \| ≥ 0\.8 of the lower ceiling \| 0\.25 \| \*\*no\*\* \|/)
  t.match(md, /\| end-to-end p99 at half the sustainable rate \(ms\) \| source_to_written p99 ≤ 25 ms \| 12\.25 \| yes \|/)
  t.match(md, /\| end-to-end p99 \/ p99\.9 at a steady 2,000 trades\/s \(ms\) \| p99 ≤ 25 ms and p99\.9 ≤ 50 ms \| p99 20\.0, p99\.9 60\.0 \| \*\*no\*\* \|/)
  t.match(md, /\| daemon CPU per stored trade, all threads \(µs\), highest sustainable step \| ≤ 20 µs \| 16 \(at 5,000\/s\) \| yes \|/)
  t.match(md, /\| trade rows per Cassandra request, every sweep step \| ≥ half the raw ceiling's \(30 \/ 2 = 15\) at every step \| lowest 10 \(at 10,000\/s\); ceiling 30 \| \*\*no\*\* \|/)
  t.match(md, /\| at 2 × the sustainable rate offered \| .* \| 0\.95 × sustainable; 120 dropped \(counted\), 0 unaccounted; recovered in 2\.5 s \| yes \|/)
  t.equal(md.split('\n## Goals')[1]?.split('\n## ')[0]?.split('\n').filter(l => l.startsWith('| ') && !l.startsWith('| goal') && !l.startsWith('| ---')).length, GOAL_KEYS.length, 'one row per goal')
  t.match(md, /\| raw Cassandra write \(1,000 rows, 30 rows\/request\) \| 20,000 \| 0\.25 \|/)
  t.match(md, /Settling before each ceiling: .*\(150 records, 150 rows\), then a wait for Cassandra compactions: none running or pending, Kafka CPU < 10 % of a core \(at most 120 s\) — before Kafka: 4\.5 s, compactions 3 at the start, 4 at most; before Cassandra: 120 s \(\*\*gave up after 120 s\*\*: 2 compaction tasks\)/)
  t.match(md, /Cassandra used 0\.011 CPU s during the raw write: 11 µs per row\./)
  t.match(md, /\| 5,000 \| 5,000 \| 40 \| 3\.00 \| 20\.0 \| 40\.0 \| 50 \| 250 \| 20 \| 100 \| 8 \| 2 \| 6 \| 10 \| 16 \| 32 \| 12 \| yes \|/)
  t.match(md, /\| 10,000 \|.*\| no \|/)
  t.match(md, /## CPU budget at 5,000 trades\/s/, 'the CPU budget section')
  t.match(renderMarkdown({ ...report, cpuBudget: null, cpuBudgetError: 'inspector: the connection closed' }), /## CPU budget\n\nNot measured: inspector: the connection closed\./)
  for (const stage of STAGES) t.match(md, new RegExp(`\\| ${stage}: .* \\| 10 \\| 1\\.50 \\| 2\\.00 \\| 12\\.3 \\| 30\\.0 \\| 31\\.0 \\|`))
  t.match(md, /## Latency over time\n\n!\[latency over time\]\(20261125-000000-quick\.latency\.svg\)/, 'the chart, linked relatively')
  t.match(md, /\| steady: steady 2,000\/s \(a busy real feed\) \| 2,000 \| 3 \| 6,000 \| 1,990 \| 1\.50 \| 20\.0 \| 60\.0 \| 31\.0 \| 0 \| 210 \| 8 \| 2 \| 6 \|/)
  t.match(md, /\| overload: 2 × the sustainable rate \(overload\) \| 10,000 \| .* \| overload 120 \(Kafka\) \|/)
  t.match(md, /Overload: 10,000 trades\/s offered \(2 × the sustainable 5,000\/s\) for 3 s; stored 4,750\/s = 0\.95 × the sustainable rate; 120 dropped and counted \(overload 120 \(Kafka\)\); backlog \(sent − stored − dropped\) 9,000 when the step ended, back under 5,000 \(one second of the sustainable rate\) 2\.5 s later; after the drain, 0 trades/)
  // The slowest seconds: latency phase (t 11, 13 with data; 12 has none), steady phase likewise; overload not listed.
  t.match(md, /Slowest seconds of the latency and steady phases/)
  const slow = md.split('Slowest seconds')[1]?.split('\n\n')[1]?.split('\n').filter(l => /^\| (latency|steady|overload) \|/.test(l)) ?? []
  t.equal(slow.length, 4, 'the seconds with data of the two phases, none of the overload')
  t.match(slow[0], /^\| latency \| \d+ \| 12\.0 \| 12\.0 \| 13\.0 \| 14\.0 \| 15\.0 \| 17\.0 \| 18\.0 \|$/, 'slowest first, each stage\'s max in that second')
  t.equal(renderSlowSeconds({ ...report.phases, latency: { ...report.phases.latency, perSecond: [] }, steady: { ...report.phases.steady, perSecond: [] } }).length, 0, 'no seconds with data: no table')
  t.match(md, /\| 1,000 \| 999 \| 1 \| 879 \| 120 \| 120 \| 0 \| 0 \| 0 \| 0 \|/)
  t.match(md, /Drops over the whole run, by reason .*: overload 120 \(Kafka\)\./)
  t.notMatch(md, /NaN|undefined/)
  const empty = renderMarkdown({ ...report, latencyChart: null, latency: { ...report.latency, stages: Object.fromEntries(STAGES.map(s => [s, { count: 0, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN }])) as BenchReport['latency']['stages'] } })
  t.match(empty, /\| frame_to_ack: .* \| 0 \| – \| – \|/, 'no data: a dash, not NaN')
  t.notMatch(empty, /!\[latency over time\]/, 'no chart, no link')
})
