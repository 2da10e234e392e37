// Ingest benchmark: simulator (own process) → ingest role (this process) → the local
// Kafka. Open loop: the simulator schedules trades by the clock at each offered
// rate, whatever the daemon does. For each rate it reports the acknowledged
// throughput, frame-received → Kafka-ack latency (HDR histogram), the main thread's
// busy time per trade (event-loop utilisation × wall time ÷ trades) and peak RSS.
// Usage: node dist/bench/ingest.js [--rates 100000,200000,300000] [--seconds 10]

import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import * as hdr from 'hdr-histogram-js'
import { Registry } from 'prom-client'
import { validateConfig } from '../daemon/config/load.js'
import { startIngest } from '../daemon/ingest.js'
import { createLogger } from '../daemon/log.js'
import { PROJECT_ROOT } from '../daemon/paths.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { selectComponents, up } from '../stack/stack.js'
import { createTopic } from '../daemon/kafka/admin.js'

const TOKEN = 'bench'
const SYMBOLS = Array.from({ length: 40 }, (_, i) => `BENCH:SYM${String(i).padStart(2, '0')}`)

export interface IngestRun {
  offeredPerSec: number
  seconds: number
  sent: number
  delivered: number
  dropped: number
  ackedPerSec: number
  backlogAtEnd: number
  latencyMs: { p50: number, p99: number, p999: number, max: number }
  mainThreadUsPerTrade: number
  peakRssMiB: number
}

async function startSimulatorProcess (rate: number, total: number): Promise<{ child: ChildProcess, url: string }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'daemon', 'cli.js'), 'simulate', '--port', '0', '--token', TOKEN,
    '--rate', String(rate), '--max-trades-per-frame', '40', '--max-total', String(total)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve, reject) => {
    let buf = ''
    child.stdout?.on('data', (b: Buffer) => {
      buf += b.toString()
      const m = /listening on (ws:\/\/\S+)/.exec(buf)
      if (m !== null) resolve(m[1] as string)
    })
    child.once('exit', code => reject(new Error(`simulator exited with ${String(code)}`)))
  })
  return { child, url }
}

export async function runIngestAt (rate: number, seconds: number, kafkaBootstrap: string): Promise<IngestRun> {
  const total = Math.round(rate * seconds)
  const topic = `finnhub.bench.ingest.${Date.now()}`
  await createTopic(kafkaBootstrap, topic, 6)
  const { child, url } = await startSimulatorProcess(rate, total)
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000, numberOfSignificantValueDigits: 3 })
  const config = validateConfig({
    logLevel: 'warn',
    finnhub: { url, token: TOKEN, symbols: SYMBOLS },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, lingerMs: 5, maxBufferedMessages: 2_000_000, maxBufferedKbytes: 512 * 1024 }
  })
  const ingest = await startIngest(config, {
    log: createLogger({ level: 'warn' }),
    registry: new Registry(),
    onAck: ms => { histogram.recordValue(Math.max(1, ms)) }
  })
  let peakRss = process.memoryUsage.rss()
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 100)
  const elu0 = performance.eventLoopUtilization()
  const started = Date.now()
  // Offered load runs for `seconds`; then allow a short drain to see the backlog.
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const elu = performance.eventLoopUtilization(elu0)
  const wallMs = Date.now() - started
  const deliveredInWindow = ingest.counters.delivered
  const received = ingest.counters.tradesReceived
  const drainUntil = Date.now() + 15_000
  while (ingest.counters.delivered < received && Date.now() < drainUntil) await new Promise(resolve => setTimeout(resolve, 50))
  clearInterval(rssTimer)
  const run: IngestRun = {
    offeredPerSec: rate,
    seconds,
    sent: received,
    delivered: ingest.counters.delivered,
    dropped: Object.values(ingest.counters.dropped).reduce((a, b) => a + b, 0),
    ackedPerSec: Math.round(deliveredInWindow / (wallMs / 1000)),
    backlogAtEnd: received - deliveredInWindow,
    latencyMs: {
      p50: histogram.getValueAtPercentile(50),
      p99: histogram.getValueAtPercentile(99),
      p999: histogram.getValueAtPercentile(99.9),
      max: histogram.maxValue
    },
    mainThreadUsPerTrade: received === 0 ? 0 : Math.round((elu.active * 1000 / received) * 100) / 100,
    peakRssMiB: Math.round(peakRss / 1048576)
  }
  await ingest.stop(10_000)
  child.kill('SIGTERM')
  return run
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { rates: { type: 'string' }, seconds: { type: 'string' } } })
  const rates = (values.rates ?? '100000,200000,300000,400000').split(',').map(Number)
  const seconds = Number(values.seconds ?? '10')
  const options = stackOptions(process.env)
  await up(options, process.env, selectComponents(['kafka']), line => { process.stderr.write(`[stack] ${line}\n`) })
  const { kafkaBootstrap } = stackEndpoints(options)
  process.stdout.write(`ingest bench: simulator process → ingest → Kafka ${kafkaBootstrap}, ${seconds} s per rate, open loop\n`)
  process.stdout.write('offered/s   acked/s   backlog  dropped  p50 ms  p99 ms  p99.9 ms  max ms  main µs/trade  peak RSS MiB\n')
  for (const rate of rates) {
    const r = await runIngestAt(rate, seconds, kafkaBootstrap)
    process.stdout.write(`${String(r.offeredPerSec).padStart(9)} ${String(r.ackedPerSec).padStart(9)} ${String(r.backlogAtEnd).padStart(8)} ${String(r.dropped).padStart(8)} ` +
      `${String(r.latencyMs.p50).padStart(7)} ${String(r.latencyMs.p99).padStart(7)} ${String(r.latencyMs.p999).padStart(9)} ${String(r.latencyMs.max).padStart(7)} ` +
      `${String(r.mainThreadUsPerTrade).padStart(14)} ${String(r.peakRssMiB).padStart(13)}\n`)
  }
}

if (process.argv[1]?.endsWith('ingest.js') === true) await main()
