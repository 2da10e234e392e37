// The bench's pure parts: reading Prometheus text, --set overrides, the
// sustainability rule and the Markdown report.
import t from 'tap'
import { metricSum, renderMarkdown, setPath, sustainable, type BenchReport } from '../../bench/report.js'
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
})

t.test('the Markdown report shows goals, ceilings, the sweep, every stage and the counts', async t => {
  const lat = { count: 10, p50: 1.5, p90: 2, p99: 12.25, p999: 30, max: 31 }
  const step = { offeredPerSec: 5000, seconds: 5, sent: 25000, storedPerSec: 4990, backlogAtEnd: 40, latencyMs: { p50: 3, p99: 20, max: 40 }, perSec: { consumedBatches: 50, tradeRequests: 400, candleWrites: 100 }, cpuPercent: { daemon: 50, kafka: 20, cassandra: 60, bench: 10 }, sustainable: true }
  const report: BenchReport = {
    mode: 'quick',
    startedAt: '2026-11-25T00:00:00.000Z',
    durationSeconds: 100,
    machine: { hostname: 'h', cpuModel: 'CPU', cpus: 2, memoryGiB: 24, freeMemoryGiB: 20, kernel: '6', node: 'v20' },
    versions: { node: 'v20', kafka: '4.2.2' },
    stack: 'local',
    config: { workers: { batchSize: 2000 } },
    ceilings: { kafkaProducePerSec: 300000, kafkaRecords: 1000, cassandraWritePerSec: 20000, cassandraRows: 1000, cassandraRowsPerRequest: 30, lower: 20000 },
    criteria: { backlogBoundSeconds: 1, p99BoundMs: 1000 },
    sweep: [step, { ...step, offeredPerSec: 10000, sustainable: false }],
    sustainablePerSec: 5000,
    ratios: { toKafkaCeiling: 0.02, toCassandraCeiling: 0.25, toLowerCeiling: 0.25 },
    latency: { ratePerSec: 2500, seconds: 8, stages: Object.fromEntries(STAGES.map(s => [s, lat])) as BenchReport['latency']['stages'], eventLoopDelayP99Ms: { worstSecond: 20, medianSecond: 10 }, rssMaxMiB: 200, cpuPercent: step.cpuPercent },
    memory: { peakRssMiB: 250, rssAtEndMiB: 240 },
    counts: { sent: 1000, distinctTrades: 999, identicalResends: 1, stored: 999, lost: 0, duplicated: 0, notStoredAtEnd: 0 },
    daemonExitCode: 0,
    goals: {
      throughputRatio: { goal: '≥ 0.8', value: 0.25, met: false },
      p99AtHalfLoad: { goal: '≤ 25 ms', value: 12.25, met: true },
      peakRss: { goal: '≤ 300 MiB', value: 250, met: true },
      exact: { goal: '0/0', value: '0 lost, 0 duplicated', met: true }
    }
  }
  const md = renderMarkdown(report)
  t.match(md, /^# finnhubd bench \(quick\), 2026-11-25T00:00:00\.000Z/)
  t.match(md, /\| sustainable end-to-end throughput \/ lower ceiling \| ≥ 0\.8 \| 0\.25 \| \*\*no\*\* \|/)
  t.match(md, /\| end-to-end p99 at half the sustainable rate \(ms\) \| ≤ 25 ms \| 12\.25 \| yes \|/)
  t.match(md, /\| raw Cassandra write \(1,000 rows, 30 rows\/request\) \| 20,000 \| 0\.25 \|/)
  t.match(md, /\| 5,000 \| 4,990 \| 40 \| 3\.00 \| 20\.0 \| 40\.0 \| 50 \| 400 \| 100 \| 50 \| 20 \| 60 \| 10 \| yes \|/)
  t.match(md, /\| 10,000 \|.*\| no \|/)
  for (const stage of STAGES) t.match(md, new RegExp(`\\| ${stage}: .* \\| 10 \\| 1\\.50 \\| 2\\.00 \\| 12\\.3 \\| 30\\.0 \\| 31\\.0 \\|`))
  t.match(md, /\| 1,000 \| 999 \| 1 \| 999 \| 0 \| 0 \| 0 \| 0 \|/)
  const empty = renderMarkdown({ ...report, latency: { ...report.latency, stages: Object.fromEntries(STAGES.map(s => [s, { count: 0, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN }])) as BenchReport['latency']['stages'] } })
  t.match(empty, /\| frame_to_ack: .* \| 0 \| – \| – \|/, 'no data: a dash, not NaN')
})
