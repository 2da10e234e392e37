#!/usr/bin/env node
// finnhubd's command line: the process entry. It is the only place that reads
// process.argv and process.env; everything below receives a frozen config.

import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { commandArgs } from './args.js'
import { FinnhubdError, isFinnhubdError } from './errors.js'
import { ENV_OVERRIDE_NAMES, loadConfig, redactConfig, type LoadedConfig } from './config/load.js'
import { mergeEnv, readEnvFile } from './config/env-file.js'
import { runMigrate } from './cassandra/migrate-command.js'
import { CQL_DIR, VERSION } from './paths.js'
import { createLogger, type Logger } from './log.js'

const USAGE = `usage: finnhubd [--config FILE] [--env-file FILE] <command>
       finnhubd --version | --help

commands:
  demo           the whole pipeline in one command: local stack, migrations, simulator
                 (or Finnhub when FINNHUB_TOKEN is set), both roles, a live status line
  run            the daemon with the configured roles (default both), until SIGTERM/SIGINT
  ingest         run the ingest role only: Finnhub WebSocket → Kafka
  process        run the process role only: Kafka → worker pool → Cassandra
  query SYMBOL   stored trades of a symbol, newest first: [--candles] [--since 15m|ISO] [--limit N]
  tail           print the trades topic live, decoded, one line a record: [--dlq] (the
                 dead-letter topic) [--symbol S] [--from-beginning] [--max N]
  migrate        apply pending Cassandra schema migrations (cql/), idempotently
  simulate       a Finnhub-protocol WebSocket server on loopback: [--port N] [--token T]
                 [--rate TRADES_PER_S] [--max-trades-per-frame N] [--seed N] [--max-total N]
                 [--replay FILE] [--speed X] [--rest-requests-per-minute N]
  simulate record --symbols A,B --out FILE [--url URL] [--duration-ms N]
                 record a live session (FINNHUB_TOKEN) for --replay
  check-config   validate the configuration (file + environment); exit 0 when valid, 1 with
                 the key path and reason of each problem when not
  config         validate the configuration and print it (secrets redacted)
  stack ARGS     the local Kafka + Cassandra stack: up | down | status | wipe | logs

options:
  --config FILE  JSON or YAML config file (default: $FINNHUBD_CONFIG, else built-in defaults)
  --env-file FILE
                 a seed-style .env file of the variables below (the process's environment
                 wins over it); unknown names are an error, seed names with no meaning here
                 (CASSANDRA_BROADCAST_ADDRESS, GRAFANA_*, …) a warning; re-read on SIGHUP
  --help         this text
  --version      the version of finnhubd and of Node

signals (run, ingest, process):
  SIGHUP         reload the config file: applied live when valid (symbols, log level, batch and
                 commit settings, Finnhub URL/token), else ignored with the reason logged
  SIGTERM/SIGINT drain within shutdown.drainTimeoutMs, then exit; a second signal exits at once

exit codes:
  0    success; the daemon drained and stopped
  1    error: invalid configuration, a dependency unreachable at start, a failed command
  2    usage error
  3    the daemon stopped with work left over (the stop budget shutdown.drainTimeoutMs ran out)
  130  a second SIGTERM/SIGINT while draining: stopped at once

Environment overrides (the seed's names): FINNHUB_TOKEN, KAFKA_BOOTSTRAP_SERVERS,
KAFKA_TOPIC, SCHEMA_PATH, CASSANDRA_HOST, CASSANDRA_PORT, CASSANDRA_USER,
CASSANDRA_PASSWORD, CASSANDRA_KEYSPACE, CASSANDRA_TABLE, …  (see README.md)`

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
  /** Resolves when a long-running command should stop; defaults to SIGTERM/SIGINT. */
  signals?: (log: Logger) => Promise<string>
  /** Exits the process at once (a forced stop); defaults to process.exit. */
  exit?: (code: number) => void
}

