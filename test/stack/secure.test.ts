// The secure stack for real: one private stack started with --secure (its own temp
// folder and ports), then what a client sees. Kafka takes SASL_SSL with SCRAM-SHA-512
// and the generated password, and refuses plaintext, a wrong password and an untrusted
// CA; Cassandra takes TLS with the generated role, and refuses plaintext, a wrong
// password and an untrusted CA; the daemon's generated config loads; status says SECURE.
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import cassandra from 'cassandra-driver'
import Kafka from 'node-rdkafka'
import { main } from '../../daemon/cli.js'
import { loadConfig, validateConfig } from '../../daemon/config/load.js'
import { createLogger } from '../../daemon/log.js'
import { runDemo } from '../../tools/demo.js'
import { runStackCli } from '../../tools/stack/cli.js'
import { stackOptions } from '../../tools/stack/options.js'
import { selectComponents, status, up } from '../../tools/stack/stack.js'
import { startSecureStack } from '../fixtures/secure-stack.js'
import { readTopic, uniqueName } from '../fixtures/kafka.js'

t.setTimeout(300_000)

const started = Date.now()
const stack = await startSecureStack()
t.teardown(stack.stop)
t.comment(`secure stack ready after ${((Date.now() - started) / 1000).toFixed(1)} s in all ` +
  `(kafka ${((stack.readyMs.kafka ?? 0) / 1000).toFixed(1)} s, cassandra ${((stack.readyMs.cassandra ?? 0) / 1000).toFixed(1)} s; heaps 512 MiB)`)

type KafkaConf = Record<string, string | number | boolean>

/** Resolves with the broker count of a metadata request, or rejects with the client's error. */
async function metadata (conf: KafkaConf, timeoutMs = 6000): Promise<number> {
  const producer = new Kafka.Producer({ ...conf, 'client.id': 'finnhubd-secure-test', log_level: 0 })
  try {
    await new Promise<void>((resolve, reject) => { producer.connect({ timeout: timeoutMs }, err => { err ? reject(err) : resolve() }) })
    return await new Promise<number>((resolve, reject) => {
      producer.getMetadata({ timeout: timeoutMs }, (err, md) => { err ? reject(err) : resolve(md.brokers.length) })
    })
  } finally {
    if (producer.isConnected()) await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })
  }
}

async function cassandraQuery (opts: { username: string, password: string, ca?: string | null }): Promise<string> {
  const client = new cassandra.Client({
    contactPoints: ['127.0.0.1'],
    protocolOptions: { port: stack.options.cassandraPort },
    localDataCenter: 'datacenter1',
    authProvider: new cassandra.auth.PlainTextAuthProvider(opts.username, opts.password),
    socketOptions: { connectTimeout: 4000, readTimeout: 8000 },
    pooling: { warmup: false },
    ...(opts.ca !== null ? { sslOptions: { ca: [readFileSync(opts.ca ?? stack.files.caFile)], rejectUnauthorized: true } } : {})
  })
  try {
    const rs = await client.execute('SELECT release_version FROM system.local')
    return String(rs.first()?.['release_version'])
  } finally {
    await client.shutdown().catch(() => {})
  }
}

t.test('the stack came up secure and says so', async t => {
  t.match(stack.results, [
    { name: 'kafka', action: 'started', secure: true, endpoint: `127.0.0.1:${stack.options.kafkaPort}` },
    { name: 'cassandra', action: 'started', secure: true, passwordAuth: true }
  ])
  t.match(stack.log.join('\n'), /kafka: ready on 127\.0\.0\.1:\d+ \(SASL_SSL SCRAM-SHA-512\) after/)
  t.match(stack.log.join('\n'), /cassandra: login role finnhubd ready over TLS/)
  t.notMatch(stack.log.join('\n'), new RegExp(`${stack.kafkaPassword}|${stack.cassandraPassword}`), 'no password in the log')
  t.same(stackOptions(stack.env), stack.options, 'the fixture\'s env names the same stack')

  const rows = await status(stack.options, selectComponents([]))
  t.match(rows, [{ name: 'kafka', running: true, ready: true, secure: true }, { name: 'cassandra', running: true, ready: true, secure: true, passwordAuth: true }])
  const out: string[] = []
  t.equal(await runStackCli(['status', '--secure'], { env: { ...stack.env, FINNHUBD_STACK_SECURE: '' }, out: l => out.push(l), err: l => out.push(l) }), 0)
  t.match(out.join('\n'), new RegExp(`^kafka +running +pid \\d+ +127\\.0\\.0\\.1:${stack.options.kafkaPort} +ready +rss \\d+ MiB {2}SECURE \\(SASL_SSL SCRAM-SHA-512\\)$`, 'm'))
  t.match(out.join('\n'), new RegExp(`^cassandra +running +pid \\d+ +127\\.0\\.0\\.1:${stack.options.cassandraPort} +ready +rss \\d+ MiB {2}SECURE \\(TLS \\+ password\\)$`, 'm'))

  // Again: both kept, the role step repeats harmlessly, and it prints the daemon's config.
  const upOut: string[] = []
  t.equal(await runStackCli(['up'], { env: stack.env, out: l => upOut.push(l), err: l => upOut.push(l) }), 0, upOut.join('\n'))
  t.match(upOut.join('\n'), /kafka: already running .*\(SASL_SSL SCRAM-SHA-512\)/)
  t.match(upOut.join('\n'), new RegExp(`stack up: kafka 127\\.0\\.0\\.1:${stack.options.kafkaPort} \\(SASL_SSL SCRAM-SHA-512\\), cassandra 127\\.0\\.0\\.1:${stack.options.cassandraPort} \\(TLS \\+ password\\)`))
  t.match(upOut.join('\n'), new RegExp(`npm run finnhubd -- --config ${stack.files.configFile} run`))
  t.equal(readFileSync(stack.files.kafkaPasswordFile, 'utf8').trim(), stack.kafkaPassword, 'passwords kept')
  t.equal(readFileSync(stack.files.cassandraPasswordFile, 'utf8').trim(), stack.cassandraPassword)
})

