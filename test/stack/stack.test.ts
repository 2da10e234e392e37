// The local stack: options, Java discovery, the error messages that can be provoked,
// and `up`/`status` against the stack the suite runs on (started by the before hook).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { runStackCli } from '../../tools/stack/cli.js'
import { clusterId, COMPONENTS, cassandraYaml, kafkaProperties, PASSWORD_AUTH_FLAG, SKIP_SYNC_FLAG } from '../../tools/stack/components.js'
import { fetchJars } from '../../tools/stack/fetch.js'
import { findJava, parseJavaVersion } from '../../tools/stack/java.js'
import { STACK_CASSANDRA_CREDENTIALS, stackEndpoints, stackOptions, type StackOptions } from '../../tools/stack/options.js'
import { isAlive, isOurs, portFree, portOwner, stopPid, withLock } from '../../tools/stack/proc.js'
import { down, logs, runningPid, selectComponents, status, up, wipe } from '../../tools/stack/stack.js'
import { freePorts, privateStackOptions } from '../fixtures/ports.js'

t.setTimeout(180_000)

const quiet = (): void => {}

function fakeExecutable (dir: string, name: string, script: string): string {
  const file = join(dir, name)
  writeFileSync(file, `#!/bin/sh\n${script}\n`)
  chmodSync(file, 0o755)
  return file
}

