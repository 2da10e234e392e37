// `npm run bench [-- [pipeline] [--quick] [options]]`: the load tests, against the
// local stack (started if it is not running) or a named cluster. The default is
// the whole-pipeline open-loop run (tools/bench/pipeline.ts, see tools/bench/README.md); the
// stage benches isolate one half: ingest (simulator → Kafka) and process
// (pre-filled topic → workers → Cassandra). `--help` (after a stage: that stage's)
// answers before anything starts; a failure is one line and exit 1 (daemon/args.ts).

import { helpRequested, runEntry } from '../../daemon/args.js'
import { FinnhubdError } from '../../daemon/core/errors.js'

const USAGE = `usage: npm run bench [-- [pipeline|ingest|process|latency|scaleout] [options]]

The load tests, against the local stack (started when it is not running) or, for the
pipeline bench, a named cluster. Reports go to tools/bench/results/ (see tools/bench/README.md).

stages:
  pipeline   (the default) simulator → the real daemon → Kafka → workers → Cassandra:
             settled ceilings, an open-loop rate sweep, the CPU budget, per-stage latency,
             latency over time at half load, 2,000/s and 2 × overload, an exact account
  ingest     simulator → ingest role → Kafka, at each offered rate
  process    a pre-filled topic → process role → Cassandra, against raw Cassandra writes
  latency    2,000 trades/s from the daemon's first second (start-up, steady) and half
             load, as an A/B of builds or settings (--variant), in alternating rounds
  scaleout   one ingest-only daemon and 1, 2, … process-only daemons (one consumer group), on the
             local stack or the cluster stack (--cluster): stored/s, p99 and each process's CPU

\`npm run bench -- <stage> --help\` lists a stage's options.`

const STAGE_USAGE = {
  pipeline: `usage: npm run bench -- [pipeline] [options]

The whole-pipeline open-loop bench: raw Kafka and Cassandra ceilings (each after a warm-up
and a wait for the stack to settle), a rate sweep (a step is sustainable when its backlog
stays under a second of load, its p99 ≤ 1 s and nothing is dropped), the daemon's CPU
budget at the sustainable rate, phases sampled every second (half the sustainable rate,
a steady 2,000 trades/s, twice the sustainable rate and the recovery; charted in an SVG
beside the report), and the account of every trade sent (lost beyond counted drops,
duplicated).

options:
  --quick                    a short run (about three minutes)
  --smoke                    a tiny run, for the test suite
  --rates R1,R2,…            sweep these rates (trades/s) instead of fractions of the lower ceiling
  --step-seconds N           seconds per sweep step
  --set key.path=value       a daemon config override (repeatable), e.g. --set kafka.deliveryReports=errors
  --kafka HOST:PORT --cassandra HOST:PORT
                             against that cluster instead of the local stack (both together)
  --out DIR                  where the report goes (default tools/bench/results)
  --keep                     keep the bench's keyspaces and topics
  --cpu-prof                 run the daemon with --cpu-prof (profiles beside the report)
  --console                  keep a web console client open throughout and count what it got`,
  ingest: `usage: npm run bench -- ingest [--rates R1,R2,…] [--seconds N]

Simulator (its own process) → the ingest role (this process) → the local Kafka, open loop:
acknowledged throughput, frame → Kafka-ack latency, main-thread time per trade, peak RSS.

options:
  --rates R1,R2,…   offered rates in trades/s (default 100000,200000,300000,400000)
  --seconds N       seconds per rate (default 10)`,
  latency: `usage: npm run bench -- latency [--variant NAME=ROOT[,key.path=value…]]… [options]

For each variant (a finnhubd installation's dist/ and config overrides; default: this one),
in rounds that alternate their order: a fresh daemon, at once 2,000 trades/s for the
start-up row (30 s), 10 s more, the steady row (60 s), then half load (30 s); end-to-end
latency exact per row, CPU, candle rows/s by resolution. The stack is warmed first (60 s).
E.g. --variant before=../before --variant after=. --rounds 2

options:
  --variant NAME=ROOT[,k=v…]   a build (ROOT with dist/; . for this one) and its overrides (repeatable)
  --rounds N                   rounds (default 1)
  --startup-seconds N --warm-seconds N --steady-seconds N --half-seconds N --stack-warm-seconds N
  --half-rate N                the half-load rate (default 8000: half the full bench's sustainable rate on the 2-core machine)
  --set key.path=value         an override for every variant (repeatable)
  --out DIR --keep --smoke`,
  scaleout: `usage: npm run bench -- scaleout [--cluster] [--process-daemons 1,2] [options]

One ingest-only daemon (roles [ingest], fed by the simulator) and N process-only daemons
(roles [process], one consumer group), each its own process, for each N in turn. Per N: a
steady window open loop at --rate (stored/s, source_to_written p50/p99/max over every
process daemon), then a drain of a pre-filled topic by N fresh process daemons (stored/s at
saturation); in each window the CPU of every daemon, every JVM of the stack and the bench,
and the machine's busy share. With --cluster, on the cluster stack (\`npm run stack -- up
--cluster\`, started when it is not running): topics replicated 3 with min.insync 2, the
keyspace NetworkTopologyStrategy { datacenter1: 3 }, writes at LOCAL_QUORUM.

options:
  --cluster                  on the cluster stack (3 brokers, 3 Cassandra nodes) instead of the local one
  --process-daemons N1,N2,…  process daemons per run, in this order (default 1,2; 1,2,2,1 alternates)
  --rate N                   the steady window's offered rate, trades/s (default 2000)
  --seconds N                the steady window's length (default 30), after --warm-seconds (default 10)
  --drain-trades N           trades pre-filled for each drain (default 200000)
  --partitions N             partitions of each topic (default 6; at least the most process daemons)
  --set key.path=value       a config override for every daemon (repeatable)
  --out DIR --keep --smoke`,
  process: `usage: npm run bench -- process [--trades N] [--symbols N]

A pre-filled topic → the process role (consumer, worker pool, Cassandra writers, candles)
→ the local Cassandra, against raw Cassandra writes of the same rows.

options:
  --trades N    trades in the topic (default 300000)
  --symbols N   how many symbols they spread over (default 40)`
} as const

