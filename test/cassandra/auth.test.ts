// A second, private Cassandra started with FINNHUBD_CASSANDRA_AUTH=password: a wrong
// and a missing login are FINNHUBD_ERR_CASSANDRA_AUTH errors that say what to set (and
// never show the password), the right one migrates and writes, both through the
// functions and through `finnhubd migrate`, and the stack says auth is on.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import cassandra from 'cassandra-driver'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { loadMigrations } from '../../daemon/cassandra/migrations.js'
import { main } from '../../daemon/cli.js'
import { loadConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { isFinnhubdError } from '../../daemon/core/errors.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { runStackCli } from '../../tools/stack/cli.js'
import { STACK_CASSANDRA_CREDENTIALS, stackOptions } from '../../tools/stack/options.js'
import { down, selectComponents, status, up } from '../../tools/stack/stack.js'
import { freePorts } from '../fixtures/ports.js'

// On purpose: this file starts (and stops) a Cassandra of its own.
t.setTimeout(300_000)

const WRONG_PASSWORD = 'not-the-Passw0rd-4711'
const dir = mkdtempSync(join(tmpdir(), 'finnhubd-auth-'))
const [kafkaPort, kafkaControllerPort, kafkaProxiedPort, kafkaProxyPort, cassandraPort, cassandraStoragePort] = (await freePorts(6)).map(String)
// What `npm run stack` would read: the stack in its own folder and ports, the jars
// from the main stack's cache (the before hook has fetched them).
const stackEnv = {
  FINNHUBD_STACK_DIR: dir,
  FINNHUBD_STACK_CACHE_DIR: stackOptions(process.env).cacheDir,
  FINNHUBD_KAFKA_PORT: kafkaPort,
  FINNHUBD_KAFKA_CONTROLLER_PORT: kafkaControllerPort,
  FINNHUBD_KAFKA_PROXIED_PORT: kafkaProxiedPort,
  FINNHUBD_KAFKA_PROXY_PORT: kafkaProxyPort,
  FINNHUBD_CASSANDRA_PORT: cassandraPort,
  FINNHUBD_CASSANDRA_STORAGE_PORT: cassandraStoragePort,
  FINNHUBD_CASSANDRA_HEAP_MB: '512',
  FINNHUBD_CASSANDRA_AUTH: 'password'
}
const options = stackOptions(stackEnv, { dir })
const cassandraOnly = selectComponents(['cassandra'])
const stackLog: string[] = []

t.teardown(async () => {
  await down(options, cassandraOnly, () => {})
  rmSync(dir, { recursive: true, force: true })
})

const started = await up(options, process.env, cassandraOnly, l => stackLog.push(l))
t.comment(`password-auth Cassandra ready after ${((started[0]?.readyMs ?? 0) / 1000).toFixed(1)} s (heap 512 MiB)`)

const keyspace = `finnhub_auth_${Date.now().toString(36)}`
const base = { CASSANDRA_HOST: '127.0.0.1', CASSANDRA_PORT: cassandraPort as string, CASSANDRA_KEYSPACE: keyspace }
const configWith = (env: Record<string, string>): Config => loadConfig({ env: { ...base, ...env } }).config
const right = configWith({ CASSANDRA_USER: STACK_CASSANDRA_CREDENTIALS.username, CASSANDRA_PASSWORD: STACK_CASSANDRA_CREDENTIALS.password })

async function connectError (config: Config): Promise<Error & { code?: string }> {
  try {
    const client = await connectCassandra(config.cassandra)
    await client.shutdown()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('connectCassandra did not fail')
}

t.test('the stack started Cassandra with PasswordAuthenticator and says so', async t => {
  t.match(started, [{ name: 'cassandra', action: 'started', passwordAuth: true }])
  t.ok((started[0]?.readyMs ?? 0) > 0, 'a start time was measured')
  t.match(stackLog.join('\n'), /cassandra: password authentication is on: log in as user cassandra \(CASSANDRA_USER \/ CASSANDRA_PASSWORD\)/)
  const [row] = await status(options, cassandraOnly)
  t.match(row, { name: 'cassandra', running: true, ready: true, passwordAuth: true, fastUnsafe: false })

  const out: string[] = []
  const code = await runStackCli(['status', 'cassandra'], { env: stackEnv, out: l => out.push(l), err: l => out.push(l) })
  t.equal(code, 0)
  t.match(out.join('\n'), new RegExp(`^cassandra +running +pid \\d+ +127\\.0\\.0\\.1:${cassandraPort} +ready +rss \\d+ MiB {2}PASSWORD AUTH \\(user cassandra\\)$`, 'm'))

  const upOut: string[] = []
  t.equal(await runStackCli(['up', 'cassandra'], { env: stackEnv, out: l => upOut.push(l), err: l => upOut.push(l) }), 0)
  t.match(upOut.join('\n'), new RegExp(`stack up: cassandra 127\\.0\\.0\\.1:${cassandraPort} \\(password auth, user cassandra\\)`))
})

t.test('a node started with password auth stays ready (and running) when the options ask for none', async t => {
  const lines: string[] = []
  const [again] = await up({ ...options, cassandraAuth: 'none', cassandraReadyTimeoutMs: 5000 }, process.env, cassandraOnly, l => lines.push(l))
  t.match(again, { action: 'already-running', pid: started[0]?.pid, passwordAuth: true })
  t.match(lines.join('\n'), /cassandra: was started with password authentication and keeps it \(FINNHUBD_CASSANDRA_AUTH=none now\); `npm run stack -- down cassandra` and `up` again to switch/)
  const [row] = await status(options, cassandraOnly)
  t.match(row, { running: true, ready: true, pid: started[0]?.pid })
})

t.test('a wrong password is FINNHUBD_ERR_CASSANDRA_AUTH naming the user, never the password', async t => {
  const err = await connectError(configWith({ CASSANDRA_USER: 'cassandra', CASSANDRA_PASSWORD: WRONG_PASSWORD }))
  t.ok(isFinnhubdError(err, 'FINNHUBD_ERR_CASSANDRA_AUTH'), `code ${err.code}`)
  t.match(err.message, new RegExp(`^Cassandra at 127\\.0\\.0\\.1:${cassandraPort} refused the credentials of user "cassandra" \\(.*incorrect.*\\); ` +
    'check CASSANDRA_USER / CASSANDRA_PASSWORD \\(cassandra\\.username / cassandra\\.password\\)$'))
  t.notMatch(err.message, WRONG_PASSWORD)
  // As a logger would print it, causes and the driver's per-host errors included.
  t.notMatch(inspect(err, { depth: 10 }), WRONG_PASSWORD, 'not in the cause chain either')
  t.type(err.cause, cassandra.errors.NoHostAvailableError, 'the driver error is kept as the cause')

  const wrongUser = await connectError(configWith({ CASSANDRA_USER: 'nobody', CASSANDRA_PASSWORD: WRONG_PASSWORD }))
  t.match(wrongUser, { code: 'FINNHUBD_ERR_CASSANDRA_AUTH', message: /refused the credentials of user "nobody"/ })
})

t.test('no credentials against a server that asks for them: FINNHUBD_ERR_CASSANDRA_AUTH saying what to set', async t => {
  const err = await connectError(configWith({}))
  t.match(err, {
    code: 'FINNHUBD_ERR_CASSANDRA_AUTH',
    message: new RegExp(`^Cassandra at 127\\.0\\.0\\.1:${cassandraPort} requires password authentication and no credentials are configured; ` +
      'set CASSANDRA_USER and CASSANDRA_PASSWORD \\(or cassandra\\.username and cassandra\\.password in the config file\\)$')
  })
})

t.test('nobody listening is still FINNHUBD_ERR_CASSANDRA_UNREACHABLE, with credentials set', async t => {
  const err = await connectError({ ...right, cassandra: { ...right.cassandra, port: Number(kafkaPort) } })
  t.match(err, { code: 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE', message: /^cannot reach Cassandra at 127\.0\.0\.1:\d+ .*npm run stack -- up/ })
})

t.test('the right credentials connect; migrate creates the keyspace; a row is written and read back', async t => {
  const lines: string[] = []
  const result = await runMigrate(right, CQL_DIR, l => lines.push(l))
  const versions = loadMigrations(CQL_DIR).map(m => m.version)
  t.same(result.applied, versions)
  t.match(lines.join('\n'), `applied ${versions.length} migration(s)`)

  const client = await connectCassandra(right.cassandra, { useKeyspace: true })
  t.teardown(() => client.shutdown())
  const day = cassandra.types.LocalDate.fromDate(new Date(Date.UTC(2024, 0, 2)))
  const tradeId = cassandra.types.Uuid.random()
  await client.execute(
    'INSERT INTO trades (symbol, day, trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ['MSFT', day, new Date(1704196800123), tradeId, 370.5, 12, ['1'], new Date(1704196800130), new Date(1704196800140)],
    { prepare: true })
  const rs = await client.execute('SELECT trade_id, price, volume FROM trades WHERE symbol = ? AND day = ?', ['MSFT', day], { prepare: true })
  t.equal(rs.rowLength, 1)
  t.equal(String(rs.first()['trade_id']), String(tradeId))
  t.equal(rs.first()['price'], 370.5)
  t.equal(rs.first()['volume'], 12)
  const who = await client.execute('SELECT role, is_superuser FROM system_auth.roles WHERE role = ?', ['cassandra'], { prepare: true })
  t.equal(who.first()?.['is_superuser'], true, 'logged in through the default superuser')
})

t.test('`finnhubd migrate`: exit 1 with the auth message for a wrong password, 0 with the right one', async t => {
  const run = async (password: string): Promise<{ code: number, out: string, err: string }> => {
    const out: string[] = []
    const err: string[] = []
    const code = await main(['migrate'], {
      env: { ...base, CASSANDRA_USER: 'cassandra', CASSANDRA_PASSWORD: password },
      out: l => out.push(l),
      err: l => err.push(l)
    })
    return { code, out: out.join('\n'), err: err.join('\n') }
  }
  const wrong = await run(WRONG_PASSWORD)
  t.equal(wrong.code, 1)
  t.match(wrong.err, /^finnhubd: Cassandra at 127\.0\.0\.1:\d+ refused the credentials of user "cassandra" .*CASSANDRA_PASSWORD.* \[FINNHUBD_ERR_CASSANDRA_AUTH\]$/)
  t.notMatch(wrong.err + wrong.out, WRONG_PASSWORD)
  const ok = await run(STACK_CASSANDRA_CREDENTIALS.password)
  t.equal(ok.code, 0, ok.err)
  t.match(ok.out, new RegExp(`schema is up to date \\(${loadMigrations(CQL_DIR).length} migrations applied before\\)`))
})
