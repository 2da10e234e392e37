// The daemon against a secured stack (tools/stack/secure.ts): Kafka's only client
// listener is SASL_SSL with SCRAM-SHA-512, Cassandra takes TLS connections only and a
// password. Both roles run end to end on the settings the stack generated (passwords
// from files), and what is stored and what is in the topic equal what the simulator
// sent; no secret shows in a log line, /metrics, /api or the console; a reload with a
// wrong password is refused while the pipeline runs on. Then every wrong setting a user
// can make (item 5 of docs/security.md's failure table) is started for real as
// `finnhubd process`: its exit code, first line and time to fail.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket, connect } from 'node:net'
import { join } from 'node:path'
import { parse as parseYaml, stringify as yamlStringify } from 'yaml'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { loadConfig } from '../../daemon/config/load.js'
import { startDaemon } from '../../daemon/daemon.js'
import { createTopic } from '../../daemon/kafka/admin.js'
import { createLogger } from '../../daemon/log.js'
import { CQL_DIR, PROJECT_ROOT } from '../../daemon/paths.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { readTopicIds } from '../../tools/verify/verify.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { uniqueName } from '../fixtures/kafka.js'
import { cassandraClient, expectedTradeIds, readTrades, waitCommitted } from '../fixtures/pipeline.js'
import { startSecureStack } from '../fixtures/secure-stack.js'

t.setTimeout(900_000)

const stack = await startSecureStack()
t.teardown(stack.stop)
t.comment(`secure stack ready: Kafka ${((stack.readyMs.kafka ?? 0) / 1000).toFixed(1)} s, Cassandra ${((stack.readyMs.cassandra ?? 0) / 1000).toFixed(1)} s`)

const work = t.testdir({})
const generated = parseYaml(readFileSync(stack.files.configFile, 'utf8')) as Record<string, Record<string, unknown>>
let files = 0

type Tree = Record<string, unknown>
function merge (a: Tree, b: Tree): Tree {
  const out: Tree = { ...a }
  for (const [k, v] of Object.entries(b)) {
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && out[k] !== null ? merge(out[k] as Tree, v as Tree) : v
  }
  return out
}

/** A config file: the stack's generated one with `overrides`, written 0600 (it names password files). */
function configFile (overrides: Tree): string {
  const file = join(work, `finnhubd-${files++}.yaml`)
  writeFileSync(file, yamlStringify(merge(generated, overrides)))
  chmodSync(file, 0o600)
  return file
}

function secretFile (name: string, value: string): string {
  const file = join(work, name)
  writeFileSync(file, `${value}\n`)
  chmodSync(file, 0o600)
  return file
}

const id = uniqueName('sec').replace(/-/g, '_')
const topic = `finnhubd.${id}`
const names = { kafka: { topic, deadLetterTopic: `${topic}.dlq`, groupId: `g_${id}`, lingerMs: 2, statsIntervalMs: 200, commitIntervalMs: 200 }, cassandra: { keyspace: `s_${id}`.slice(0, 48) } }

