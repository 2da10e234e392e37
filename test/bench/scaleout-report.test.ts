// The scale-out bench's pure parts (tools/bench/scaleout.ts, scaleout-report.ts): its
// command line, the daemons' configs (valid, per role, replicated on the cluster),
// several daemons' latency merged into one histogram, and the Markdown report.
import t from 'tap'
import * as hdr from 'hdr-histogram-js'
import { validateConfig } from '../../daemon/config/load.js'
import { parseScaleoutArgs, scaleoutConfig } from '../../tools/bench/scaleout.js'
import { cpuByKind, latencyAcross, renderScaleoutMarkdown, scaleFactors, usPerStoredRow, type ScaleoutReport, type ScaleoutRun, type ScaleoutWindow } from '../../tools/bench/scaleout-report.js'

/** An encoded snapshot (as GET /latency serves it) of these values in ms. */
function snapshot (valuesMs: number[]): { count: number, histogram: string } {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: 32, useWebAssembly: false })
  for (const v of valuesMs) h.recordValue(v * 1000)
  const out = { count: h.totalCount, histogram: hdr.encodeIntoCompressedBase64(h) }
  h.destroy()
  return out
}

t.test('the command line: defaults, the smoke scale, and bad values refused by name', async t => {
  const d = parseScaleoutArgs([])
  t.same([d.cluster, d.processDaemons, d.partitions, d.rate, d.seconds, d.drainTrades], [false, [1, 2], 6, 2000, 30, 200_000])
  const c = parseScaleoutArgs(['--cluster', '--process-daemons', '1,2,2,1', '--rate', '3000', '--seconds', '20', '--set', 'logLevel=info'])
  t.same([c.cluster, c.processDaemons, c.rate, c.seconds, c.set], [true, [1, 2, 2, 1], 3000, 20, ['logLevel=info']])
  t.ok(parseScaleoutArgs(['--smoke']).drainTrades < 10_000, 'smoke: a small drain')
  t.throws(() => parseScaleoutArgs(['--process-daemons', '1,x']), /--process-daemons takes a whole number ≥ 1, got "x"/)
  t.throws(() => parseScaleoutArgs(['--rate', '0']), /--rate takes a whole number ≥ 1, got "0"/)
  t.throws(() => parseScaleoutArgs(['--process-daemons', '1,8']), /8 consumers in one group on 6 partitions would leave 2 idle; raise --partitions to at least 8/)
  t.throws(() => parseScaleoutArgs(['--bogus']), /bogus/)
})

t.test('the daemons\' configs: valid, one role each, replicated on the cluster', async t => {
  const endpoints = { kafkaBootstrap: '127.0.0.1:39092,127.0.0.1:39192,127.0.0.1:39292', cassandraContactPoints: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], cassandraPort: 39042 }
  const base = { endpoints, topic: 'finnhub.scaleout.x.1', groupId: 'g1', keyspace: 'scaleout_x', partitions: 6, httpPort: 4321, simUrl: 'ws://127.0.0.1:1/ws', set: [] }
  const ingest = validateConfig(scaleoutConfig({ ...base, cluster: true, role: 'ingest' }))
  const proc = validateConfig(scaleoutConfig({ ...base, cluster: true, role: 'process' }))
  t.same(ingest.roles, ['ingest'])
  t.same(proc.roles, ['process'])
  t.same(ingest.finnhub.url, 'ws://127.0.0.1:1/ws', 'the ingest daemon reads the simulator')
  t.same(proc.kafka.bootstrapServers, ['127.0.0.1:39092', '127.0.0.1:39192', '127.0.0.1:39292'], 'every broker to bootstrap from')
  t.same([proc.kafka.topicPartitions, proc.kafka.topicReplicationFactor, proc.kafka.topicMinInsyncReplicas], [6, 3, 2])
  t.same(proc.cassandra.contactPoints, ['127.0.0.1', '127.0.0.2', '127.0.0.3'])
  t.same(proc.cassandra.replication, { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 3 } })
  t.equal(proc.cassandra.consistency, 'LOCAL_QUORUM')
  t.equal(proc.kafka.groupId, ingest.kafka.groupId, 'one group')
  const single = validateConfig(scaleoutConfig({ ...base, cluster: false, role: 'process', set: ['cassandra.maxConcurrentWrites=8'] }))
  t.same([single.kafka.topicReplicationFactor, single.kafka.topicMinInsyncReplicas], [1, 1])
  t.same(single.cassandra.replication, { class: 'SimpleStrategy', replicationFactor: 1 })
  t.equal(single.cassandra.maxConcurrentWrites, 8, '--set applies last')
})

