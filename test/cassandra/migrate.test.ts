// The real local Cassandra: `finnhubd migrate` into a fresh keyspace, twice (same
// schema, nothing re-applied), then a trades row written and read back; an edited
// applied migration is refused.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { cpSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'
import cassandra from 'cassandra-driver'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { loadMigrations } from '../../daemon/cassandra/migrations.js'
import { createCassandraClient } from '../../daemon/cassandra/client.js'
import { loadConfig } from '../../daemon/config/load.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { main } from '../../daemon/cli.js'
import { testEndpoints } from '../fixtures/endpoints.js'

t.setTimeout(180_000)

const { cassandraHost, cassandraPort } = testEndpoints()
const keyspace = `finnhub_test_${randomUUID().slice(0, 8)}`
const env = { CASSANDRA_HOST: cassandraHost, CASSANDRA_PORT: String(cassandraPort), CASSANDRA_KEYSPACE: keyspace }
const { config } = loadConfig({ env })
const client = createCassandraClient(config.cassandra)
// Every shipped migration, whatever their number.
const versions = loadMigrations(CQL_DIR).map(m => m.version)

t.before(async () => { await client.connect() })
t.teardown(async () => {
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`)
  await client.shutdown()
})

async function schemaSnapshot (): Promise<string[]> {
  const tables = await client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true })
  const columns = await client.execute('SELECT table_name, column_name, type, kind, position, clustering_order FROM system_schema.columns WHERE keyspace_name = ?', [keyspace], { prepare: true })
  return [
    ...tables.rows.map(r => `table ${String(r['table_name'])}`),
    ...columns.rows.map(r => `${String(r['table_name'])}.${String(r['column_name'])} ${String(r['type'])} ${String(r['kind'])} ${String(r['position'])} ${String(r['clustering_order'])}`)
  ].sort()
}

t.test('migrate creates the keyspace and tables, and a second run changes nothing', async t => {
  const lines: string[] = []
  const first = await runMigrate(config, CQL_DIR, l => lines.push(l))
  t.same(first.applied, versions)
  t.match(lines.join('\n'), new RegExp(`applying migration 001_keyspace\\.cql[\\s\\S]*applied ${versions.length} migration\\(s\\)`))
  const before = await schemaSnapshot()
  t.ok(before.includes('table trades') && before.includes('table candles_1m') && before.includes('table schema_migrations'), 'all tables exist')
  t.ok(before.includes('trades.symbol text partition_key 0 none'), 'symbol is the first partition key column')
  t.ok(before.includes('trades.day date partition_key 1 none'), 'day is the second partition key column')
  t.ok(before.includes('trades.trade_ts timestamp clustering 0 desc'), 'trade_ts clusters newest first')
  t.ok(before.includes('trades.trade_id uuid clustering 1 asc'), 'trade_id is part of the key')

  const second = await runMigrate(config, CQL_DIR, () => {})
  t.same(second.applied, [], 'nothing is applied twice')
  t.same(second.alreadyApplied, versions)
  t.same(await schemaSnapshot(), before, 'the schema is identical after the second run')
  const recorded = await client.execute(`SELECT version, name, checksum FROM ${keyspace}.schema_migrations`)
  t.same(recorded.rows.map(r => r['version'] as number).sort((a, b) => a - b), versions, 'each version is recorded once')
})

t.test('a trades row is written with a prepared statement and read back', async t => {
  const tradeId = cassandra.types.Uuid.random()
  const day = cassandra.types.LocalDate.fromDate(new Date(Date.UTC(2023, 10, 14)))
  const tradeTs = new Date(1700000000123)
  await client.execute(
    `INSERT INTO ${keyspace}.trades (symbol, day, trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ['AAPL', day, tradeTs, tradeId, 187.12, 100, ['1', '12'], new Date(1700000000130), new Date(1700000000140)],
    { prepare: true })
  const rs = await client.execute(
    `SELECT * FROM ${keyspace}.trades WHERE symbol = ? AND day = ?`, ['AAPL', day], { prepare: true })
  t.equal(rs.rowLength, 1)
  const row = rs.first()
  t.equal(row['symbol'], 'AAPL')
  t.equal((row['trade_ts'] as Date).getTime(), 1700000000123)
  t.equal(String(row['trade_id']), String(tradeId))
  t.equal(row['price'], 187.12)
  t.equal(row['volume'], 100)
  t.same(row['conditions'], ['1', '12'])
  t.equal((row['process_ts'] as Date).getTime(), 1700000000140)
})

t.test('an applied migration that was edited afterwards is refused', async t => {
  const dir = t.testdir({})
  cpSync(CQL_DIR, dir, { recursive: true })
  appendFileSync(join(dir, '003_trades.cql'), '\n-- an edit after the fact\n')
  await t.rejects(runMigrate(config, dir, () => {}), { code: 'FINNHUBD_ERR_MIGRATION', message: /003_trades\.cql was changed after it was applied/ })
})

t.test('`finnhubd migrate` through the CLI reports an up-to-date schema', async t => {
  const out: string[] = []
  const code = await main(['migrate'], { env, out: l => out.push(l), err: l => out.push(l) })
  t.equal(code, 0)
  t.match(out.join('\n'), `schema is up to date (${versions.length} migrations applied before)`)
  t.match(out.join('\n'), /table options match the config \(7 tables/, 'and the retention step has nothing to change')
})

t.test('an unreachable Cassandra is a clear error, not a stack trace', async t => {
  const out: string[] = []
  const code = await main(['migrate'], {
    env: { ...env, CASSANDRA_HOST: '127.0.0.1', CASSANDRA_PORT: '1' },
    out: l => out.push(l),
    err: l => out.push(l)
  })
  t.equal(code, 1)
  t.match(out.join('\n'), /cannot reach Cassandra at 127\.0\.0\.1:1 .*npm run stack -- up.*\[FINNHUBD_ERR_CASSANDRA_UNREACHABLE\]/)
})

// Regression (fault suite): after Cassandra came back from a kill -9 the daemon took
// 18 s more to be ready, waiting out the driver's reconnection backoff (ceiling 10 min).
t.test('the driver reconnects with backoff capped at cassandra.reconnectMaxDelayMs', async t => {
  const { config } = loadConfig({ env: {} })
  t.equal(config.cassandra.reconnectMaxDelayMs, 2000)
  const client = createCassandraClient({ ...config.cassandra, reconnectMaxDelayMs: 1500 })
  // The driver keeps its resolved options on the client (not in its typings).
  const { policies } = (client as unknown as { options: cassandra.ClientOptions }).options
  const policy = policies?.reconnection as cassandra.policies.reconnection.ExponentialReconnectionPolicy & { maxDelay: number, baseDelay: number }
  t.equal(policy.maxDelay, 1500)
  t.equal(policy.baseDelay, 500)
  t.ok(policies?.loadBalancing !== undefined && policies.retry !== undefined, 'the other policies keep their defaults')
  await client.shutdown()
})