async function main (argv: readonly string[]): Promise<number> {
  const explicit = argv[0] !== undefined && !argv[0].startsWith('-')
  const [stage, ...rest] = explicit ? argv : ['pipeline', ...argv]
  // `npm run bench -- --help` is the list; `-- pipeline --help` the pipeline's options.
  if (!explicit) helpRequested(rest, USAGE)
  if (stage !== 'pipeline' && stage !== 'ingest' && stage !== 'process' && stage !== 'latency' && stage !== 'scaleout') {
    helpRequested(rest, USAGE)
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', `unknown bench stage "${String(stage)}"; stages: pipeline (the default), ingest, process, latency, scaleout; see \`npm run bench -- --help\``)
  }
  helpRequested(rest, STAGE_USAGE[stage])
  // Loaded after --help: each stage module brings the clients it benches.
  switch (stage) {
    case 'pipeline': {
      const [{ runPipelineBench }, { renderMarkdown }] = await Promise.all([import('./pipeline.js'), import('./report.js')])
      const r = await runPipelineBench(rest)
      process.stdout.write('\n' + renderMarkdown(r))
      return 0
    }
    case 'latency': {
      const { runLatencyBench, renderLatencyMarkdown } = await import('./latency.js')
      process.stdout.write('\n' + renderLatencyMarkdown(await runLatencyBench(rest)))
      return 0
    }
    case 'scaleout': {
      const [{ runScaleoutBench }, { renderScaleoutMarkdown }] = await Promise.all([import('./scaleout.js'), import('./scaleout-report.js')])
      process.stdout.write('\n' + renderScaleoutMarkdown(await runScaleoutBench(rest)))
      return 0
    }
    case 'ingest': {
      const { runIngestBench } = await import('./ingest.js')
      const runs = await runIngestBench(rest)
      const sustained = runs.filter(r => r.ackedPerSec >= 0.95 * r.offeredPerSec).map(r => r.offeredPerSec)
      process.stdout.write(`highest offered rate acknowledged at ≥ 95%: ${sustained.length > 0 ? Math.max(...sustained) : 'none'} trades/s\n`)
      return 0
    }
    case 'process': {
      const { runProcessBench } = await import('./process.js')
      const r = await runProcessBench(rest)
      process.stdout.write(`raw Cassandra writes (same rows, same batching): ${r.rawRowsPerSec} rows/s (before and after the pipeline: ${r.rawRuns.join(', ')})\n`)
      process.stdout.write(`pipeline (topic → workers → Cassandra + candles): ${r.pipelineRowsPerSec} rows/s = ${r.ratio} × raw\n`)
      process.stdout.write(`consume → written per batch: p50 ${r.consumeToWrittenMs.p50} ms, p99 ${r.consumeToWrittenMs.p99} ms, max ${r.consumeToWrittenMs.max} ms\n`)
      process.stdout.write(`main-thread CPU ${r.mainCpuUsPerRow} µs/row, daemon peak RSS ${r.peakRssMiB} MiB, ${r.candlesWritten} candle writes; ${r.startupSeconds} s from spawn to the first row (not counted)\n`)
      const cpu = (c: typeof r.cpuRaw): string => `node ${c.node}, kafka ${c.kafka}, cassandra ${c.cassandra}`
      process.stdout.write(`records per consumed batch ${r.recordsPerBatch}; rows per Cassandra request: raw ${r.rowsPerRequest.raw}, pipeline ${r.rowsPerRequest.pipeline}\n`)
      process.stdout.write(`CPU µs per row — raw writes: ${cpu(r.cpuRaw)}; pipeline: ${cpu(r.cpuPipeline)}\n`)
      return 0
    }
  }
}

const argv = process.argv.slice(2)
const explicitStage = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'pipeline'
await runEntry(async () => await main(argv), { prefix: 'finnhubd bench', command: `npm run bench -- ${explicitStage}` })
