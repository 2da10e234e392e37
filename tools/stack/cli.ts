// `npm run stack -- <verb>` / `finnhubd stack <verb>`: up | down | status | wipe | logs,
// each optionally for one component (kafka or cassandra); `--help` after a verb shows
// that verb's usage, on its own the list. `--secure` (or FINNHUBD_STACK_SECURE=1) runs
// each verb on the secure stack instead (its own folder and ports); `--cluster` (or
// FINNHUBD_STACK_CLUSTER=1) on the three-node cluster stack.

import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { commandArgs, exitCodeOf, runEntry, stdio } from '../../daemon/args.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { STACK_CASSANDRA_CREDENTIALS, stackOptions, type StackOptions } from './options.js'
import { secureStackFiles } from './secure.js'
import { down, logs, secureNote, selectComponents, status, up, wipe } from './stack.js'

export interface StackIo {
  env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
}

const USAGE = `usage: npm run stack -- <up|down|status|wipe|logs> [kafka|cassandra|<node>] [--secure|--cluster] [--lines N]
       (or finnhubd stack …; \`npm run stack -- <verb> --help\` for one verb)

The local Kafka + Cassandra stack, in .stack/ (FINNHUBD_STACK_DIR), on ports 19092 and
19042 (FINNHUBD_KAFKA_PORT, FINNHUBD_CASSANDRA_PORT).

With --secure (or FINNHUBD_STACK_SECURE=1): the secure stack beside it, in .stack-secure/
(FINNHUBD_STACK_SECURE_DIR), on ports 29092 and 29042: Kafka over SASL_SSL with
SCRAM-SHA-512, Cassandra over TLS with a password, certificates from a throwaway CA, and
the daemon's config for it in .stack-secure/secure/finnhubd.yaml.

With --cluster (or FINNHUBD_STACK_CLUSTER=1): three Kafka nodes and three Cassandra nodes
in .stack-cluster/ (FINNHUBD_STACK_CLUSTER_DIR), loopback only. Kafka nodes kafka-1..3 on
127.0.0.1:39092, 39192, 39292 (controllers 39093/39193/39293, a three-voter quorum; each
node broker and controller in one JVM to save memory here, where production runs the
controllers apart), replication factor 3, min ISR 2. Cassandra nodes cassandra-1..3 on
127.0.0.1, 127.0.0.2, 127.0.0.3, CQL port 39042, storage port 37000 each, started one after
another. Heaps 512 MiB (Kafka) and 768 MiB (Cassandra) each, about 4.5 GiB RSS in all.
A node name (kafka-2, cassandra-3) picks one node; kafka or cassandra all of that kind.
No --secure with --cluster yet.

  up       fetch (first run), start, and wait until each answers a real request
  down     stop what the stack started (recorded pids only)
  status   what runs where: pid, endpoint, ready, memory (RSS), fsync off, password auth;
           exit 1 when not all are ready
  wipe     down, then delete data and logs (downloaded jars are kept)
  logs     the last lines of each log (--lines N, default 40)`

const COMPONENTS_NOTE = `kafka|cassandra  only that component (default both); in the cluster every node of it
  <node>           one cluster node: kafka-1 … kafka-3, cassandra-1 … cassandra-3
  --secure         the secure stack (SASL_SSL, TLS, passwords) in its own folder and ports
  --cluster        the three-node cluster stack in its own folder and ports`

const VERB_USAGE: Readonly<Record<string, string>> = {
  up: `usage: npm run stack -- up [kafka|cassandra|<node>] [--secure|--cluster]

Fetches Kafka and Cassandra with Maven on first use (JDK 17), starts what is not running
and waits until each answers a real request (a metadata request, a CQL query). A port
taken by another process is an error that names it. With --cluster, the Kafka nodes start
together and Cassandra's one after another; each is ready when the others see it, and
the Kafka quorum has a leader every node follows. With --secure, the first \`up\` makes
a throwaway CA, certificates and passwords (openssl) and prints the daemon's config.

  ${COMPONENTS_NOTE}`,
  down: `usage: npm run stack -- down [kafka|cassandra|<node>] [--secure|--cluster]

Stops what the stack started (the pids it recorded; nothing else is signalled).

  ${COMPONENTS_NOTE}`,
  status: `usage: npm run stack -- status [kafka|cassandra|<node>] [--secure|--cluster]

One line per component (per node in the cluster): running or not, pid, endpoint, ready,
memory (RSS), fsync off, password auth, secure; then the total RSS.
Exit 0 when all are ready, else 1. A cluster node is ready when it answers and the
running others see it.

  ${COMPONENTS_NOTE}`,
  wipe: `usage: npm run stack -- wipe [kafka|cassandra|<node>] [--secure|--cluster]

Stops the stack, then deletes its data and logs (the downloaded jars are kept); the
whole secure stack's wipe deletes its certificates and passwords too.

  ${COMPONENTS_NOTE}`,
  logs: `usage: npm run stack -- logs [kafka|cassandra|<node>] [--secure|--cluster] [--lines N]

The last lines of each component's log.

  ${COMPONENTS_NOTE}
  --lines N        how many lines (default 40)`
}