t.test('a plain `up` on the secure stack\'s folder is refused, not mistaken for it', async t => {
  await t.rejects(up({ ...stack.options, secure: false, cassandraAuth: 'none' }, process.env, selectComponents(['kafka']), () => {}), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /kafka in .* runs as the secure stack \(pid \d+\); stop it with `npm run stack -- down --secure`/
  })
})

t.test('Kafka: SASL_SSL SCRAM-SHA-512 with the generated password produces and reads back', async t => {
  const conf = stack.kafkaClientConfig()
  t.equal(await metadata(conf), 1)
  const topic = uniqueName('secure')
  const admin = Kafka.AdminClient.create({ ...conf, 'client.id': 'finnhubd-secure-test' })
  await new Promise<void>((resolve, reject) => { admin.createTopic({ topic, num_partitions: 1, replication_factor: 1 }, 10_000, err => { err ? reject(err) : resolve() }) })
  admin.disconnect()

  const producer = new Kafka.Producer({ ...conf, dr_cb: true, log_level: 0 })
  await new Promise<void>((resolve, reject) => { producer.connect({ timeout: 10_000 }, err => { err ? reject(err) : resolve() }) })
  const delivered = new Promise<void>((resolve, reject) => { producer.once('delivery-report', err => { err ? reject(err) : resolve() }) })
  const poll = setInterval(() => producer.poll(), 50)
  producer.produce(topic, null, Buffer.from('over SASL_SSL'), 'k1')
  await delivered
  clearInterval(poll)
  await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })

  // Read back with the daemon's own settings for this stack (its generated config).
  const read = await readTopic(loadConfig({ file: stack.files.configFile, env: {} }).config.kafka, topic, { expect: 1, deadlineMs: 30_000 })
  t.equal(read.length, 1)
  t.equal(read[0]?.value?.toString(), 'over SASL_SSL')
})

t.test('Kafka: plaintext, a wrong password and an untrusted CA are all refused', async t => {
  const conf = stack.kafkaClientConfig()
  const bootstrap = `127.0.0.1:${stack.options.kafkaPort}`
  // At once: each waits out its timeout.
  await Promise.all([
    t.rejects(metadata({ 'metadata.broker.list': bootstrap }, 4000), 'plaintext on the SASL_SSL port'),
    t.rejects(metadata({ ...conf, 'security.protocol': 'ssl' }, 4000), 'TLS without SASL'),
    t.rejects(metadata({ ...conf, 'sasl.password': 'not-the-password' }, 4000), 'a wrong password'),
    t.rejects(metadata({ ...conf, 'sasl.username': 'admin', 'sasl.password': stack.kafkaPassword }, 4000), 'another user with the daemon\'s password'),
    t.rejects(metadata({ ...conf, 'ssl.ca.location': stack.files.untrustedCaFile }, 4000), 'a CA that did not sign the broker\'s certificate'),
    t.rejects(metadata({ ...conf, 'sasl.mechanisms': 'PLAIN' }, 4000), 'only SCRAM-SHA-512 is enabled'),
    t.rejects(metadata({ ...conf, 'sasl.mechanisms': 'SCRAM-SHA-256' }, 4000), 'not SCRAM-SHA-256 either'),
    // The fault-test listener is secured the same way.
    t.rejects(metadata({ 'metadata.broker.list': `127.0.0.1:${stack.options.kafkaProxiedPort}` }, 4000), 'plaintext on the proxied listener')
  ])
})