/** A node process whose command line carries `args` (a component's marker); resolves once it runs. */
async function spawnMarked (args: string[], opts: { ignoreTerm?: boolean } = {}): Promise<number> {
  const code = `${opts.ignoreTerm === true ? 'process.on("SIGTERM", () => {}); ' : ''}process.stdout.write("up\\n"); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['-e', code, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
  await new Promise(resolve => child.stdout.once('data', resolve))
  child.stdout.destroy()
  return child.pid as number
}

async function listenOnFreePort (): Promise<{ server: Server, port: number }> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

/** Stack options in a private folder (one per test) on ports nobody uses, so the shared stack is untouched. */
async function privateOptions (t: Test, overrides: Partial<StackOptions> = {}): Promise<StackOptions> {
  const dir = t.testdir({})
  return await privateStackOptions(dir, { cacheDir: dir, kafkaReadyTimeoutMs: 20_000, cassandraReadyTimeoutMs: 20_000, ...overrides })
}

t.test('options: defaults stay off the standard ports; env moves them; bad values are named', async t => {
  const o = stackOptions({})
  t.same([o.kafkaPort, o.kafkaControllerPort, o.kafkaProxiedPort, o.kafkaProxyPort, o.cassandraPort, o.cassandraStoragePort], [19092, 19093, 19094, 19095, 19042, 17000])
  t.match(o.dir, /\.stack$/)
  const moved = stackOptions({ FINNHUBD_KAFKA_PORT: '29092', FINNHUBD_CASSANDRA_PORT: '29042', FINNHUBD_STACK_DIR: '/tmp/x', FINNHUBD_JAVA_HOME: '/opt/jdk' })
  t.same(stackEndpoints(moved), { kafkaBootstrap: '127.0.0.1:29092', cassandraHost: '127.0.0.1', cassandraPort: 29042, cassandraContactPoint: '127.0.0.1:29042' })
  t.same(stackEndpoints(), stackEndpoints(stackOptions(process.env)), 'without options: the stack the environment names')
  t.equal(moved.dir, '/tmp/x')
  t.equal(moved.javaHome, '/opt/jdk')
  t.equal(o.fastUnsafe, false, 'fsync stays on unless asked')
  t.equal(stackOptions({ FINNHUBD_STACK_FAST_UNSAFE: '1' }).fastUnsafe, true)
  t.equal(stackOptions({ FINNHUBD_STACK_FAST_UNSAFE: 'false' }).fastUnsafe, false)
  t.throws(() => stackOptions({ FINNHUBD_STACK_FAST_UNSAFE: 'yes please' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_STACK_FAST_UNSAFE=yes please must be 1 or 0/ })
  t.throws(() => stackOptions({ FINNHUBD_KAFKA_PORT: 'abc' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_KAFKA_PORT=abc is not a whole number from 1 to 65535/ })
  t.throws(() => stackOptions({ FINNHUBD_CASSANDRA_HEAP_MB: '100' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_CASSANDRA_HEAP_MB=100/ })
  t.throws(() => stackOptions({ FINNHUBD_KAFKA_PORT: '17000' }), { code: 'FINNHUBD_ERR_USAGE', message: /six ports must differ/ })
  t.equal(o.cassandraAuth, 'none', 'no login unless asked')
  t.equal(stackOptions({ FINNHUBD_CASSANDRA_AUTH: 'password' }).cassandraAuth, 'password')
  t.equal(stackOptions({ FINNHUBD_CASSANDRA_AUTH: 'none' }).cassandraAuth, 'none')
  t.throws(() => stackOptions({ FINNHUBD_CASSANDRA_AUTH: 'ldap' }), { code: 'FINNHUBD_ERR_USAGE', message: /^FINNHUBD_CASSANDRA_AUTH=ldap must be none or password$/ })
  t.throws(() => stackOptions({ FINNHUBD_CASSANDRA_AUTH: 'Password' }), { code: 'FINNHUBD_ERR_USAGE' }, 'spelled exactly')
  // Cassandra's default superuser, and the seed project's .env values.
  t.same(STACK_CASSANDRA_CREDENTIALS, { username: 'cassandra', password: 'cassandra' })
})

t.test('generated configs carry the ports, folders and single-node settings', async t => {
  const o = stackOptions({}, { dir: '/data/stack', kafkaPort: 1111, kafkaControllerPort: 2222, kafkaProxiedPort: 5555, kafkaProxyPort: 6666, cassandraPort: 3333, cassandraStoragePort: 4444 })
  const props = kafkaProperties(o)
  t.match(props, /^process\.roles=broker,controller$/m)
  t.match(props, /^controller\.quorum\.voters=1@127\.0\.0\.1:2222$/m)
  t.match(props, /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:1111,CONTROLLER:\/\/127\.0\.0\.1:2222,VIA_PROXY:\/\/127\.0\.0\.1:5555$/m)
  t.match(props, /^advertised\.listeners=PLAINTEXT:\/\/127\.0\.0\.1:1111,VIA_PROXY:\/\/127\.0\.0\.1:6666$/m)
  t.match(props, /^log\.dirs=\/data\/stack\/kafka\/data$/m)
  t.match(props, /^offsets\.topic\.replication\.factor=1$/m)
  t.match(props, /^group\.initial\.rebalance\.delay\.ms=0$/m)
  const yaml = cassandraYaml(o)
  t.match(yaml, /native_transport_port: 3333/)
  t.match(yaml, /storage_port: 4444/)
  t.match(yaml, /seeds: "127\.0\.0\.1:4444"/)
  t.match(yaml, /commitlog_directory: \/data\/stack\/cassandra\/data\/commitlog/)
  t.match(yaml, /batch_size_warn_threshold: 5KiB/)
  t.match(yaml, /^commitlog_sync: periodic\ncommitlog_sync_period: 10000ms$/m, "Cassandra's own default unless asked")
  // Regression (fault suite): periodic sync acknowledges before the commit log is
  // synced, and a kill -9 lost acknowledged rows; group syncs before it acknowledges.
  const group = cassandraYaml({ ...o, cassandraCommitlogSync: 'group' })
  t.match(group, /^commitlog_sync: group\ncommitlog_sync_group_window: 10ms$/m)
  t.notMatch(group, /commitlog_sync_period/, 'Cassandra refuses a period beside group sync')
  t.equal(stackOptions({ FINNHUBD_CASSANDRA_COMMITLOG_SYNC: 'group' }).cassandraCommitlogSync, 'group')
  t.throws(() => stackOptions({ FINNHUBD_CASSANDRA_COMMITLOG_SYNC: 'batch' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_CASSANDRA_COMMITLOG_SYNC=batch must be periodic or group/ })
  t.match(yaml, /^authenticator: AllowAllAuthenticator$/m, 'open by default')
  const password = cassandraYaml({ ...o, cassandraAuth: 'password' })
  t.match(password, /^authenticator: PasswordAuthenticator$/m)
  t.equal(password.match(/^authenticator:/gm)?.length, 1, 'one authenticator key (Cassandra refuses a duplicate)')
  t.match(password, /^authorizer: AllowAllAuthorizer$/m, 'a login, but no permissions to manage')
  for (let i = 0; i < 50; i++) t.match(clusterId(), /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
  const cassandra = COMPONENTS.find(c => c.name === 'cassandra')
  const args = cassandra?.args(o, t.testdir({ 'jamm-0.4.0.jar': '' })) ?? []
  t.ok(args.some(a => /^-javaagent:.*jamm-0\.4\.0\.jar$/.test(a)), 'jamm is the java agent')
  t.ok(args.includes('-Xmx1024m') && args.includes('--add-opens=java.base/java.lang=ALL-UNNAMED'))
  t.notOk(args.includes(SKIP_SYNC_FLAG), 'durable by default')
  t.ok(cassandra?.args({ ...o, fastUnsafe: true }, t.testdir({})).includes(SKIP_SYNC_FLAG), 'no fsync only when asked')
  t.notOk(args.includes(PASSWORD_AUTH_FLAG), 'no superuser setup flag without auth')
  t.ok(cassandra?.args({ ...o, cassandraAuth: 'password' }, t.testdir({})).includes('-Dcassandra.superuser_setup_delay_ms=0'), 'the superuser exists at once with auth')
})

t.test('Java: versions are parsed; a missing Java 17 says what to install', async t => {
  t.equal(parseJavaVersion('openjdk version "17.0.15" 2025-04-15'), 17)
  t.equal(parseJavaVersion('java version "1.8.0_292"'), 8)
  t.equal(parseJavaVersion('openjdk version "25" 2025-09-16'), 25)
  t.equal(parseJavaVersion('garbage'), null)
  t.equal(findJava(process.env, null).major, 17, 'this machine has a Java 17')
  const home = t.testdir({ bin: {} })
  fakeExecutable(join(home, 'bin'), 'java', 'echo \'openjdk version "11.0.2"\' >&2')
  t.throws(() => findJava({}, home), {
    code: 'FINNHUBD_ERR_STACK_JAVA',
    message: /needs Java 17.*tried: .*bin\/java → Java 11.*apt-get install openjdk-17-jre-headless.*set JAVA_HOME/
  })
  t.throws(() => findJava({}, join(home, 'nope')), { code: 'FINNHUBD_ERR_STACK_JAVA', message: /nothing found at .*nope\/bin\/java/ })
  const broken = t.testdir({ bin: {} })
  fakeExecutable(join(broken, 'bin'), 'java', 'exit 3')
  t.throws(() => findJava({}, broken), { code: 'FINNHUBD_ERR_STACK_JAVA', message: /bin\/java → does not run/ })
})

t.test('a taken port is named with its owner, and nothing is started', async t => {
  const { server, port } = await listenOnFreePort()
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const o = await privateOptions(t, { kafkaPort: port })
  t.equal(await portFree(port), false)
  t.match(portOwner(port), new RegExp(`pid ${process.pid} `))
  await t.rejects(up(o, {}, selectComponents(['kafka']), quiet), {
    code: 'FINNHUBD_ERR_STACK_PORT',
    message: new RegExp(`port ${port} \\(Kafka client listener\\) is already in use by pid ${process.pid} .*FINNHUBD_KAFKA_PORT`)
  })
  t.equal(existsSync(join(o.dir, 'kafka', 'kafka.pid')), false, 'no pid recorded')
})

t.test('a failed download says what to check and shows Maven\'s words', async t => {
  const dir = t.testdir({})
  const mvn = fakeExecutable(dir, 'mvn', 'echo "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13: Connection refused"; exit 1')
  const pom = join(process.cwd(), 'tools', 'stack', 'kafka', 'pom.xml')
  await t.rejects(fetchJars({ name: 'kafka', pom, dir, mvn, log: quiet }), {
    code: 'FINNHUBD_ERR_STACK_DOWNLOAD',
    message: /fetching kafka with Maven failed \(exit 1\)\. Check that Maven Central is reachable.*Connection refused/s
  })
  await t.rejects(fetchJars({ name: 'kafka', pom, dir, mvn: join(dir, 'no-mvn'), log: quiet }), {
    code: 'FINNHUBD_ERR_STACK_DOWNLOAD',
    message: /cannot run Maven .*apt-get install maven/
  })
  t.same(readdirSync(join(dir, 'lib')).filter(f => f.startsWith('kafka') && !f.endsWith('.partial')), [], 'a failed fetch leaves no lib folder behind')
  const stuck = fakeExecutable(dir, 'mvn-stuck', 'exec sleep 60')
  await t.rejects(fetchJars({ name: 'kafka', pom, dir, mvn: stuck, log: quiet, timeoutMs: 1000 }), {
    code: 'FINNHUBD_ERR_STACK_DOWNLOAD',
    message: /fetching kafka with Maven was stopped after 1 s\. Check that Maven Central is reachable/
  })
  // A Maven that copies one jar where it is told to.
  const ok = fakeExecutable(dir, 'mvn-ok', 'for a in "$@"; do case "$a" in -DoutputDirectory=*) touch "$(echo "$a" | cut -d= -f2)/kafka_2.13.jar";; esac; done')
  const logged: string[] = []
  const first = await fetchJars({ name: 'kafka', pom, dir, mvn: ok, log: l => logged.push(l) })
  t.equal(first.fetched, true)
  t.match(logged.join(), /fetching kafka from Maven Central/)
  t.same(readdirSync(first.libDir).sort(), ['.complete', 'kafka_2.13.jar'], 'the copied jars are swapped in with the marker')
  t.equal(existsSync(`${first.libDir}.partial`), false)
  const second = await fetchJars({ name: 'kafka', pom, dir, mvn: join(dir, 'no-mvn'), log: quiet })
  t.equal(second.fetched, false, 'the marker skips Maven the second time')
})

t.test('a component that dies while starting fails fast with its last log lines', async t => {
  const o = await privateOptions(t)
  const jdk = t.testdir({ bin: {} })
  fakeExecutable(join(jdk, 'bin'), 'java',
    'case "$1" in -version) echo \'openjdk version "17.0.1"\' >&2; exit 0;; esac\necho "Exception in thread main: simulated startup failure"; exit 1')
  const mvn = fakeExecutable(o.dir, 'mvn', 'exit 0')
  await t.rejects(up({ ...o, javaHome: jdk, mvn }, {}, selectComponents(['cassandra']), quiet), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /cassandra exited while starting\. Last lines of .*cassandra\.log:\nException in thread main: simulated startup failure/
  })
  t.equal(runningPid(COMPONENTS[1] as (typeof COMPONENTS)[number], o), null)
  await t.rejects(up({ ...o, javaHome: jdk, mvn }, {}, selectComponents(['kafka']), quiet), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /formatting Kafka's storage .* failed; `npm run stack -- wipe`.*simulated startup failure/s
  })
})

t.test('stopPid signals only our process: TERM first, KILL when ignored', async t => {
  const marker = `finnhubd-test-marker-${process.pid}`
  const polite = await spawnMarked([marker])
  const stubborn = await spawnMarked([marker], { ignoreTerm: true })
  t.equal(isOurs(polite, marker), true)
  t.equal(isOurs(polite, 'someone-else'), false, 'a pid running something else is not ours')
  t.equal(await stopPid(polite, 'someone-else', 1000), 'gone', 'never signals a process that is not ours')
  t.equal(await stopPid(polite, marker, 30_000), 'stopped')
  t.equal(await stopPid(stubborn, marker, 300), 'killed')
  t.equal(isOurs(999_999_999, marker), false)
  t.equal(isAlive(stubborn), false)
})

t.test('the lock: one stack command at a time; a dead holder\'s lock is taken over', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'stack.lock')
  const order: string[] = []
  let release = (): void => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const waits: number[] = []
  const first = withLock(file, quiet, async () => { order.push('first in'); await held; order.push('first out') })
  const second = withLock(file, pid => waits.push(pid), async () => { order.push('second in') })
  // The second may only run once the first lets go, however long that takes.
  while (waits.length === 0) await new Promise(resolve => setImmediate(resolve))
  t.same(waits, [process.pid], 'the waiter is told who holds the lock')
  t.same(order, ['first in'])
  release()
  await Promise.all([first, second])
  t.same(order, ['first in', 'first out', 'second in'])
  t.equal(existsSync(file), false, 'released')

  writeFileSync(file, '999999999\n')
  t.equal(await withLock(file, quiet, async () => 'ran'), 'ran', 'a lock whose pid is gone is stale')
  writeFileSync(file, '')
  utimesSync(file, new Date(0), new Date(0))
  t.equal(await withLock(file, quiet, async () => 'ran'), 'ran', 'an empty lock left long ago is stale')

  writeFileSync(file, `${process.pid}\n`)
  await t.rejects(withLock(file, quiet, async () => 'never', 0), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: new RegExp(`another stack command \\(pid ${process.pid}\\) has held .*stack\\.lock`)
  })
  t.equal(readFileSync(file, 'utf8'), `${process.pid}\n`, 'a lock that is not ours is left alone')
  await t.rejects(withLock(join(dir, 'x'.repeat(300)), quiet, async () => 'never'), { code: 'ENAMETOOLONG' }, 'other file errors surface')
})

t.test('down, status, logs and wipe on a stack that is not running', async t => {
  const o = await privateOptions(t)
  const lines: string[] = []
  await down(o, selectComponents([]), l => lines.push(l))
  t.same(lines, ['cassandra: not running', 'kafka: not running'])
  const rows = await status(o, selectComponents([]))
  t.same(rows.map(r => [r.name, r.running, r.ready, r.pid]), [['kafka', false, false, null], ['cassandra', false, false, null]])
  t.match(logs(o, selectComponents(['kafka']), 5), /==> .*kafka\.log <==\n\(no log at /)
  writeFileSync(join(o.dir, 'marker'), '')
  await wipe(o, selectComponents([]), quiet)
  t.equal(existsSync(join(o.dir, 'marker')), true, 'wipe keeps what is not a component folder')
  t.throws(() => selectComponents(['zookeeper']), { code: 'FINNHUBD_ERR_USAGE', message: /unknown stack component "zookeeper"/ })
})

t.test('a running component is known by its command line, fsync-off is reported, a silent one is stopped', async t => {
  const shared = stackOptions(process.env)
  const cassandra = selectComponents(['cassandra'])
  const c = cassandra[0] as (typeof COMPONENTS)[number]
  // A stand-in process that carries a private stack's marker; the shared Cassandra answers for it.
  const o = await privateOptions(t, { cassandraPort: shared.cassandraPort })
  mkdirSync(c.home(o), { recursive: true })
  const pid = await spawnMarked([c.marker(o), SKIP_SYNC_FLAG, PASSWORD_AUTH_FLAG])
  t.teardown(() => stopPid(pid, c.marker(o), 1000))
  writeFileSync(join(c.home(o), 'cassandra.pid'), `${pid}\n`)
  const [row] = await status(o, cassandra)
  t.match(row, { name: 'cassandra', running: true, pid, ready: true, fastUnsafe: true, passwordAuth: true })
  t.ok((row?.rssBytes ?? 0) > 0, 'memory is read from /proc')
  const lines: string[] = []
  const [again] = await up(o, {}, cassandra, l => lines.push(l))
  t.match(again, { action: 'already-running', pid, passwordAuth: true })
  t.match(lines.join('\n'), /cassandra: fsync is off \(FINNHUBD_STACK_FAST_UNSAFE\)/)
  t.match(lines.join('\n'), /cassandra: was started with password authentication and keeps it \(FINNHUBD_CASSANDRA_AUTH=none now\)/)
  const out: string[] = []
  await runStackCli(['status', 'cassandra'], {
    env: { FINNHUBD_STACK_DIR: o.dir, FINNHUBD_CASSANDRA_PORT: String(o.cassandraPort), FINNHUBD_CASSANDRA_STORAGE_PORT: String(o.cassandraStoragePort) },
    out: l => out.push(l),
    err: quiet
  })
  t.match(out.join('\n'), /^cassandra +running +pid \d+ .* ready +rss \d+ MiB {2}NO FSYNC \(FINNHUBD_STACK_FAST_UNSAFE\) {2}PASSWORD AUTH \(user cassandra\)$/m)

  // The same process where nothing answers: `up` waits its timeout, then stops it.
  const silent = { ...o, cassandraPort: (await freePorts(1))[0] as number, cassandraReadyTimeoutMs: 1000 }
  await t.rejects(up(silent, {}, cassandra, quiet), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /cassandra did not answer on 127\.0\.0\.1:\d+ within 1 s and was stopped\. Last lines of .*cassandra\.log/
  })
  t.equal(isAlive(pid), false, 'the unanswering process was stopped')
  t.equal(existsSync(join(c.home(o), 'cassandra.pid')), false, 'and its pid file removed')
})

// The probe always offers the stack's login: a server without auth never asks for it,
// so a node started in either mode is ready whatever FINNHUBD_CASSANDRA_AUTH says now.
t.test('a node started without auth is ready, and kept, for options that ask for password auth', async t => {
  const shared = stackOptions(process.env)
  const cassandra = selectComponents(['cassandra'])
  const c = cassandra[0] as (typeof COMPONENTS)[number]
  const [sharedRow] = await status(shared, cassandra)
  t.match(sharedRow, { ready: true, passwordAuth: false }, 'the shared Cassandra runs without auth (AllowAllAuthenticator)')
  const o = await privateOptions(t, { cassandraPort: shared.cassandraPort, cassandraAuth: 'password', cassandraReadyTimeoutMs: 5000 })
  mkdirSync(c.home(o), { recursive: true })
  const pid = await spawnMarked([c.marker(o)])
  t.teardown(() => stopPid(pid, c.marker(o), 1000))
  writeFileSync(join(c.home(o), 'cassandra.pid'), `${pid}\n`)
  t.match(await status(o, cassandra), [{ running: true, pid, ready: true, passwordAuth: false }])
  const lines: string[] = []
  t.match(await up(o, {}, cassandra, l => lines.push(l)), [{ action: 'already-running', pid, passwordAuth: false }])
  t.match(lines.join('\n'), /cassandra: was started without password authentication and keeps it \(FINNHUBD_CASSANDRA_AUTH=password now\); `npm run stack -- down cassandra` and `up` again/)
  t.notMatch(lines.join('\n'), /password authentication is on/)
  t.equal(isAlive(pid), true, 'not stopped for the mode')
})

t.test('the running stack: up again is a no-op, status reports both ready', async t => {
  const o = stackOptions(process.env)
  const before = await status(o, selectComponents([]))
  t.ok(before.every(r => r.running && r.ready), 'both ready (the before hook started them)')
  const again = await up(o, process.env, selectComponents([]), quiet)
  t.same(again.map(r => r.action), ['already-running', 'already-running'])
  t.same(again.map(r => r.pid), before.map(r => r.pid), 'same processes')
  for (const r of before) t.ok((r.rssBytes ?? 0) > 50 * 1024 * 1024, `${r.name} reports its memory`)
  t.match(readFileSync(join(o.dir, 'kafka', 'server.properties'), 'utf8'), new RegExp(`:${o.kafkaPort}`))
})

t.test('the CLI: usage, errors, status and logs', async t => {
  const run = async (args: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> => {
    const out: string[] = []
    const err: string[] = []
    const code = await runStackCli(args, { env: { ...process.env, ...env }, out: l => out.push(l), err: l => err.push(l) })
    return { code, out: out.join('\n'), err: err.join('\n') }
  }
  const usage = await run([])
  t.equal(usage.code, 2)
  t.match(usage.out, /usage: npm run stack -- <up\|down\|status\|wipe\|logs>/)
  t.equal((await run(['help'])).code, 0)
  const unknown = await run(['restart'])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown stack command "restart"/)
  t.match((await run(['logs', '--lines', 'x'])).err, /--lines takes a whole number/)
  const st = await run(['status'])
  t.equal(st.code, 0)
  t.match(st.out, /^kafka +running +pid \d+ +127\.0\.0\.1:\d+ +ready +rss \d+ MiB$/m)
  t.match(st.out, /^cassandra +running +pid \d+ +127\.0\.0\.1:\d+ +ready +rss \d+ MiB$/m)
  const up1 = await run(['up', 'kafka'])
  t.equal(up1.code, 0)
  t.match(up1.out, /kafka: already running/)
  const lg = await run(['logs', 'kafka', '--lines', '5'])
  t.match(lg.out, /==> .*kafka\.log <==/)
  const dir = t.testdir({})
  const stopped = await run(['status'], { FINNHUBD_STACK_DIR: dir, FINNHUBD_KAFKA_PORT: '1', FINNHUBD_KAFKA_CONTROLLER_PORT: '2', FINNHUBD_CASSANDRA_PORT: '3', FINNHUBD_CASSANDRA_STORAGE_PORT: '4' })
  t.equal(stopped.code, 1, 'status exits 1 when not everything is ready')
  t.match(stopped.out, /kafka +stopped/)
  t.equal((await run(['down'], { FINNHUBD_STACK_DIR: dir })).code, 0)
  t.equal((await run(['wipe', 'kafka'], { FINNHUBD_STACK_DIR: dir })).code, 0)
  t.equal((await run(['status'], { FINNHUBD_KAFKA_PORT: 'nope' })).code, 2)
})
