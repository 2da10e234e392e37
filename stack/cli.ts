// `npm run stack -- <verb>` / `finnhubd stack <verb>`: up | down | status | wipe | logs,
// each optionally for one component (kafka or cassandra).

import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { FinnhubdError, isFinnhubdError } from '../daemon/errors.js'
import { STACK_CASSANDRA_CREDENTIALS, stackOptions } from './options.js'
import { down, logs, selectComponents, status, up, wipe } from './stack.js'

export interface StackIo {
  env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
}

const USAGE = `usage: npm run stack -- <up|down|status|wipe|logs> [kafka|cassandra] [--lines N]

  up       fetch (first run), start, and wait until each answers a real request
  down     stop what the stack started (recorded pids only)
  status   what runs where: pid, endpoint, ready, memory (RSS), fsync off, password auth;
           exit 1 when not all are ready
  wipe     down, then delete data and logs (downloaded jars are kept)
  logs     the last lines of each log (--lines N, default 40)`

const mib = (bytes: number | null): string => bytes === null ? '-' : `${Math.round(bytes / 1048576)} MiB`

// The user name, never the password (it is in the README).
const authNote = `password auth, user ${STACK_CASSANDRA_CREDENTIALS.username}`

export async function runStackCli (args: readonly string[], io: StackIo): Promise<number> {
  const [verb, ...rest] = args
  let lines = 40
  const names: string[] = []
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--lines') lines = Number(rest[++i])
    else names.push(rest[i] as string)
  }
  try {
    if (verb === undefined || verb === 'help' || verb === '--help') {
      io.out(USAGE)
      return verb === undefined ? 2 : 0
    }
    if (!Number.isInteger(lines) || lines < 1) throw new FinnhubdError('FINNHUBD_ERR_USAGE', '--lines takes a whole number ≥ 1')
    const options = stackOptions(io.env)
    const components = selectComponents(names)
    switch (verb) {
      case 'up': {
        const results = await up(options, io.env, components, io.out)
        io.out(`stack up: ${results.map(r => `${r.name} ${r.endpoint}${r.passwordAuth ? ` (${authNote})` : ''}`).join(', ')} (data in ${options.dir})`)
        return 0
      }
      case 'down':
        await down(options, components, io.out)
        return 0
      case 'status': {
        const rows = await status(options, components)
        for (const r of rows) {
          io.out(`${r.name.padEnd(10)} ${r.running ? `running  pid ${String(r.pid).padEnd(8)}` : 'stopped              '} ${r.endpoint.padEnd(16)} ` +
            `${r.ready ? 'ready    ' : 'not ready'} rss ${mib(r.rssBytes)}${r.fastUnsafe ? '  NO FSYNC (FINNHUBD_STACK_FAST_UNSAFE)' : ''}` +
            `${r.passwordAuth ? `  PASSWORD AUTH (user ${STACK_CASSANDRA_CREDENTIALS.username})` : ''}`)
        }
        return rows.every(r => r.ready) ? 0 : 1
      }
      case 'wipe':
        await wipe(options, components, io.out)
        return 0
      case 'logs':
        io.out(logs(options, components, lines))
        return 0
      default:
        throw new FinnhubdError('FINNHUBD_ERR_USAGE', `unknown stack command "${verb}"\n${USAGE}`)
    }
  } catch (err) {
    if (!isFinnhubdError(err)) throw err
    io.err(`finnhubd stack: ${err.message} [${err.code}]`)
    return err.code === 'FINNHUBD_ERR_USAGE' ? 2 : 1
  }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runStackCli(process.argv.slice(2), {
    env: process.env,
    out: line => { process.stdout.write(line + '\n') },
    err: line => { process.stderr.write(line + '\n') }
  })
}