t.test('both roles over SASL_SSL (SCRAM-SHA-512) and Cassandra TLS + password: what is stored and what is in the topic equal what was sent', async t => {
  const N = 3000
  const SYMBOLS = ['BINANCE:BTCUSDT', 'AAPL', 'MSFT']
  const token = 'simulator-token-4b7c9e1f'
  const sim = new FinnhubSimulator({ token, ratePerSec: 1500, keepSent: true, maxTotalTrades: N, seed: 23, duplicateFillRatio: 0.05 })
  await sim.start()
  t.teardown(() => sim.close())
  const consoleToken = 'console-token-0f3a8c2d9e6b7a51'
  const file = configFile({
    ...names,
    logLevel: 'info',
    finnhub: { url: sim.url, tokenFile: secretFile('finnhub-token', token), symbols: SYMBOLS },
    workers: { poolSize: 1, batchSize: 500 },
    http: { enabled: true, port: 0, console: { tokenFile: secretFile('console-token', consoleToken) } }
  })
  const loaded = loadConfig({ file, env: {} })
  const config = loaded.config
  t.same(loaded.warnings, [], 'the generated files are private: no permission warning')
  t.match(config.kafka.security, { protocol: 'sasl_ssl', sasl: { mechanism: 'SCRAM-SHA-512', username: stack.files.kafkaUser } })
  t.equal(config.kafka.security.sasl.password, stack.kafkaPassword, 'the Kafka password came from its file')
  t.equal(config.cassandra.password, stack.cassandraPassword, 'the Cassandra password came from its file')
  t.equal(config.cassandra.tls.enabled, true)

  await runMigrate(config, CQL_DIR, () => {})
  t.equal(await createTopic(config.kafka, topic, 3), 'created', 'the admin client connects over SASL_SSL')
  const lines: string[] = []
  const daemon = await startDaemon({
    config,
    roles: ['ingest', 'process'],
    log: createLogger({ level: 'info', write: l => lines.push(l) }),
    stopSignal: new Promise<string>(() => {}),
    http: true,
    reload: () => loadConfig({ file: reloadFile, env: {} }).config
  })
  let reloadFile = file
  t.ok(await waitCommitted(config, N, 180_000), `all ${N} records stored and committed`)
  t.equal(sim.stats().tradesSent, N)

  // Every endpoint, with the console's token: no secret in any answer.
  const base = daemon.http?.url ?? ''
  const secrets = [stack.kafkaPassword, stack.cassandraPassword, token, consoleToken]
  const paths = ['/metrics', '/healthz', '/readyz', '/latency', '/', '/api', '/api/pipeline', '/api/symbols', '/api/topic?topic=trades&limit=20', '/api/topic?topic=dlq&limit=20', '/api/trades?symbol=AAPL&limit=50', '/api/candles?symbol=AAPL']
  for (const path of paths) {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${consoleToken}` } })
    const body = await res.text()
    t.ok(res.status < 500, `${path}: ${res.status}`)
    for (const s of secrets) t.notOk(body.includes(s), `${path}: no secret in the answer`)
  }
  const readyz = await (await fetch(`${base}/readyz`)).text()
  t.match(readyz, /kafka/i, 'readiness names Kafka')

  // A reload with a wrong Kafka password: refused, the pipeline runs on the old one.
  reloadFile = configFile({ ...names, finnhub: { url: sim.url, tokenFile: join(work, 'finnhub-token'), symbols: SYMBOLS }, kafka: { security: { sasl: { passwordFile: secretFile('wrong-kafka-password', 'not-the-password-0000') } } }, http: { enabled: true, port: 0, console: { tokenFile: join(work, 'console-token') } } })
  const started = Date.now()
  const refused = await daemon.reload()
  t.match(refused, { ok: false, error: /refused the SASL login of user "finnhubd"/ }, 'the reload is refused with the reason')
  t.comment(`reload with a wrong Kafka password refused in ${Date.now() - started} ms`)
  t.equal(daemon.config.kafka.security.sasl.password, stack.kafkaPassword, 'the running clients keep the old password')
  t.equal(daemon.readiness().ready, true, 'still ready after the refused reload')

  await daemon.stop('test')
  const log = lines.join('\n')
  for (const s of secrets) t.notOk(log.includes(s), 'no secret in any log line')

  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const sent = sim.sent()
  const stored = await readTrades(client, config, SYMBOLS, sent.map(s => s.t))
  const expected = expectedTradeIds(sent)
  t.equal(stored.length, expected.size, 'as many rows as distinct trades sent')
  t.same(new Set(stored.map(r => r.trade_id)), expected, 'exactly the trades sent, read back over TLS')
  const inTopic = await readTopicIds(config.kafka, topic, config.schemaPath)
  t.equal(inTopic.records, N, 'one record a trade in the topic, read back over SASL_SSL')
  t.equal(inTopic.undecodable, 0)
  t.same(new Set(inTopic.ids.keys()), expected, 'the topic holds exactly the trades sent')
})

// ---- the bad-credential matrix ---------------------------------------------------

/** A TCP relay on another loopback address: the server's certificate does not name it. */
async function relay (toPort: number, host = '127.0.0.2'): Promise<{ port: number, server: Server }> {
  const sockets = new Set<Socket>()
  const server = createServer(inbound => {
    const outbound = connect(toPort, '127.0.0.1')
    sockets.add(inbound).add(outbound)
    inbound.pipe(outbound).pipe(inbound)
    const end = (): void => { inbound.destroy(); outbound.destroy() }
    inbound.on('error', end).on('close', end)
    outbound.on('error', end).on('close', end)
  })
  await new Promise<void>(resolve => server.listen(0, host, resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { port: (server.address() as { port: number }).port, server }
}

interface Run { code: number | null, first: string, ms: number, out: string }

async function runProcess (file: string): Promise<Run> {
  const started = Date.now()
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'daemon', 'cli.js'), '--config', file, 'process'], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { out += c.toString() })
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  clearTimeout(killer)
  const first = out.split('\n').find(l => l.startsWith('finnhubd:')) ?? out.split('\n')[0] ?? ''
  return { code, first, ms: Date.now() - started, out }
}

t.test('every wrong setting fails at start, within the connect timeout, with a code and the setting to change', async t => {
  const plain = testEndpoints()
  const kafkaRelay = await relay(stack.options.kafkaPort)
  const cassandraRelay = await relay(stack.options.cassandraPort)
  const off = { http: { enabled: false }, ...names, kafka: { ...names.kafka, connectTimeoutMs: 15_000 } }
  const cases: Array<{ name: string, overrides: Tree, code: string, says: RegExp }> = [
    { name: 'Kafka: wrong password', overrides: { kafka: { security: { sasl: { passwordFile: secretFile('k-wrong', 'wrong-password-1234') } } } }, code: 'FINNHUBD_ERR_KAFKA_AUTH', says: /kafka\.security\.sasl/ },
    { name: 'Kafka: untrusted CA', overrides: { kafka: { security: { ssl: { caFile: stack.files.untrustedCaFile } } } }, code: 'FINNHUBD_ERR_KAFKA_TLS', says: /kafka\.security\.ssl\.caFile/ },
    { name: 'Kafka: certificate for another host', overrides: { kafka: { bootstrapServers: [`127.0.0.2:${kafkaRelay.port}`] } }, code: 'FINNHUBD_ERR_KAFKA_TLS', says: /not for the host|verifyHostname/ },
    { name: 'Kafka: plaintext against SASL_SSL', overrides: { kafka: { security: { protocol: 'plaintext', sasl: { username: null, passwordFile: null }, ssl: { caFile: null } } } }, code: 'FINNHUBD_ERR_KAFKA_PROTOCOL', says: /kafka\.security\.protocol/ },
    { name: 'Kafka: SASL_SSL against plaintext', overrides: { kafka: { bootstrapServers: [plain.kafkaBootstrap] } }, code: 'FINNHUBD_ERR_KAFKA_PROTOCOL', says: /kafka\.security\.protocol/ },
    { name: 'Cassandra: wrong password', overrides: { cassandra: { passwordFile: secretFile('c-wrong', 'wrong-password-5678') } }, code: 'FINNHUBD_ERR_CASSANDRA_AUTH', says: /cassandra\.username|CASSANDRA_PASSWORD/ },
    { name: 'Cassandra: untrusted CA', overrides: { cassandra: { tls: { caFile: stack.files.untrustedCaFile } } }, code: 'FINNHUBD_ERR_CASSANDRA_TLS', says: /cassandra\.tls\.caFile/ },
    { name: 'Cassandra: certificate for another host', overrides: { cassandra: { contactPoints: ['127.0.0.2'], port: cassandraRelay.port } }, code: 'FINNHUBD_ERR_CASSANDRA_TLS', says: /cassandra\.tls\.serverName/ },
    { name: 'Cassandra: plaintext against TLS', overrides: { cassandra: { tls: { enabled: false, caFile: null } } }, code: 'FINNHUBD_ERR_CASSANDRA_TLS', says: /cassandra\.tls\.enabled/ },
    { name: 'Cassandra: TLS against plaintext', overrides: { cassandra: { contactPoints: [plain.cassandraHost], port: plain.cassandraPort, username: null, passwordFile: null } }, code: 'FINNHUBD_ERR_CASSANDRA_TLS', says: /cassandra\.tls\.enabled/ }
  ]
  const table = ['| case | exit | first line | time to fail |', '|---|---|---|---|']
  for (const c of cases) {
    const run = await runProcess(configFile(merge(off, c.overrides)))
    table.push(`| ${c.name} | ${String(run.code)} | ${run.first.replace(/\|/g, '\\|')} | ${(run.ms / 1000).toFixed(1)} s |`)
    t.equal(run.code, 1, `${c.name}: exit 1`)
    t.match(run.first, new RegExp(`^finnhubd: .*\\[${c.code}\\]$`), `${c.name}: ${c.code} on the first line`)
    t.match(run.first, c.says, `${c.name}: names the setting`)
    t.notMatch(run.out, /\n\s+at .+\(.+:\d+:\d+\)/, `${c.name}: no stack trace`)
    for (const s of [stack.kafkaPassword, stack.cassandraPassword, 'wrong-password-1234', 'wrong-password-5678']) t.notOk(run.out.includes(s), `${c.name}: no password printed`)
  }
  t.comment(`\n${table.join('\n')}`)
})
