// The local stack: options, Java discovery, the error messages that can be provoked,
// and `up`/`status` against the stack the suite runs on (started by the before hook).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { runStackCli } from '../../stack/cli.js'
import { clusterId, COMPONENTS, cassandraYaml, kafkaProperties } from '../../stack/components.js'
import { fetchJars } from '../../stack/fetch.js'
import { findJava, parseJavaVersion } from '../../stack/java.js'
import { stackEndpoints, stackOptions, type StackOptions } from '../../stack/options.js'
import { isOurs, portFree, portOwner, stopPid } from '../../stack/proc.js'
import { down, logs, runningPid, selectComponents, status, up, wipe } from '../../stack/stack.js'

t.setTimeout(180_000)

const quiet = (): void => {}

function fakeExecutable (dir: string, name: string, script: string): string {
  const file = join(dir, name)
  writeFileSync(file, `#!/bin/sh\n${script}\n`)
  chmodSync(file, 0o755)
  return file
}

async function listenOnFreePort (): Promise<{ server: Server, port: number }> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

/** Stack options in a private folder on ports nobody uses, so the shared stack is untouched. */
async function privateOptions (t: Test, overrides: Partial<StackOptions> = {}): Promise<StackOptions> {
  const ports: number[] = []
  for (let i = 0; i < 4; i++) {
    const { server, port } = await listenOnFreePort()
    ports.push(port)
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  return stackOptions({}, {
    dir: t.testdir({}),
    kafkaPort: ports[0] as number,
    kafkaControllerPort: ports[1] as number,
    cassandraPort: ports[2] as number,
    cassandraStoragePort: ports[3] as number,
    kafkaReadyTimeoutMs: 20_000,
    cassandraReadyTimeoutMs: 20_000,
    ...overrides
  })
}

t.test('options: defaults stay off the standard ports; env moves them; bad values are named', async t => {
  const o = stackOptions({})
  t.same([o.kafkaPort, o.kafkaControllerPort, o.cassandraPort, o.cassandraStoragePort], [19092, 19093, 19042, 17000])
  t.match(o.dir, /\.stack$/)
  const moved = stackOptions({ FINNHUBD_KAFKA_PORT: '29092', FINNHUBD_CASSANDRA_PORT: '29042', FINNHUBD_STACK_DIR: '/tmp/x', FINNHUBD_JAVA_HOME: '/opt/jdk' })
  t.same(stackEndpoints(moved), { kafkaBootstrap: '127.0.0.1:29092', cassandraHost: '127.0.0.1', cassandraPort: 29042 })
  t.equal(moved.dir, '/tmp/x')
  t.equal(moved.javaHome, '/opt/jdk')
  t.throws(() => stackOptions({ FINNHUBD_KAFKA_PORT: 'abc' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_KAFKA_PORT=abc is not a whole number from 1 to 65535/ })
  t.throws(() => stackOptions({ FINNHUBD_CASSANDRA_HEAP_MB: '100' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_CASSANDRA_HEAP_MB=100/ })
  t.throws(() => stackOptions({ FINNHUBD_KAFKA_PORT: '17000' }), { code: 'FINNHUBD_ERR_USAGE', message: /four ports must differ/ })
})

t.test('generated configs carry the ports, folders and single-node settings', async t => {
  const o = stackOptions({}, { dir: '/data/stack', kafkaPort: 1111, kafkaControllerPort: 2222, cassandraPort: 3333, cassandraStoragePort: 4444 })
  const props = kafkaProperties(o)
  t.match(props, /^process\.roles=broker,controller$/m)
  t.match(props, /^controller\.quorum\.voters=1@127\.0\.0\.1:2222$/m)
  t.match(props, /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:1111,CONTROLLER:\/\/127\.0\.0\.1:2222$/m)
  t.match(props, /^log\.dirs=\/data\/stack\/kafka\/data$/m)
  t.match(props, /^offsets\.topic\.replication\.factor=1$/m)
  t.match(props, /^group\.initial\.rebalance\.delay\.ms=0$/m)
  const yaml = cassandraYaml(o)
  t.match(yaml, /native_transport_port: 3333/)
  t.match(yaml, /storage_port: 4444/)
  t.match(yaml, /seeds: "127\.0\.0\.1:4444"/)
  t.match(yaml, /commitlog_directory: \/data\/stack\/cassandra\/data\/commitlog/)
  t.match(yaml, /batch_size_warn_threshold: 5KiB/)
  for (let i = 0; i < 50; i++) t.match(clusterId(), /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
  const cassandra = COMPONENTS.find(c => c.name === 'cassandra')
  const args = cassandra?.args(o, t.testdir({ 'jamm-0.4.0.jar': '' })) ?? []
  t.ok(args.some(a => /^-javaagent:.*jamm-0\.4\.0\.jar$/.test(a)), 'jamm is the java agent')
  t.ok(args.includes('-Xmx1024m') && args.includes('--add-opens=java.base/java.lang=ALL-UNNAMED'))
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
    message: /needs Java 17.*tried: .*bin\/java → Java 11.*apt-get install openjdk-17-jdk-headless.*FINNHUBD_JAVA_HOME/
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
  const pom = join(process.cwd(), 'stack', 'kafka', 'pom.xml')
  await t.rejects(fetchJars({ name: 'kafka', pom, dir, mvn, log: quiet }), {
    code: 'FINNHUBD_ERR_STACK_DOWNLOAD',
    message: /fetching kafka with Maven failed \(exit 1\)\. Check that Maven Central is reachable.*Connection refused/s
  })
  await t.rejects(fetchJars({ name: 'kafka', pom, dir, mvn: join(dir, 'no-mvn'), log: quiet }), {
    code: 'FINNHUBD_ERR_STACK_DOWNLOAD',
    message: /cannot run Maven .*apt-get install maven/
  })
  const ok = fakeExecutable(dir, 'mvn-ok', 'exit 0')
  const logged: string[] = []
  const first = await fetchJars({ name: 'kafka', pom, dir, mvn: ok, log: l => logged.push(l) })
  t.equal(first.fetched, true)
  t.match(logged.join(), /fetching kafka from Maven Central/)
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
  const polite = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' })
  const stubborn = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)', marker], { stdio: 'ignore' })
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(isOurs(polite.pid ?? null, marker), true)
  t.equal(isOurs(polite.pid ?? null, 'someone-else'), false, 'a pid running something else is not ours')
  t.equal(await stopPid(polite.pid as number, 'someone-else', 1000), 'gone', 'never signals a process that is not ours')
  t.equal(await stopPid(polite.pid as number, marker, 5000), 'stopped')
  t.equal(await stopPid(stubborn.pid as number, marker, 300), 'killed')
  t.equal(isOurs(999_999_999, marker), false)
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
