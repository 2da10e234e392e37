#!/usr/bin/env -S node --
// finnhubd's command line: the process entry. It is the only place that reads
// process.argv and process.env; everything below receives a frozen config. Every
// command answers --help/-h with its own usage before it reads any config; what a
// command throws becomes one line and an exit code (daemon/args.ts); the daemon
// commands get a last-resort handler for uncaught errors (daemon/daemon.ts).
//
// Always start it as `node -- cli.js …` (the shebang above does): Node 20 scans the
// whole command line for `--env-file`, ours included, so `node cli.js --env-file F`
// has Node load F into process.env before finnhubd runs (a missing F: Node's own
// "not found", exit 9), and those values then pose as the environment, which wins
// over the file: an edited value in F would never take effect on SIGHUP. After `--`
// Node leaves the arguments alone.

import { existsSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { commandArgs, DEMO_OPTIONS, exitCodeOf, runEntry, stdio, type CommandHelp } from './args.js'
import { FinnhubdError } from './core/errors.js'
import { ENV_OVERRIDE_NAMES, loadConfig, redactConfig, type LoadedConfig } from './config/load.js'
import { mergeEnv, readEnvFile } from './config/env-file.js'
import { runMigrate } from './cassandra/migrate-command.js'
import { CQL_DIR, loadTradeType, resolveSchemaPath, VERSION } from './paths.js'
import { createLogger, type Logger } from './log.js'
import { firstStopSignal } from './signals.js'

const USAGE = `usage: finnhubd [--config FILE] [--env-file FILE] <command>
       finnhubd --version | --help

commands:
  demo           the whole pipeline in one command: local stack, migrations, simulator
                 (or Finnhub when FINNHUB_TOKEN is set), both roles, a live status line
  run            the daemon with the configured roles (default both), until SIGTERM/SIGINT
  ingest         run the ingest role only: Finnhub WebSocket → Kafka
  process        run the process role only: Kafka → worker pool → Cassandra
  query SYMBOL   stored trades of a symbol, newest first: [--candles [1m|5m|15m|1h|1d]]
                 [--since 15m|ISO] [--limit N]
  query --gaps   the ledger of gaps (where trades may be missing): [SYMBOL] [--since 1d|ISO] [--limit N]
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
  --help, -h     this text
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
  70   the daemon hit an error it did not expect (an uncaught exception or unhandled rejection):
       one fatal log line says what, the producer is flushed briefly, then it exits at once
  130  a second SIGTERM/SIGINT while draining: stopped at once

\`finnhubd <command> --help\` shows a command's own usage.

Environment overrides (the seed's names): FINNHUB_TOKEN, KAFKA_BOOTSTRAP_SERVERS,
KAFKA_TOPIC, SCHEMA_PATH, CASSANDRA_HOST, CASSANDRA_PORT, CASSANDRA_USER,
CASSANDRA_PASSWORD, CASSANDRA_KEYSPACE, CASSANDRA_TABLE, …  (see docs/configuration.md)`

const SIGNALS_AND_EXIT = `Stops on SIGTERM/SIGINT: drains within shutdown.drainTimeoutMs (exit 0, or 3 with work
left over); a second signal exits at once (130). SIGHUP reloads the config file.
An uncaught error exits 70 after one fatal log line.`

const ONLY_GLOBAL = `options: none of its own; the global --config FILE and --env-file FILE stand before the
command (\`finnhubd --config f.yaml <command>\`)`

/** Each command's --help. simulate and stack keep theirs beside their own parsing. */
const COMMAND_USAGE = {
  demo: `usage: finnhubd [--config FILE] demo [--secure]

The whole pipeline in one command: starts the local Kafka + Cassandra stack (if it is not
running), applies the migrations, starts the simulator on loopback (or connects to Finnhub
when FINNHUB_TOKEN is set), runs both roles and prints a live status line every 5 s.
Ctrl-C stops it (and the stack, if the demo started it); a second Ctrl-C exits at once.

  --secure   on the secure stack instead (npm run stack -- up --secure): SASL_SSL with
             SCRAM-SHA-512 to Kafka, TLS and a password to Cassandra (also
             FINNHUBD_STACK_SECURE=1)

${ONLY_GLOBAL}`,
  run: `usage: finnhubd [--config FILE] [--env-file FILE] run

The daemon with the configured roles (config roles, default ingest and process), until
SIGTERM/SIGINT; serves /healthz, /readyz and /metrics when http.enabled.
${SIGNALS_AND_EXIT}

${ONLY_GLOBAL}`,
  ingest: `usage: finnhubd [--config FILE] [--env-file FILE] ingest

The ingest role only: the Finnhub WebSocket → validated trades → Avro → Kafka.
${SIGNALS_AND_EXIT}

${ONLY_GLOBAL}`,
  process: `usage: finnhubd [--config FILE] [--env-file FILE] process

The process role only: Kafka (the configured group) → worker pool → Cassandra trades and
candles (1m to 1d); undecodable records go to the dead-letter topic.
${SIGNALS_AND_EXIT}

${ONLY_GLOBAL}`,
  query: `usage: finnhubd [--config FILE] query SYMBOL [--candles [1m|5m|15m|1h|1d]] [--since 15m|ISO] [--limit N]
       finnhubd [--config FILE] query --gaps [SYMBOL] [--since 1d|ISO] [--limit N]

Stored trades of SYMBOL in Cassandra, newest first. With --gaps: the stretches where
trades may be missing (socket down, stalled, refused, drops, daemon down), oldest first,
of SYMBOL when given; "open" while a gap lasts (docs/operations.md, "Gaps").

options:
  --candles [I]  candles instead of trades, at interval I: 1m (the default), 5m, 15m, 1h or 1d
  --gaps         the ledger of gaps instead of trades (--since defaults to 1d)
  --since T      how far back: a duration (90s, 15m, 2h, 1d) or an ISO time (default 1h;
                 for candles 120 intervals, e.g. 5d of 1h)
  --limit N      at most N rows`,
  tail: `usage: finnhubd [--config FILE] tail [--dlq] [--symbol S] [--from-beginning] [--max N]

Prints the trades topic live, decoded, one line a record, until Ctrl-C.

options:
  --dlq              the dead-letter topic instead, with each record's reason
  --symbol S         only the records of symbol S
  --from-beginning   from the oldest record kept, not from now
  --max N            stop after N records`,
  migrate: `usage: finnhubd [--config FILE] migrate

Applies the pending Cassandra schema migrations (cql/) in order, idempotently; prints what
it applied.

${ONLY_GLOBAL}`,
  'check-config': `usage: finnhubd [--config FILE] [--env-file FILE] check-config

Validates the configuration (file + environment) and the Avro schema file it names;
exit 0 when valid, 1 with the key path and reason of each problem when not.

${ONLY_GLOBAL}`,
  config: `usage: finnhubd [--config FILE] [--env-file FILE] config

Validates the configuration and prints it as JSON, secrets redacted, with the file and
the environment overrides it came from.

${ONLY_GLOBAL}`
} as const

type Command = keyof typeof COMMAND_USAGE

function helpOf (command: Command): CommandHelp {
  return { usage: COMMAND_USAGE[command], command: `finnhubd ${command}` }
}

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
  /** Resolves when a long-running command should stop; defaults to SIGTERM/SIGINT. */
  signals?: (log: Logger) => Promise<string>
  /** Exits the process at once (a forced stop); defaults to the hard exit (daemon/systemd/notify.ts). */
  exit?: (code: number) => void
  /** Loads the development commands; default tools/cli.js when built, else null. */
  devTools?: () => Promise<DevTools | null>
}

