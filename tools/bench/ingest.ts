// Ingest benchmark: simulator (own process) → ingest role (this process) → the local
// Kafka. Open loop: the simulator schedules trades by the clock at each offered
// rate, whatever the daemon does. For each rate it reports the acknowledged
// throughput, frame-received → Kafka-ack latency (HDR histogram), the main thread's
// busy time per trade (event-loop utilisation × wall time ÷ trades) and peak RSS.
// Run through `npm run bench -- ingest [--rates 100000,200000,300000] [--seconds 10]`.

import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Registry } from 'prom-client'
import { validateConfig } from '../../daemon/config/load.js'
import { startIngest } from '../../daemon/ingest.js'
import { createLogger } from '../../daemon/log.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { selectComponents, up } from '../stack/stack.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { procCpuMs } from './ceilings.js'

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
  /** frame → ack, ms: median over windows of (queue p50 + rtt p50), and the worst window's (queue p99 + rtt p99). */
  latencyMs: { p50: number, p99: number, max: number }
  /** Main-thread wall time busy per trade (event-loop utilisation); includes time descheduled by other processes. */
  mainThreadUsPerTrade: number
  /** Main-thread CPU time per trade (from /proc: the main thread only, not librdkafka's threads). */
  mainThreadCpuUsPerTrade: number
  peakRssMiB: number
}

/** CPU time of this process's main thread (its task id is the pid), in ms. */
export function mainThreadCpuMs (): number {
  return procCpuMs(`/proc/${process.pid}/task/${process.pid}/stat`)
}

async function startSimulatorProcess (rate: number, total: number): Promise<{ child: ChildProcess, url: string }> {
  const child = spawn(process.execPath, ['--', join(PROJECT_ROOT, 'dist', 'daemon', 'cli.js'), 'simulate', '--port', '0', '--token', TOKEN,
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
  const p50s: number[] = []
  let worstP99 = 0
  let worstMax = 0
  const config = validateConfig({
    logLevel: 'warn',
    finnhub: { url, token: TOKEN, symbols: SYMBOLS },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, lingerMs: 5, maxBufferedMessages: 2_000_000, maxBufferedKbytes: 512 * 1024, statsIntervalMs: 250 }
  })
  const ingest = await startIngest(config, {
    log: createLogger({ level: 'warn' }),
    registry: new Registry(),
    onStats: stats => {
      for (const broker of Object.values(stats.brokers)) {
        const { int_latency: q, outbuf_latency: o, rtt } = broker
        if (broker.nodeid < 0 || q === undefined || rtt === undefined || rtt.cnt === 0) continue
        p50s.push((q.p50 + (o?.p50 ?? 0) + rtt.p50) / 1000)
        worstP99 = Math.max(worstP99, (q.p99 + (o?.p99 ?? 0) + rtt.p99) / 1000)
        worstMax = Math.max(worstMax, (q.max + (o?.max ?? 0) + rtt.max) / 1000)
      }
    }
  })
  let peakRss = process.memoryUsage.rss()
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 100)
  const elu0 = performance.eventLoopUtilization()
  const cpu0 = mainThreadCpuMs()
  const started = Date.now()
  // Offered load runs for `seconds`; then allow a short drain to see the backlog.
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const elu = performance.eventLoopUtilization(elu0)
  const cpuMs = mainThreadCpuMs() - cpu0
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
      p50: Math.round((p50s.sort((a, b) => a - b)[Math.floor(p50s.length / 2)] ?? 0) * 10) / 10,
      p99: Math.round(worstP99 * 10) / 10,
      max: Math.round(worstMax * 10) / 10
    },
    mainThreadUsPerTrade: received === 0 ? 0 : Math.round((elu.active * 1000 / received) * 100) / 100,
    mainThreadCpuUsPerTrade: received === 0 ? 0 : Math.round((cpuMs * 1000 / received) * 100) / 100,
    peakRssMiB: Math.round(peakRss / 1048576)
  }
  await ingest.stop(Date.now() + 10_000)
  child.kill('SIGTERM')
  return run
}

export async function runIngestBench (args: readonly string[]): Promise<IngestRun[]> {
  const { values } = parseArgs({ args: [...args], options: { rates: { type: 'string' }, seconds: { type: 'string' } } })
  const rates = (values.rates ?? '100000,200000,300000,400000').split(',').map(Number)
  const seconds = Number(values.seconds ?? '10')
  const options = stackOptions(process.env)
  await up(options, process.env, selectComponents(['kafka']), line => { process.stderr.write(`[stack] ${line}\n`) })
  const { kafkaBootstrap } = stackEndpoints(options)
  process.stdout.write(`ingest bench: simulator process → ingest → Kafka ${kafkaBootstrap}, ${seconds} s per rate, open loop\n`)
  process.stdout.write('offered/s   acked/s   backlog  dropped  ack p50 ms  ack p99 ms  ack max ms  main busy µs/trade  main CPU µs/trade  peak RSS MiB\n')
  const runs: IngestRun[] = []
  for (const rate of rates) {
    const r = await runIngestAt(rate, seconds, kafkaBootstrap)
    runs.push(r)
    process.stdout.write(`${String(r.offeredPerSec).padStart(9)} ${String(r.ackedPerSec).padStart(9)} ${String(r.backlogAtEnd).padStart(8)} ${String(r.dropped).padStart(8)} ` +
      `${String(r.latencyMs.p50).padStart(10)} ${String(r.latencyMs.p99).padStart(11)} ${String(r.latencyMs.max).padStart(11)} ` +
      `${String(r.mainThreadUsPerTrade).padStart(19)} ${String(r.mainThreadCpuUsPerTrade).padStart(18)} ${String(r.peakRssMiB).padStart(13)}\n`)
  }
  return runs
}