t.test('Cassandra: TLS + the generated role works; plaintext, a wrong password and an untrusted CA do not', async t => {
  t.match(await cassandraQuery({ username: stack.files.cassandraUser, password: stack.cassandraPassword }), /^5\.0\./)
  await Promise.all([
    t.rejects(cassandraQuery({ username: stack.files.cassandraUser, password: stack.cassandraPassword, ca: null }), { name: 'NoHostAvailableError' }, 'plaintext'),
    t.rejects(cassandraQuery({ username: stack.files.cassandraUser, password: 'not-the-password' }),
      { name: 'NoHostAvailableError', message: /Provided username finnhubd and\/or password are incorrect/ }, 'a wrong password'),
    t.rejects(cassandraQuery({ username: 'cassandra', password: stack.cassandraPassword }), { name: 'NoHostAvailableError' }, 'another user with the role\'s password'),
    t.rejects(cassandraQuery({ username: stack.files.cassandraUser, password: stack.cassandraPassword, ca: stack.files.untrustedCaFile }),
      { name: 'NoHostAvailableError', message: /self-signed certificate in certificate chain/ }, 'an untrusted CA')
  ])
})

t.test('the generated finnhubd.yaml loads with the daemon\'s loader; its secret files are 0600', async t => {
  const loaded = loadConfig({ file: stack.files.configFile, env: {} })
  t.same(loaded.warnings, [], 'no permission warnings')
  const { kafka, cassandra: c } = loaded.config
  t.same(kafka.bootstrapServers, [`127.0.0.1:${stack.options.kafkaPort}`])
  t.match(kafka.security, { protocol: 'sasl_ssl', sasl: { mechanism: 'SCRAM-SHA-512', username: 'finnhubd', password: stack.kafkaPassword }, ssl: { caFile: stack.files.caFile } })
  t.match(c, { contactPoints: ['127.0.0.1'], port: stack.options.cassandraPort, username: 'finnhubd', password: stack.cassandraPassword, tls: { enabled: true, caFile: stack.files.caFile } })
  for (const file of [stack.files.kafkaPasswordFile, stack.files.kafkaAdminPasswordFile, stack.files.cassandraPasswordFile, stack.files.keystorePasswordFile,
    stack.files.caKeyFile, stack.files.serverKeyFile, stack.files.clientKeyFile, stack.files.serverKeystoreFile]) {
    t.equal(statSync(file).mode & 0o777, 0o600, `${file} is 0600`)
  }
  for (const file of [`${stack.options.dir}/kafka/server.properties`, `${stack.options.dir}/cassandra/cassandra.yaml`]) {
    t.equal(statSync(file).mode & 0o777, 0o600, `${file} holds passwords and is 0600`)
  }
})

t.test('the demo runs on the secure stack: SASL_SSL to Kafka, TLS + the role to Cassandra', async t => {
  const id = uniqueName('sdemo').replace(/-/g, '_')
  // Endpoints and security come from the stack; the configured ones (defaults here) are replaced.
  const config = validateConfig({
    logLevel: 'warn',
    finnhub: { symbols: ['AAPL'] },
    kafka: { topic: `finnhubd.${id}`, deadLetterTopic: `finnhubd.${id}.dlq`, groupId: id },
    cassandra: { keyspace: `k_${id}` },
    http: { enabled: false }
  })
  const out: string[] = []
  let stop!: (reason: string) => void
  const stopSignal = new Promise<string>(resolve => { stop = resolve })
  t.teardown(() => { stop('teardown') })
  // The fixture's env, without a secure flag: `secure` is what turns it on (demo --secure).
  const env = { ...stack.env, FINNHUBD_STACK_SECURE: '', FINNHUB_TOKEN: '' }
  const done = runDemo({ env, config, secure: true, out: l => out.push(l), log: createLogger({ level: 'error', write: () => {} }), stopSignal, statusEveryMs: 1000, simRatePerSec: 200 })
  const until = Date.now() + 90_000
  while (!out.some(l => /stored [1-9][\d,]* in all/.test(l)) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 200))
  stop('test')
  t.equal(await done, 0, out.join('\n'))
  const text = out.join('\n')
  t.match(text, /\[stack\] kafka: already running .*\(SASL_SSL SCRAM-SHA-512\)/, 'on the running secure stack')
  t.match(text, /\[demo\] secure stack: Kafka SASL_SSL SCRAM-SHA-512 as finnhubd, Cassandra TLS \+ password as finnhubd/)
  t.match(text, /stored [1-9][\d,]* in all/, 'trades went through Kafka into Cassandra')
  t.match(text, new RegExp(`npm run finnhubd -- --config ${stack.files.configFile} query AAPL`))
  t.notMatch(text, new RegExp(`${stack.kafkaPassword}|${stack.cassandraPassword}`), 'no password in the output')

  // And the generated config reads them back through the daemon's own command.
  const rows: string[] = []
  t.equal(await main(['--config', stack.files.configFile, 'query', 'AAPL', '--limit', '2'], { env: { CASSANDRA_KEYSPACE: `k_${id}` }, out: l => rows.push(l), err: l => rows.push(l) }), 0, rows.join('\n'))
  t.equal(rows.length, 2)
})