/** What a development command (tools/cli.ts) gets from the command line. */
export interface DevContext {
  /** The environment, the env file's variables merged in (read on first use). */
  readonly env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
  load: () => LoadedConfig
  /** True when this process was started as finnhubd's entry (not a test calling main). */
  isEntry: boolean
  signals?: (log: Logger) => Promise<string>
}

export interface DevTools {
  runDevCommand: (command: 'demo' | 'simulate' | 'stack', rest: readonly string[], ctx: DevContext) => Promise<number>
}

/** tools/cli.js beside this tree, or null when it is not built (an installed daemon). */
async function loadDevTools (): Promise<DevTools | null> {
  // From the sources (the tests' TypeScript loader) the file is tools/cli.ts.
  const url = new URL(`../tools/cli${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)
  if (!existsSync(url)) return null
  return await import(url.href) as DevTools
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
      options: { config: { type: 'string' }, 'env-file': { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
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
    // Read on first use, after the command's own options (and --help) are dealt with.
    // The env file may name the config file (FINNHUBD_CONFIG); the commands below see its variables too.
    let envCache: Readonly<Record<string, string | undefined>> | null = null
    const env = (): Readonly<Record<string, string | undefined>> =>
      (envCache ??= envFile === undefined ? io.env : mergeEnv(readEnvFile(envFile, ENV_OVERRIDE_NAMES), io.env))
    const configFile = (): string | undefined => parsed.values.config ?? env()['FINNHUBD_CONFIG']
    const load = (): LoadedConfig => loadConfig({ file: configFile(), env: io.env, envFile })
    const warn = (loaded: LoadedConfig): void => { for (const w of loaded.warnings) io.err(`finnhubd: warning: ${w}`) }
    // The commands with no options of their own: --help, or a usage error for anything else.
    if (command !== 'query' && command !== 'tail' && Object.hasOwn(COMMAND_USAGE, command)) {
      commandArgs({ args: [...rest], options: command === 'demo' ? DEMO_OPTIONS : {}, strict: true }, helpOf(command as Command))
    }
    switch (command) {
      case 'config': {
        const loaded = load()
        const { config, sources, file } = loaded
        warn(loaded)
        io.out(`# configuration is valid (file: ${file ?? 'none, defaults'}; overrides: ${Object.entries(sources).map(([k, v]) => `${k}←${v}`).sort().join(', ') || 'none'})`)
        io.out(JSON.stringify(redactConfig(config), null, 2))
        return 0
      }
      case 'check-config': {
        const loaded = load()
        const { config, sources, file } = loaded
        warn(loaded)
        // The schema file too: a seed .env's SCHEMA_PATH names the seed's own.
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
        const { installFatalHandler, startDaemon } = await import('./daemon.js')
        const { SystemdNotifier } = await import('./systemd/notify.js')
        const log = createLogger({ level: config.logLevel })
        for (const w of warnings) log.warn(w)
        const roles = command === 'run' ? config.roles : [command]
        // The process's own run only: an in-process caller (a test) keeps its own handlers.
        if (isEntry) installFatalHandler({ log })
        const daemon = await startDaemon({
          config,
          roles,
          log,
          notifier: new SystemdNotifier({ env: io.env, log }),
          http: true,
          // The process's own signals unless the caller (a test) brings its stop promise.
          ...(io.signals !== undefined ? { stopSignal: io.signals(log) } : { signals: process }),
          ...(configFile() !== undefined || envFile !== undefined ? { reload: () => load().config } : {}),
          ...(io.exit !== undefined ? { exit: io.exit } : {})
        })
        return await daemon.stopped
      }
      case 'query': {
        const q = commandArgs({
          // --candles=1h as --candles 1h (the interval is the positional after the symbol).
          args: rest.flatMap(a => a.startsWith('--candles=') ? ['--candles', a.slice('--candles='.length)] : [a]),
          options: { candles: { type: 'boolean' }, gaps: { type: 'boolean' }, since: { type: 'string' }, limit: { type: 'string' } },
          allowPositionals: true,
          strict: true
        }, helpOf('query'))
        const { config } = load()
        const { candleInterval, defaultSince, parseSince, queryRows, validateQuery } = await import('./cassandra/query.js')
        if (q.values.gaps === true) {
          const { queryGapLines } = await import('./cassandra/gaps.js')
          const symbol = q.positionals[0] === undefined ? null : validateQuery(q.positionals[0], q.values.limit).symbol
          const limit = validateQuery('X', q.values.limit ?? '1000').limit
          const sinceMs = parseSince(q.values.since ?? '1d', Date.now())
          const { connectCassandra } = await import('./cassandra/client.js')
          const client = await connectCassandra(config.cassandra)
          try {
            const lines = await queryGapLines(client, config.cassandra, symbol, sinceMs, limit, Date.now(), config.redundancy)
            if (lines.length === 0) io.out(`no gaps${symbol === null ? '' : ` for ${symbol}`} since ${new Date(sinceMs).toISOString()}`)
            for (const line of lines) io.out(line)
          } finally {
            await client.shutdown()
          }
          return 0
        }
        const { symbol, limit } = validateQuery(q.positionals[0], q.values.limit)
        const candles = candleInterval(q.values.candles === true, q.positionals.slice(1))
        const now = Date.now()
        const sinceMs = parseSince(q.values.since ?? defaultSince(candles), now)
        const { connectCassandra } = await import('./cassandra/client.js')
        const client = await connectCassandra(config.cassandra)
        try {
          const lines = await queryRows(client, config.cassandra, { symbol, candles, sinceMs, limit }, now)
          if (lines.length === 0) io.out(`no ${candles !== null ? `${candles} candles` : 'trades'} for ${symbol} since ${new Date(sinceMs).toISOString()}`)
          for (const line of lines) io.out(line)
        } finally {
          await client.shutdown()
        }
        return 0
      }
      case 'tail': {
        const { values } = commandArgs({
          args: [...rest],
          options: { dlq: { type: 'boolean' }, symbol: { type: 'string' }, 'from-beginning': { type: 'boolean' }, max: { type: 'string' } },
          strict: true
        }, helpOf('tail'))
        const { config } = load()
        const { runTail, tailOptions } = await import('./tail.js')
        const opts = tailOptions(values)
        const log = createLogger({ level: 'warn' })
        return await runTail(config, opts, io.out, io.err, io.signals?.(log) ?? firstStopSignal(log))
      }
      case 'demo':
      case 'simulate':
      case 'stack': {
        // The development commands live in tools/, which an installed daemon does not
        // build: the path is computed so the product's compile never pulls them in.
        const tools = await (io.devTools ?? loadDevTools)()
        if (tools === null) {
          throw new FinnhubdError('FINNHUBD_ERR_USAGE', `"${command}" is a development command: it runs from a clone of the repository ` +
            '(npm ci && npm run build:dev), not from an installed daemon')
        }
        const ctx: DevContext = {
          get env () { return env() },
          out: io.out,
          err: io.err,
          load,
          isEntry,
          ...(io.signals !== undefined ? { signals: io.signals } : {})
        }
        return await tools.runDevCommand(command, rest, ctx)
      }
      default:
        throw new FinnhubdError('FINNHUBD_ERR_USAGE', `unknown command "${command}"; run \`finnhubd --help\` for the list`)
    }
  } catch (err) {
    return exitCodeOf(err, { ...io, env: io.env }, 'finnhubd', command === undefined ? 'finnhubd' : `finnhubd ${command}`)
  }
}

const isEntry = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
if (isEntry) {
  await runEntry(async () => await main(process.argv.slice(2), stdio()))
}
