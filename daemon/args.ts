// The command line's shared plumbing, for every entry point (finnhubd and its
// commands, `npm run stack`, `npm run bench`, `npm run chaos`):
//  - commandArgs: node:util's parseArgs plus --help/-h. Help is answered before
//    anything else (even before an unknown option is complained about), by throwing
//    HelpRequested up to the entry point, which prints the usage and exits 0: no
//    command loads a config or opens a socket when asked for help. A bad or unknown
//    option is a usage error (exit 2) that points at the command's --help.
//  - exitCodeOf: what the entry point prints and exits with for whatever a command
//    threw: help → 0; a FinnhubdError → its message and code, 1 (usage: 2); a
//    parseArgs complaint from a module that parses its own options → 2; anything
//    else → one line with its message and a hint, 1 (its stack with FINNHUBD_DEBUG=1).
//  - runEntry: the top of a script's module, with exitCodeOf as its last word; once
//    the command is over, nothing a library left behind keeps the process alive.

import { parseArgs, type ParseArgsConfig } from 'node:util'
import { FinnhubdError, isFinnhubdError } from './core/errors.js'

/**
 * The options of `finnhubd demo` (a development command: tools/cli.ts reads them,
 * daemon/cli.ts checks them with the other commands'). Here, not in daemon/cli.ts:
 * tools/cli.ts is imported by the entry module while it runs, and importing the entry
 * back would wait on itself (a top-level await cycle: the process exits 13).
 */
export const DEMO_OPTIONS = { secure: { type: 'boolean' } } as const

export const EXIT_ERROR = 1
export const EXIT_USAGE = 2

/** Thrown by commandArgs (and helpRequested) when the arguments ask for help; not an error. */
export class HelpRequested extends Error {
  readonly usage: string

  constructor (usage: string) {
    super('help requested')
    this.name = 'HelpRequested'
    this.usage = usage
  }
}

export interface CommandHelp {
  /** The command's usage text: what it does, its options. */
  usage: string
  /** How to name the command in "see `… --help`" (default: finnhubd). */
  command?: string
}

/** True when --help or -h stands among the options (before a `--` that ends them). */
export function wantsHelp (args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false
    if (arg === '--help' || arg === '-h') return true
  }
  return false
}

/** Throws HelpRequested with `usage` when the arguments ask for help (for entries that parse their options elsewhere). */
export function helpRequested (args: readonly string[], usage: string): void {
  if (wantsHelp(args)) throw new HelpRequested(usage)
}

type WithHelp<T extends ParseArgsConfig> = T & { options: NonNullable<T['options']> & { help: { type: 'boolean', short: 'h' } } }

export function commandArgs<T extends ParseArgsConfig> (config: T, help: CommandHelp): ReturnType<typeof parseArgs<WithHelp<T>>> {
  helpRequested(config.args ?? process.argv.slice(2), help.usage)
  const withHelp = { ...config, options: { ...config.options, help: { type: 'boolean', short: 'h' } } } as WithHelp<T>
  try {
    return parseArgs(withHelp)
  } catch (err) {
    throw usageError(err as Error, help.command ?? 'finnhubd')
  }
}

function usageError (err: Error, command: string): FinnhubdError {
  return new FinnhubdError('FINNHUBD_ERR_USAGE', `${err.message}; see \`${command} --help\``)
}

/** node:util's parseArgs complaints (an unknown option, a missing value, a stray positional). */
function isParseArgsError (err: unknown): err is Error {
  return err instanceof TypeError && /^ERR_PARSE_ARGS_/.test(String((err as { code?: unknown }).code))
}

export interface EntryIo {
  env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
}

/** Prints what `err` (thrown by a command) means for its user and returns the exit code. */
export function exitCodeOf (err: unknown, io: EntryIo, prefix = 'finnhubd', command = 'finnhubd'): number {
  if (err instanceof HelpRequested) {
    io.out(err.usage)
    return 0
  }
  const known = isFinnhubdError(err) ? err : isParseArgsError(err) ? usageError(err, command) : null
  if (known !== null) {
    io.err(`${prefix}: ${known.message} [${known.code}]`)
    return known.code === 'FINNHUBD_ERR_USAGE' ? EXIT_USAGE : EXIT_ERROR
  }
  // Not one of ours: a bug or a library's surprise. One line, and the way to more.
  const e = err instanceof Error ? err : new Error(String(err))
  const code = (e as { code?: unknown }).code
  const debug = io.env['FINNHUBD_DEBUG'] === '1'
  io.err(`${prefix}: unexpected ${e.name}: ${e.message}${code !== undefined ? ` [${String(code)}]` : ''}` +
    (debug ? '' : ' (FINNHUBD_DEBUG=1 shows its stack trace; please report it with that)'))
  if (debug && e.stack !== undefined) io.err(e.stack)
  return EXIT_ERROR
}

export interface RunEntryOptions {
  /** The prefix of error lines (default finnhubd). */
  prefix?: string
  /** The command named in "see `… --help`" for a parseArgs complaint. */
  command?: string
  /** Once main is over, the process exits when idle or after this long at the latest (default 2 s). */
  lingerMs?: number
}

/** Runs a script's main and sets the process's exit code from its result or from what it threw. */
export async function runEntry (main: () => Promise<number>, opts: RunEntryOptions = {}): Promise<number> {
  guardOutput(process.stdout)
  guardOutput(process.stderr)
  let code: number
  try {
    code = await main()
  } catch (err) {
    code = exitCodeOf(err, stdio(), opts.prefix, opts.command)
  }
  process.exitCode = code
  // The command is over: a library's stray timer or socket (cassandra-driver leaves a
  // reconnecting pool behind when a node restarted; a failed bench leaves its simulator
  // thread) must not keep the process alive. process.exit, not the hard exit: this is
  // an ordinary end, and the logs get flushed.
  setTimeout(() => process.exit(code), opts.lingerMs ?? 2000).unref()
  return code
}

let outputClosed = false
const guarded = new WeakSet<NodeJS.WriteStream>()

/**
 * A reader that went away (`finnhubd tail | head`, `finnhubd config | head -1`) makes
 * the next write fail with EPIPE, emitted on the stream: unhandled, that is a crash
 * with a stack trace. Instead the output is marked closed: a command's next line ends
 * it (exit 0, as `head` meant), and a daemon's log lines go nowhere while it keeps
 * working (its drain on SIGTERM still matters more than its log).
 */
export function guardOutput (stream: NodeJS.WriteStream, onClosed: () => void = () => { outputClosed = true }): void {
  // Whatever else listens (a pipe() of a preloaded module rethrows when it is alone): ours is the one that stays.
  if (guarded.has(stream)) return
  guarded.add(stream)
  stream.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') onClosed() })
}

/** The process's own stdout/stderr, one line a call; once stdout's reader is gone, the next line ends the process (exit 0). */
export function stdio (): EntryIo {
  return {
    env: process.env,
    out: line => {
      if (outputClosed) process.exit(0)
      process.stdout.write(line + '\n')
    },
    err: line => { process.stderr.write(line + '\n') }
  }
}