t.test('latency across daemons: their windows merged into one histogram, not an average of p99s', async t => {
  const a0 = snapshot([1000, 1000])
  const a1 = snapshot([1000, 1000, ...Array(98).fill(2)])
  const b1 = snapshot([...Array(99).fill(3), 500])
  const l = latencyAcross([{ before: a0, after: a1 }, { before: null, after: b1 }])
  t.equal(l.count, 198, 'each daemon\'s window: its snapshot at the end minus at the start')
  t.ok(Math.abs(l.p50 - 3) < 0.01 || Math.abs(l.p50 - 2) < 0.01, `p50 of the merged window (${l.p50})`)
  t.ok(Math.abs(l.p99 - 3) < 0.01, `p99: 2 of 198 records above 3 ms (${l.p99})`)
  t.ok(Math.abs(l.max - 500) < 1, `the max of the window, not of the start (${l.max})`)
  const empty = latencyAcross([{ before: a0, after: a0 }])
  t.equal(empty.count, 0)
  t.ok(Number.isNaN(empty.p99), 'nothing recorded: NaN, shown as –')
})

const window = (storedPerSec: number, cpu: ScaleoutWindow['cpu']): ScaleoutWindow => ({
  seconds: 30, offeredPerSec: 4000, storedPerSec, storedPerSecByDaemon: [storedPerSec], latencyMs: { count: 10, p50: 5, p90: 8, p99: 12.5, p999: 20, max: 30 }, cpu, machineBusyPercent: 97.5
})
const run = (n: number, steady: number, drain: number): ScaleoutRun => ({
  processDaemons: n,
  steady: { ...window(steady, [{ name: 'ingest', pid: 1, percent: 10, usPerRow: 25 }, { name: 'process-1', pid: 2, percent: 40, usPerRow: 100 }, { name: 'kafka-1', pid: 3, percent: 20, usPerRow: 50 }, { name: 'kafka-2', pid: 4, percent: 22.5, usPerRow: 56 }, { name: 'cassandra-1', pid: 5, percent: 30, usPerRow: 75 }, { name: 'bench', pid: 6, percent: NaN, usPerRow: NaN }]), sent: 120_000, leftAfterDrain: 0, dropped: 0 },
  drain: { ...window(drain, [{ name: 'process-1', pid: 7, percent: 90, usPerRow: 100 }]), trades: 200_000, startupSeconds: 4.2, stored: 200_000, rowsWritten: 201_500, everyDaemonStored: n === 1 }
})

t.test('CPU by kind, µs per row and the scale factors', async t => {
  t.same(cpuByKind(run(1, 1, 1).steady.cpu), { ingest: 10, process: 40, kafka: 42.5, cassandra: 30, bench: 0 }, 'brokers added, a missing reading counted as 0')
  t.equal(usPerStoredRow(50, 5000), 100, '50 % of a core for 5,000 rows/s: 100 µs a row')
  t.ok(Number.isNaN(usPerStoredRow(50, 0)))
  const f = scaleFactors([run(1, 4000, 6000), run(2, 4000, 9000), run(2, 4000, 10_200), run(1, 4000, 6400)], 'drain')
  t.same([...f.entries()], [[1, 1], [2, 1.55]], 'means per count, over the fewest daemons\' mean')
})

t.test('the Markdown: one row per run and window, the CPU per process, the counts', async t => {
  const r: ScaleoutReport = {
    startedAt: '2026-12-07T21:00:00.000Z',
    durationSeconds: 300,
    machine: { cpus: 2, cpuModel: 'AMD EPYC', memoryGiB: 23.5 },
    stack: { cluster: true, kafkaBootstrap: '127.0.0.1:39092', cassandraContactPoints: ['127.0.0.1', '127.0.0.2'], cassandraPort: 39042, topicPartitions: 6, topicReplicationFactor: 3, topicMinInsyncReplicas: 2, replication: '{"class":"NetworkTopologyStrategy"}', consistency: 'LOCAL_QUORUM' },
    ratePerSec: 4000,
    steadySeconds: 30,
    drainTrades: 200_000,
    command: 'npm run bench -- scaleout --cluster',
    runs: [run(1, 3990, 6000), run(2, 3995, 9000)]
  }
  const md = renderScaleoutMarkdown(r)
  t.match(md, /Cluster stack: Kafka 127\.0\.0\.1:39092, Cassandra 127\.0\.0\.1, 127\.0\.0\.2 port 39042; topic 6 partitions, replication 3, min\.insync 2/)
  t.match(md, /\| 1 \| steady \| 3,990 \| 3,990 \| 5\.00 \| 12\.5 \| 30\.0 \| 10 \| 40 \| 42\.5 \| 30 \| 0 \| 97\.5 \|/)
  t.match(md, /\| 2 \| drain \| 9,000 \|/)
  t.match(md, /drain 1 daemon 1×, 2 daemons 1\.5×/)
  t.match(md, /\| 1 \| steady \| bench \| 6 \| – \| – \|/, 'a missing CPU reading shown as –')
  t.match(md, /one daemon drained the topic before the others stored a row/, 'a drain without every daemon storing is said so')
  t.match(md, /`npm run bench -- scaleout --cluster`/)
  t.match(md, /200,000 of 200,000 stored \(201,500 rows written: 1,500 again after the group's rebalance\)/)
})
