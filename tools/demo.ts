// `finnhubd demo` (npm start): the whole pipeline on one machine in one command.
// Starts the local stack (fetching it on first use), applies the migrations,
// starts the Finnhub-protocol simulator — or connects to the real Finnhub when
// FINNHUB_TOKEN is set — runs the daemon with both roles, and prints a live line
// every few seconds until Ctrl-C, which shuts it all down (the stack too, when
// this command started it). With `secure` (demo --secure, FINNHUBD_STACK_SECURE=1)
// it runs on the secure stack: SASL_SSL to Kafka and TLS to Cassandra, logged in with
// the stack's generated passwords and trusting its CA.

import type { Config } from '../daemon/config/schema.js'
import { validateConfig } from '../daemon/config/load.js'
import { resolveSecrets } from '../daemon/config/secrets.js'
import { runMigrate } from '../daemon/cassandra/migrate-command.js'
import { startDaemon } from '../daemon/daemon.js'
import type { Logger } from '../daemon/log.js'
import { FinnhubSimulator } from './simulator/server.js'
import { startStatusLine } from '../daemon/status-line.js'
import { CQL_DIR } from '../daemon/paths.js'
import { stackEndpoints, stackOptions, type StackOptions } from './stack/options.js'
import { secureDaemonConfig, secureStackFiles } from './stack/secure.js'
import { portFree } from './stack/proc.js'
import { down, selectComponents, up } from './stack/stack.js'

export interface DemoOptions {
  env: Readonly<Record<string, string | undefined>>
  /** The validated config: endpoints are replaced by the local stack's, the URL by the simulator's. */
  config: Config
  out: (line: string) => void
  log: Logger
  stopSignal: Promise<string>
  statusEveryMs?: number
  simRatePerSec?: number
  /** On the secure stack (also FINNHUBD_STACK_SECURE=1 in env). */
  secure?: boolean
}

/**
 * The config for the secure stack: its endpoints, kafka.security and Cassandra's login
 * and TLS from the stack's generated settings (replacing the configured ones), the
 * password files read as the daemon reads them. The environment's secret variables
 * (KAFKA_SASL_PASSWORD, …) are not read: they belong to another deployment.
 */
export function secureDemoConfig (raw: Record<string, Record<string, unknown>>, stack: StackOptions, extra: Record<string, unknown>): { config: Config, warnings: string[] } {
  const secure = secureDaemonConfig(stack)
  const validated = validateConfig({
    ...raw,
    ...extra,
    // The whole of kafka.security replaced: the configured one's secrets must not mix in.
    kafka: { ...raw['kafka'], bootstrapServers: secure.kafka.bootstrapServers, security: secure.kafka.security },
    cassandra: { ...raw['cassandra'], ...secure.cassandra, password: null }
  }, 'the secure stack\'s settings')
  return resolveSecrets(validated, { env: {}, configFile: null, sources: {} })
}

export async function runDemo (opts: DemoOptions): Promise<number> {
  const stack = stackOptions(opts.env, opts.secure === true ? { secure: true } : {})
  const components = selectComponents([])
  const results = await up(stack, opts.env, components, line => opts.out(`[stack] ${line}`))
  const startedStack = results.filter(r => r.action === 'started').map(r => r.name)
  const endpoints = stackEndpoints(stack)
  const realFinnhub = (opts.env['FINNHUB_TOKEN'] ?? '') !== ''
  let sim: FinnhubSimulator | null = null
  try {
    if (!realFinnhub) {
      sim = new FinnhubSimulator({ token: 'demo', ratePerSec: opts.simRatePerSec ?? 500, duplicateFillRatio: 0.02 })
      await sim.start()
      opts.out(`[demo] no FINNHUB_TOKEN: trades come from the simulator at ${sim.url} (${opts.simRatePerSec ?? 500} trades/s)`)
    } else {
      opts.out(`[demo] connecting to Finnhub at ${opts.config.finnhub.url}`)
    }
    const raw = JSON.parse(JSON.stringify(opts.config)) as Record<string, Record<string, unknown>>
    // The HTTP endpoint on its configured port, or on a free one when that is taken
    // (a developer's machine may run something else on 9464).
    const http = raw['http'] as { enabled: boolean, host: string, port: number }
    if (http.enabled && http.port !== 0 && !(await portFree(http.port, http.host))) {
      opts.out(`[demo] port ${http.port} on ${http.host} is taken; serving /metrics on a free port instead`)
      http.port = 0
    }
    const finnhub = { ...raw['finnhub'], ...(sim !== null ? { url: sim.url, token: 'demo' } : {}) }
    let config: Config
    if (!stack.secure) {
      config = validateConfig({
        ...raw,
        finnhub,
        kafka: { ...raw['kafka'], bootstrapServers: [endpoints.kafkaBootstrap] },
        cassandra: { ...raw['cassandra'], contactPoints: [endpoints.cassandraHost], port: endpoints.cassandraPort }
      })
    } else {
      const secure = secureDemoConfig(raw, stack, { finnhub })
      for (const w of secure.warnings) opts.out(`[demo] warning: ${w}`)
      config = secure.config
      const files = secureStackFiles(stack)
      opts.out(`[demo] secure stack: Kafka SASL_SSL SCRAM-SHA-512 as ${files.kafkaUser}, Cassandra TLS + password as ${files.cassandraUser}, ` +
        `trusting ${files.caFile} (the daemon's config for it: ${files.configFile})`)
    }
    await runMigrate(config, CQL_DIR, line => opts.out(`[migrate] ${line}`))
    const daemon = await startDaemon({ config, roles: ['ingest', 'process'], log: opts.log, stopSignal: opts.stopSignal, http: true })
    if (daemon.http !== null) {
      opts.out(`[demo] health and metrics: ${daemon.http.url}/healthz, /readyz, /metrics`)
      if (config.http.console.enabled) opts.out(`[demo] the web console: ${daemon.http.url}/  (or on a terminal: npm run --silent finnhubd -- tail)`)
    }
    opts.out(`[demo] running: ${config.finnhub.symbols.join(', ')} → Kafka topic ${config.kafka.topic} → Cassandra table ${config.cassandra.keyspace}.${config.cassandra.tradesTable}; Ctrl-C stops`)
    opts.out(`[demo] look at the data with: npm run finnhubd -- ${stack.secure ? `--config ${secureStackFiles(stack).configFile} ` : ''}query ${config.finnhub.symbols[0] ?? 'AAPL'} [--candles]`)
    const stopStatus = startStatusLine({ ingest: daemon.ingest?.counters ?? null, process: daemon.process?.counters ?? null, endToEnd: () => daemon.latency.snapshotOf('end_to_end') },
      opts.statusEveryMs ?? 5000, opts.out)
    const code = await daemon.stopped
    stopStatus()
    return code
  } finally {
    await sim?.close()
    if (startedStack.length > 0) {
      opts.out('[demo] stopping the local stack it started')
      await down(stack, selectComponents(startedStack), line => opts.out(`[stack] ${line}`))
    }
  }
}