/** Runs one command and resolves to the process exit code. */
export async function main (argv: readonly string[], io: CliIo): Promise<number> {
  // Global options stand before the command; everything after it belongs to the command.
  const commandAt = argv.findIndex((arg, i) => !arg.startsWith('-') && argv[i - 1] !== '--config' && argv[i - 1] !== '--env-file')
  const globalArgs = commandAt === -1 ? argv : argv.slice(0, commandAt)
  let parsed
  try {
    parsed = parseArgs({
      args: [...globalArgs],
      options: { config: { type: 'string' }, 'env-file': { type: 'string' }, help: { type: 'boolean' }, version: { type: 'boolean' } },
      strict: true
    })
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  const command = commandAt === -1 ? undefined : argv[commandAt]
  const rest = commandAt === -1 ? [] : argv.slice(commandAt + 1)
  if (parsed.values.version === true) {
    io.out(`finnhubd ${VERSION} (node ${process.version})`)
    return 0
  }
  if (parsed.values.help === true || command === undefined || command === 'help') {
    io.out(USAGE)
    return command === undefined && parsed.values.help !== true ? 2 : 0
  }
  const envFile = parsed.values['env-file']
  try {
    // The env file may name the config file (FINNHUBD_CONFIG); the commands below see its variables too.
    const env = envFile === undefined ? io.env : mergeEnv(readEnvFile(envFile, ENV_OVERRIDE_NAMES), io.env)
    const configFile = parsed.values.config ?? env['FINNHUBD_CONFIG']
    const load = (): LoadedConfig => loadConfig({ file: configFile, env: io.env, envFile })
    const warn = (loaded: LoadedConfig): void => { for (const w of loaded.warnings) io.err(`finnhubd: warning: ${w}`) }
    switch (command) {
      case 'config': {
        const loaded = load()
        const { config, sources, file } = loaded
        warn(loaded)
        io.out(`# configuration is valid (file: ${file ?? 'none, defaults'}; overrides: ${Object.entries(sources).map(([k, v]) => `${k}←${v}`).join(', ') || 'none'})`)
        io.out(JSON.stringify(redactConfig(config), null, 2))
        return 0
      }
      case 'check-config': {
        const loaded = load()
        const { config, sources, file } = loaded
        warn(loaded)
        // The schema file too: a seed .env's SCHEMA_PATH names the seed's own.
        const { loadTradeType } = await import('./core/trade-schema.js')
        const { resolveSchemaPath } = await import('./ingest.js')
        loadTradeType(resolveSchemaPath(config.schemaPath))
        io.out(`configuration is valid: ${file ?? 'no file (defaults)'}` +
          `${Object.keys(sources).length > 0 ? ` with ${Object.values(sources).join(', ')} from the environment` : ''}; ` +
          `roles ${config.roles.join('+')}, ${config.finnhub.symbols.length} symbols${config.finnhub.discovery.enabled ? ` + discovery (up to ${config.finnhub.discovery.maxSymbols} in all)` : ''}, Kafka ${config.kafka.bootstrapServers.join(',')}, ` +
          `Cassandra ${config.cassandra.contactPoints.join(',')}:${config.cassandra.port}, HTTP ${config.http.enabled ? `${config.http.host}:${config.http.port}` : 'off'}`)
        return 0
      }
      case 'migrate': {
        const loaded = load()
        warn(loaded)
        const { config } = loaded
        await runMigrate(config, CQL_DIR, io.out)
        return 0
      }
      case 'run':
      case 'ingest':
      case 'process': {
        const { config, warnings } = load()
        const { startDaemon } = await import('./daemon.js')
        const { SystemdNotifier } = await import('./systemd/notify.js')
        const log = createLogger({ level: config.logLevel })
        for (const w of warnings) log.warn(w)
        const roles = command === 'run' ? config.roles : [command]
        const daemon = await startDaemon({
          config,
          roles,
          log,
          notifier: new SystemdNotifier({ env: io.env, log }),
          http: true,
          // The process's own signals unless the caller (a test) brings its stop promise.
          ...(io.signals !== undefined ? { stopSignal: io.signals(log) } : { signals: process }),
          ...(configFile !== undefined || envFile !== undefined ? { reload: () => load().config } : {}),
          ...(io.exit !== undefined ? { exit: io.exit } : {})
        })
        return await daemon.stopped
      }
      case 'demo': {
        const loaded = load()
        warn(loaded)
        const { config } = loaded
        const { processSignals } = await import('./daemon.js')
        const { runDemo } = await import('./demo.js')
        const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel })
        return await runDemo({ env, config, out: io.out, log, stopSignal: io.signals?.(log) ?? processSignals(log) })
      }
      case 'query': {
        const { config } = load()
        const q = commandArgs({
          args: [...rest],
          options: { candles: { type: 'boolean' }, since: { type: 'string' }, limit: { type: 'string' } },
          allowPositionals: true,
          strict: true
        })
        const { parseSince, queryRows, validateQuery } = await import('./cassandra/query.js')
        const { symbol, limit } = validateQuery(q.positionals[0], q.values.limit)
        const now = Date.now()
        const sinceMs = parseSince(q.values.since, now)
        const { connectCassandra } = await import('./cassandra/client.js')
        const client = await connectCassandra(config.cassandra)
        try {
          const lines = await queryRows(client, config.cassandra, { symbol, candles: q.values.candles === true, sinceMs, limit }, now)
          if (lines.length === 0) io.out(`no ${q.values.candles === true ? 'candles' : 'trades'} for ${symbol} since ${new Date(sinceMs).toISOString()}`)
          for (const line of lines) io.out(line)
        } finally {
          await client.shutdown()
        }
        return 0
      }
      case 'tail': {
        const { config } = load()
        const { values } = commandArgs({
          args: [...rest],
          options: { dlq: { type: 'boolean' }, symbol: { type: 'string' }, 'from-beginning': { type: 'boolean' }, max: { type: 'string' } },
          strict: true
        })
        const { runTail, tailOptions } = await import('./tail.js')
        const opts = tailOptions(values)
        const log = createLogger({ level: 'warn' })
        return await runTail(config, opts, io.out, io.err, io.signals?.(log) ?? processSignalsOnce())
      }
      case 'simulate': {
        const { runSimulateCli } = await import('./simulator/cli.js')
        const controller = new AbortController()
        const log = createLogger({ level: 'info' })
        ;(io.signals?.(log) ?? processSignalsOnce()).then(() => controller.abort(), () => controller.abort())
        return await runSimulateCli(rest, { env, out: io.out, err: io.err, signal: controller.signal })
      }
      case 'stack': {
        const { runStackCli } = await import('../stack/cli.js')
        return await runStackCli(rest, { ...io, env })
      }
      default:
        throw new FinnhubdError('FINNHUBD_ERR_USAGE', `unknown command "${command}"; run \`finnhubd --help\` for the list`)
    }
  } catch (err) {
    if (isFinnhubdError(err)) {
      io.err(`finnhubd: ${err.message} [${err.code}]`)
      return err.code === 'FINNHUBD_ERR_USAGE' ? 2 : 1
    }
    throw err
  }
}

function processSignalsOnce (): Promise<string> {
  return new Promise(resolve => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const code = await main(process.argv.slice(2), {
    env: process.env,
    out: line => { process.stdout.write(line + '\n') },
    err: line => { process.stderr.write(line + '\n') }
  })
  process.exitCode = code
  // The command is over: a library's stray timer (cassandra-driver leaves a reconnecting
  // pool behind when a node restarted during the client's life) must not keep the
  // process alive. Exit once idle, or two seconds from now at the latest (logs flushed).
  setTimeout(() => process.exit(code), 2000).unref()
}
