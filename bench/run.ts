// `npm run bench [-- <stage> [options]]`: the load tests, against the local stack
// (started if it is not running). Stages built so far: ingest (simulator → Kafka).
// The whole-pipeline run (ceilings, sustainable rate, per-stage latency at half
// load) joins here as the process role lands.

import { runIngestBench } from './ingest.js'

const [stage = 'ingest', ...rest] = process.argv.slice(2)
switch (stage) {
  case 'ingest': {
    const runs = await runIngestBench(rest)
    const sustained = runs.filter(r => r.ackedPerSec >= 0.95 * r.offeredPerSec).map(r => r.offeredPerSec)
    process.stdout.write(`highest offered rate acknowledged at ≥ 95%: ${sustained.length > 0 ? Math.max(...sustained) : 'none'} trades/s\n`)
    break
  }
  default:
    process.stderr.write(`unknown bench stage "${stage}"; stages: ingest\n`)
    process.exitCode = 2
}
