// Retention on the real local Cassandra: `finnhubd migrate` leaves every table of
// RETENTION_TABLES on TWCS with its window and the configured default_time_to_live, read
// back from system_schema — on a fresh keyspace, and on one made by the migrations alone
// (the options of before); a second run changes nothing, a changed setting ALTERs that
// table again, an operator's own TWCS options stay. A row written under a 2 s default TTL
// is gone after it; a row written before the TTL was set keeps none.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import cassandra from 'cassandra-driver'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { applyMigrations, loadMigrations } from '../../daemon/cassandra/migrations.js'
import { RETENTION_TABLES, reconcileTables, TWCS_CLASS } from '../../daemon/cassandra/retention.js'
import { createCassandraClient } from '../../daemon/cassandra/client.js'
import { loadConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { testEndpoints } from '../fixtures/endpoints.js'

t.setTimeout(240_000)

const { cassandraHost, cassandraPort } = testEndpoints()
const suffix = randomUUID().slice(0, 8)
const keyspaces = { fresh: `finnhub_ret_${suffix}`, old: `finnhub_ret_old_${suffix}` }
const configFor = (keyspace: string, cassandraOverrides: Partial<Config['cassandra']> = {}): Config => {
  const { config } = loadConfig({ env: { CASSANDRA_HOST: cassandraHost, CASSANDRA_PORT: String(cassandraPort), CASSANDRA_KEYSPACE: keyspace } })
  return { ...config, cassandra: { ...config.cassandra, ...cassandraOverrides } }
}
const client = createCassandraClient(configFor(keyspaces.fresh).cassandra)
const TABLES = ['trades', 'candles_1m', 'candles_5m', 'candles_15m', 'candles_1h', 'candles_1d', 'gaps']

t.before(async () => { await client.connect() })
t.teardown(async () => {
  for (const ks of Object.values(keyspaces)) await client.execute(`DROP KEYSPACE IF EXISTS ${ks}`)
  await client.shutdown()
})

interface Options { compaction: Record<string, string>, ttl: number }

async function options (keyspace: string): Promise<Map<string, Options>> {
  const rs = await client.execute('SELECT table_name, compaction, default_time_to_live FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true })
  return new Map(rs.rows.map(r => [r['table_name'] as string, { compaction: r['compaction'] as Record<string, string>, ttl: r['default_time_to_live'] as number }]))
}

/** table → "class window ttl", for the tables under retention. */
async function summary (keyspace: string): Promise<Record<string, string>> {
  const all = await options(keyspace)
  return Object.fromEntries(TABLES.map(name => {
    const o = all.get(name)
    return [name, o === undefined ? 'missing' : `${o.compaction['class'] ?? '?'} ${o.compaction['compaction_window_size'] ?? '-'} ${o.compaction['compaction_window_unit'] ?? '-'} ttl=${o.ttl}`]
  }))
}

const expected = (tradesTtl: number, candlesTtl: number, gapsTtl = candlesTtl): Record<string, string> => ({
  trades: `${TWCS_CLASS} 1 DAYS ttl=${tradesTtl}`,
  candles_1m: `${TWCS_CLASS} 1 DAYS ttl=${candlesTtl}`,
  candles_5m: `${TWCS_CLASS} 30 DAYS ttl=${candlesTtl}`,
  candles_15m: `${TWCS_CLASS} 30 DAYS ttl=${candlesTtl}`,
  candles_1h: `${TWCS_CLASS} 30 DAYS ttl=${candlesTtl}`,
  candles_1d: `${TWCS_CLASS} 365 DAYS ttl=${candlesTtl}`,
  gaps: `${TWCS_CLASS} 30 DAYS ttl=${gapsTtl}`
})

t.test('the list covers the trades table, every candle table and the gaps', async t => {
  t.equal(RETENTION_TABLES.length, TABLES.length)
})

t.test('migrate on a fresh keyspace sets TWCS and the default TTLs; a second run changes nothing', async t => {
  const config = configFor(keyspaces.fresh)
  const lines: string[] = []
  const first = await runMigrate(config, CQL_DIR, l => lines.push(l))
  t.same(await summary(keyspaces.fresh), expected(30 * 86_400, 0), 'as the defaults say: trades 30 days, candles forever')
  t.same(first.retention.altered.map(c => c.table).sort(), [...TABLES].sort())
  t.match(lines.join('\n'), /table trades: compaction SizeTieredCompactionStrategy → TimeWindowCompactionStrategy \(1 DAYS\); default_time_to_live 0 \(forever\) → 2592000 \(30 d\)/)
  t.match(lines.join('\n'), /rows already stored keep theirs/)

  const again: string[] = []
  const second = await runMigrate(config, CQL_DIR, l => again.push(l))
  t.same(second.retention.altered, [], 'nothing altered')
  t.same(second.retention.unchanged, TABLES)
  t.match(again.at(-1), /^table options match the config \(7 tables/)
})

t.test('an existing keyspace with the old options is brought in line; a changed setting ALTERs that table only', async t => {
  const config = configFor(keyspaces.old)
  const admin = createCassandraClient(config.cassandra)
  await admin.connect()
  t.teardown(() => admin.shutdown())
  // The store as the migrations alone made it: STCS, no TTL.
  await applyMigrations(admin, loadMigrations(CQL_DIR), { keyspace: keyspaces.old, tradesTable: 'trades', replicationFactor: 1 })
  const before = await options(keyspaces.old)
  t.match(before.get('trades'), { compaction: { class: /SizeTieredCompactionStrategy$/ }, ttl: 0 }, 'the old options')
  // An operator's own TWCS option (and a wrong window) on one table.
  await admin.execute(`ALTER TABLE ${keyspaces.old}.candles_1d WITH compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': '1', 'unchecked_tombstone_compaction': 'true'}`)

  const lines: string[] = []
  const first = await runMigrate(config, CQL_DIR, l => lines.push(l))
  t.same(await summary(keyspaces.old), expected(30 * 86_400, 0))
  t.equal((await options(keyspaces.old)).get('candles_1d')?.compaction['unchecked_tombstone_compaction'], 'true', 'the operator\'s TWCS option stays')
  t.match(lines.join('\n'), /table candles_1d: compaction TimeWindowCompactionStrategy \(1 DAYS\) → TimeWindowCompactionStrategy \(365 DAYS\)/)
  t.equal(first.retention.altered.length, 7)

  t.same((await runMigrate(config, CQL_DIR, () => {})).retention.altered, [], 'then nothing')

  const changed = configFor(keyspaces.old, { tradesRetentionDays: 7, candlesRetentionDays: 400 })
  const third: string[] = []
  const result = await runMigrate(changed, CQL_DIR, l => third.push(l))
  t.same(await summary(keyspaces.old), expected(7 * 86_400, 400 * 86_400))
  t.same(result.retention.altered.map(c => c.changes), [
    ['default_time_to_live 2592000 (30 d) → 604800 (7 d)'],
    ...Array.from({ length: 6 }, () => ['default_time_to_live 0 (forever) → 34560000 (400 d)'])
  ], 'only the TTLs change, compaction is left as it was')
  t.same((await runMigrate(changed, CQL_DIR, () => {})).retention.altered, [], 'and again nothing')

  // Trades kept longer than candles: the gaps follow the trades, the longer of the two.
  const longTrades = configFor(keyspaces.old, { tradesRetentionDays: 500, candlesRetentionDays: 400 })
  await runMigrate(longTrades, CQL_DIR, () => {})
  t.same(await summary(keyspaces.old), expected(500 * 86_400, 400 * 86_400, 500 * 86_400), 'the gaps table read back with the trades\' TTL')
})

t.test('a row under a 2 s default TTL is gone after it; a row written before the TTL was set keeps none', async t => {
  const ks = keyspaces.fresh
  const day = cassandra.types.LocalDate.fromDate(new Date(Date.UTC(2024, 0, 2)))
  const insert = `INSERT INTO ${ks}.trades (symbol, day, trade_ts, trade_id, price, volume) VALUES (?, ?, ?, ?, ?, ?)`
  await reconcileTables(client, ks, [{ table: 'trades', ttlSeconds: 0, windowUnit: 'DAYS', windowSize: 1 }])
  await client.execute(insert, ['OLD', day, new Date(1704196800000), cassandra.types.Uuid.random(), 1, 1], { prepare: true })

  const result = await reconcileTables(client, ks, [{ table: 'trades', ttlSeconds: 2, windowUnit: 'DAYS', windowSize: 1 }])
  t.same(result.altered.map(c => c.changes), [['default_time_to_live 0 (forever) → 2 (2 s)']])
  await client.execute(insert, ['NEW', day, new Date(1704196800000), cassandra.types.Uuid.random(), 1, 1], { prepare: true })
  const count = async (symbol: string): Promise<number> =>
    (await client.execute(`SELECT price FROM ${ks}.trades WHERE symbol = ? AND day = ?`, [symbol, day], { prepare: true })).rowLength
  const ttl = await client.execute(`SELECT TTL(price) AS ttl FROM ${ks}.trades WHERE symbol = ? AND day = ?`, ['NEW', day], { prepare: true })
  t.ok((ttl.first()['ttl'] as number) <= 2, 'the new row carries the table\'s TTL')
  t.equal(await count('NEW'), 1, 'the row is there at first')
  await sleep(3_000)
  t.equal(await count('NEW'), 0, 'and gone once its TTL passed')
  const old = await client.execute(`SELECT TTL(price) AS ttl FROM ${ks}.trades WHERE symbol = ? AND day = ?`, ['OLD', day], { prepare: true })
  t.equal(old.rowLength, 1, 'the row written before the change is still there')
  t.equal(old.first()['ttl'], null, 'with no TTL: a default TTL applies only to rows written after it')
})

t.test('a table missing from the keyspace is a clear error', async t => {
  await t.rejects(reconcileTables(client, keyspaces.fresh, [{ table: 'nope', ttlSeconds: 0, windowUnit: 'DAYS', windowSize: 1 }]),
    { code: 'FINNHUBD_ERR_MIGRATION', message: new RegExp(`table ${keyspaces.fresh}\\.nope does not exist`) })
})
