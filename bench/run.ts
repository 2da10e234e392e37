// `npm run bench [-- [pipeline] [--quick] [options]]`: the load tests, against the
// local stack (started if it is not running) or a named cluster. The default is
// the whole-pipeline open-loop run (bench/pipeline.ts, see bench/README.md); the
// stage benches isolate one half: ingest (simulator → Kafka) and process
// (pre-filled topic → workers → Cassandra).

import { runIngestBench } from './ingest.js'
import { runPipelineBench } from './pipeline.js'
import { renderMarkdown } from './report.js'
import { runProcessBench } from './process.js'

const argv = process.argv.slice(2)
const [stage, ...rest] = argv[0] === undefined || argv[0].startsWith('-') ? ['pipeline', ...argv] : argv
switch (stage) {
  case 'pipeline': {
    const r = await runPipelineBench(rest)
    process.stdout.write('\n' + renderMarkdown(r))
    break
  }
  case 'ingest': {
    const runs = await runIngestBench(rest)
    const sustained = runs.filter(r => r.ackedPerSec >= 0.95 * r.offeredPerSec).map(r => r.offeredPerSec)
    process.stdout.write(`highest offered rate acknowledged at ≥ 95%: ${sustained.length > 0 ? Math.max(...sustained) : 'none'} trades/s\n`)
    break
  }
  case 'process': {
    const r = await runProcessBench(rest)
    process.stdout.write(`raw Cassandra writes (same rows, same batching): ${r.rawRowsPerSec} rows/s (before and after the pipeline: ${r.rawRuns.join(', ')})\n`)
    process.stdout.write(`pipeline (topic → workers → Cassandra + candles): ${r.pipelineRowsPerSec} rows/s = ${r.ratio} × raw\n`)
    process.stdout.write(`consume → written per batch: p50 ${r.consumeToWrittenMs.p50} ms, p99 ${r.consumeToWrittenMs.p99} ms, max ${r.consumeToWrittenMs.max} ms\n`)
    process.stdout.write(`main-thread CPU ${r.mainCpuUsPerRow} µs/row, peak RSS ${r.peakRssMiB} MiB, ${r.candlesWritten} candle writes\n`)
    const cpu = (c: typeof r.cpuRaw): string => `node ${c.node}, kafka ${c.kafka}, cassandra ${c.cassandra}`
    process.stdout.write(`records per consumed batch ${r.recordsPerBatch}; rows per Cassandra request: raw ${r.rowsPerRequest.raw}, pipeline ${r.rowsPerRequest.pipeline}\n`)
    process.stdout.write(`CPU µs per row — raw writes: ${cpu(r.cpuRaw)}; pipeline: ${cpu(r.cpuPipeline)}\n`)
    break
  }
  default:
    process.stderr.write(`unknown bench stage "${String(stage)}"; stages: pipeline (the default), ingest, process\n`)
    process.exitCode = 2
}