const mib = (bytes: number | null): string => bytes === null ? '-' : `${Math.round(bytes / 1048576)} MiB`

// The user name, never the password (it is in the README).
const authNote = `password auth, user ${STACK_CASSANDRA_CREDENTIALS.username}`

/** What `up --secure` prints: where the daemon's config is and how to run the daemon with it. */
export function secureUpLines (o: StackOptions): string[] {
  const files = secureStackFiles(o)
  return [
    `secure stack: Kafka SASL_SSL SCRAM-SHA-512 (user ${files.kafkaUser}), Cassandra TLS + password (user ${files.cassandraUser}); ` +
      `CA ${files.caFile}, passwords in ${files.dir} (mode 0600)`,
    `the daemon's config for it: ${files.configFile}`,
    `  run the daemon with it: npm run finnhubd -- --config ${files.configFile} run`,
    '  or the whole demo:      FINNHUBD_STACK_SECURE=1 npm start   (npm run finnhubd -- demo --secure)'
  ]
}

export async function runStackCli (args: readonly string[], io: StackIo): Promise<number> {
  try {
    // The verb's own usage for `up --help`; the list for `--help` alone or an unknown verb.
    const first = args.find(a => !a.startsWith('-'))
    const usage = (first !== undefined ? VERB_USAGE[first] : undefined) ?? USAGE
    const { values, positionals } = commandArgs({ args: [...args], options: { lines: { type: 'string' }, secure: { type: 'boolean' }, cluster: { type: 'boolean' } }, allowPositionals: true, strict: true },
      { usage, command: usage === USAGE ? 'npm run stack --' : `npm run stack -- ${first ?? ''}` })
    const [verb, ...names] = positionals
    if (verb === undefined || verb === 'help') {
      io.out(USAGE)
      return verb === undefined ? 2 : 0
    }
    const lines = values.lines === undefined ? 40 : Number(values.lines)
    if (!Number.isInteger(lines) || lines < 1) throw new FinnhubdError('FINNHUBD_ERR_USAGE', '--lines takes a whole number ≥ 1')
    const options = stackOptions(io.env, { ...(values.secure === true ? { secure: true } : {}), ...(values.cluster === true ? { cluster: true } : {}) })
    const components = selectComponents(names, options)
    switch (verb) {
      case 'up': {
        const results = await up(options, io.env, components, io.out)
        io.out(`stack up: ${results.map(r => `${r.name} ${r.endpoint}${r.secure ? ` (${secureNote(r.name)})` : r.passwordAuth ? ` (${authNote})` : ''}`).join(', ')} (data in ${options.dir})`)
        if (options.secure) for (const line of secureUpLines(options)) io.out(line)
        return 0
      }
      case 'down':
        await down(options, components, io.out)
        return 0
      case 'status': {
        const rows = await status(options, components)
        for (const r of rows) {
          io.out(`${r.name.padEnd(11)} ${r.running ? `running  pid ${String(r.pid).padEnd(8)}` : 'stopped              '} ${r.endpoint.padEnd(16)} ` +
            `${r.ready ? 'ready    ' : 'not ready'} rss ${mib(r.rssBytes)}${r.fastUnsafe ? '  NO FSYNC (FINNHUBD_STACK_FAST_UNSAFE)' : ''}` +
            `${r.secure ? `  SECURE (${secureNote(r.name)})` : r.passwordAuth ? `  PASSWORD AUTH (user ${STACK_CASSANDRA_CREDENTIALS.username})` : ''}`)
        }
        const total = rows.reduce((sum, r) => sum + (r.rssBytes ?? 0), 0)
        io.out(`${'total'.padEnd(11)} ${String(rows.filter(r => r.running).length)} of ${rows.length} running, ${rows.filter(r => r.ready).length} ready, rss ${mib(total)}`)
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
    return exitCodeOf(err, io, 'finnhubd stack', 'npm run stack --')
  }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runEntry(async () => await runStackCli(process.argv.slice(2), stdio()), { prefix: 'finnhubd stack' })
}
