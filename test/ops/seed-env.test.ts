// A user of the seed keeps their .env: `finnhubd --env-file .env migrate` and
// `… run` (the compiled daemon, in a child process, as systemd runs it) take the
// seed's example file verbatim. Its token is the simulator's, its Docker host names
// are replaced from the process's environment (which wins over the file, as
// documented), the meaningless seed variables are reported, trades reach Cassandra,
// and a SIGHUP re-reads the file.
import t from 'tap'
import { appendFileSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../daemon/cli.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { PROJECT_ROOT, SCHEMAS_DIR } from '../../daemon/paths.js'
import { spawnDaemon } from '../fixtures/daemon-child.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { uniqueName, waitFor } from '../fixtures/kafka.js'
import { cassandraClient } from '../fixtures/pipeline.js'
import { validateConfig } from '../../daemon/config/load.js'

t.setTimeout(240_000)

const endpoints = testEndpoints()
const SEED_TOKEN = 'your_finnhub_api_token'

t.test('the seed\'s example .env runs the daemon with the documented mapping', async t => {
  const sim = new FinnhubSimulator({ token: SEED_TOKEN, ratePerSec: 200, seed: 5 })
  await sim.start()
  t.teardown(() => sim.close())

  const dir = t.testdir({ 'finnhubd.yaml': 'http:\n  port: 0\nkafka:\n  statsIntervalMs: 200\n  commitIntervalMs: 200\n' })
  const envFile = join(dir, '.env')
  copyFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'seed', '.env'), envFile)
  mkdirSync(join(dir, 'scripts', 'schemas'), { recursive: true })
  copyFileSync(join(SCHEMAS_DIR, 'trade.avsc'), join(dir, 'scripts', 'schemas', 'trades.avsc'))

  const id = uniqueName('seed').replace(/-/g, '_')
  // Where the seed's Docker names (broker, cassandra, dc1) are on this machine, and a
  // private topic and keyspace; everything else comes from the file.
  const env = {
    FINNHUB_URL: sim.url,
    KAFKA_BOOTSTRAP_SERVERS: endpoints.kafkaBootstrap,
    KAFKA_TOPIC: `finnhubd.${id}`,
    CASSANDRA_HOST: endpoints.cassandraHost,
    CASSANDRA_PORT: String(endpoints.cassandraPort),
    CASSANDRA_DC: 'datacenter1',
    CASSANDRA_KEYSPACE: `t_${id}`,
    FINNHUBD_STATE_DIR: join(dir, 'state')
  }
  const out: string[] = []
  const err: string[] = []
  const migrated = await main(['--env-file', envFile, 'migrate'], { env, out: l => out.push(l), err: l => err.push(l) })
  t.equal(migrated, 0, migrated === 0 ? 'migrate with the seed\'s .env exits 0' : err.join('\n'))
  t.equal(err.filter(l => l.startsWith('finnhubd: warning: ')).length, 6, 'migrate reports the six meaningless seed variables')

  const child = spawnDaemon(t, join(dir, 'finnhubd.yaml'), { PATH: process.env['PATH'] ?? '', ...env }, ['--env-file', envFile])
  t.ok(await waitFor(() => child.lines.some(l => l['msg'] === 'ingest started'), 60_000), 'the daemon started')
  const warned = child.lines.filter(l => l['level'] === 'warn' && /^(CASSANDRA|GRAFANA)_[A-Z_]+ \(from .*\.env\) is ignored/.test(String(l['msg'])))
  t.same(warned.map(l => String(l['msg']).split(' ')[0]).sort(),
    ['CASSANDRA_BROADCAST_ADDRESS', 'CASSANDRA_CLUSTER_NAME', 'CASSANDRA_LISTEN_ADDRESS', 'CASSANDRA_RACK', 'GRAFANA_ADMIN_PASSWORD', 'GRAFANA_ADMIN_USER'],
    'each meaningless seed variable is reported in the log')
  t.notMatch(JSON.stringify(child.lines), new RegExp(SEED_TOKEN), 'the token from the file is never logged')

  // Trades flow into the keyspace and table the file names (CASSANDRA_TABLE=trades).
  const config = validateConfig({ cassandra: { contactPoints: [endpoints.cassandraHost], port: endpoints.cassandraPort, keyspace: env.CASSANDRA_KEYSPACE } })
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const stored = async (): Promise<Set<string>> => {
    const rs = await client.execute(`SELECT symbol FROM ${env.CASSANDRA_KEYSPACE}.trades LIMIT 5000`)
    return new Set(rs.rows.map(r => String(r['symbol'])))
  }
  let symbols = new Set<string>()
  const until = Date.now() + 60_000
  while (Date.now() < until && symbols.size < 2) {
    symbols = await stored()
    await new Promise(resolve => setTimeout(resolve, 300))
  }
  t.same([...symbols].sort(), ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT'], 'trades of the default symbols are stored')

  // SIGHUP re-reads the env file: a symbol list added to it is applied live.
  appendFileSync(envFile, '\n# added later\nFINNHUB_SYMBOLS=AAPL,BINANCE:BTCUSDT\n')
  child.process.kill('SIGHUP')
  t.ok(await waitFor(() => child.lines.some(l => l['msg'] === 'configuration reloaded' && JSON.stringify(l['subscribed']) === '["AAPL"]'), 20_000), 'the reload subscribed AAPL')
  t.ok(await waitFor(() => JSON.stringify(sim.subscriptions()) === JSON.stringify([['AAPL', 'BINANCE:BTCUSDT']]), 10_000), 'and unsubscribed ETHUSDT on the live socket')

  // A typo in the file is refused on reload; the daemon keeps running on what it had.
  writeFileSync(envFile, 'FINNHUB_TOKNE=x\n', { flag: 'a' })
  child.process.kill('SIGHUP')
  t.ok(await waitFor(() => child.lines.some(l => l['msg'] === 'reload refused: the config file is invalid; still running on the previous configuration' &&
    /unknown variable FINNHUB_TOKNE \(did you mean FINNHUB_TOKEN\?\)/.test(String(l['reason']))), 20_000), 'a bad env file is refused on reload, with the reason')
  t.equal(await child.stop(), 0, 'SIGTERM: drained, exit 0')
})
