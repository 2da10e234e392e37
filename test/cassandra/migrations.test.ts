// The pure half of migrations: reading cql/, splitting, rendering and planning.
/* eslint-disable no-template-curly-in-string -- migration templates use ${placeholders} on purpose */
import t from 'tap'
import { join } from 'node:path'
import { loadMigrations, planMigrations, renderStatement, splitStatements } from '../../daemon/cassandra/migrations.js'
import { CQL_DIR } from '../../daemon/paths.js'

const params = { keyspace: 'ks', tradesTable: 'ticks', replicationFactor: 3 }

t.test('the shipped migrations are numbered, ordered and each statement is idempotent', async t => {
  const migrations = loadMigrations(CQL_DIR)
  t.same(migrations.map(m => m.file), ['001_keyspace.cql', '002_schema_migrations.cql', '003_trades.cql', '004_candles_1m.cql', '005_candles_more.cql', '006_gaps.cql'])
  t.same(migrations.map(m => m.version), [1, 2, 3, 4, 5, 6])
  for (const m of migrations) {
    t.match(m.checksum, /^[0-9a-f]{64}$/)
    t.ok(m.statements.length > 0, `${m.file} has statements`)
    for (const s of m.statements) t.match(s, /IF NOT EXISTS/, `${m.file}: every statement can run twice`)
  }
  const trades = migrations[2]?.statements.map(s => renderStatement(s, params)).join('\n') ?? ''
  t.match(trades, /CREATE TABLE IF NOT EXISTS ks\.ticks/)
  t.match(trades, /PRIMARY KEY \(\(symbol, day\), trade_ts, trade_id\)/, 'the key of the data contract (docs/data.md)')
  const keyspace = migrations[0]?.statements.map(s => renderStatement(s, params)).join('\n') ?? ''
  t.match(keyspace, /'replication_factor': 3/)
  const gaps = migrations[5]?.statements.map(s => renderStatement(s, params)).join('\n') ?? ''
  t.match(gaps, /CREATE TABLE IF NOT EXISTS ks\.gaps/)
  t.match(gaps, /PRIMARY KEY \(\(month\), gap_id\)/, 'the gaps key of the data contract (docs/data.md)')
})

t.test('splitStatements drops comments and splits at line-ending semicolons', async t => {
  t.same(splitStatements('-- header\nCREATE A (x int); -- trailing\n\n// other\nCREATE B\n  (y int);\nCREATE C'), [
    'CREATE A (x int)',
    'CREATE B\n  (y int)',
    'CREATE C'
  ])
  t.same(splitStatements('-- only a comment\n'), [])
})

t.test('renderStatement fills known placeholders and names unknown ones', async t => {
  t.equal(renderStatement('CREATE TABLE ${keyspace}.${trades_table} rf=${replication_factor}', params), 'CREATE TABLE ks.ticks rf=3')
  t.throws(() => renderStatement('CREATE TABLE ${keyspace}.${nope}', params),
    { code: 'FINNHUBD_ERR_MIGRATION', message: /unknown placeholder \$\{nope\}.*\$\{keyspace\}/ })
})

t.test('planMigrations returns pending ones and refuses a rewritten history', async t => {
  const migrations = loadMigrations(CQL_DIR)
  const [m1, m2] = migrations
  t.same(planMigrations(migrations, []).map(m => m.version), [1, 2, 3, 4, 5, 6])
  t.same(planMigrations(migrations, [{ version: 1, checksum: m1?.checksum ?? '' }, { version: 2, checksum: m2?.checksum ?? '' }])
    .map(m => m.version), [3, 4, 5, 6])
  t.same(planMigrations(migrations, migrations.map(m => ({ version: m.version, checksum: m.checksum }))), [])
  t.throws(() => planMigrations(migrations, [{ version: 2, checksum: 'edited' }]),
    { code: 'FINNHUBD_ERR_MIGRATION', message: /002_schema_migrations\.cql was changed after it was applied.*new, higher-numbered migration/ })
  t.throws(() => planMigrations(migrations, [{ version: 99, checksum: 'x' }]),
    { code: 'FINNHUBD_ERR_MIGRATION', message: /migration 99 applied but no cql\/ file.*upgrade/ })
})

t.test('loadMigrations rejects badly named, duplicate and missing folders', async t => {
  const bad = t.testdir({ '001_ok.cql': 'CREATE A;', 'two.cql': 'CREATE B;', 'README.md': 'ignored' })
  t.throws(() => loadMigrations(bad), { code: 'FINNHUBD_ERR_MIGRATION', message: /two\.cql does not match NNN_name\.cql/ })
  const dup = t.testdir({ '001_a.cql': 'CREATE A;', '001_b.cql': 'CREATE B;' })
  t.throws(() => loadMigrations(dup), { code: 'FINNHUBD_ERR_MIGRATION', message: /001_a\.cql and 001_b\.cql share version 1/ })
  t.throws(() => loadMigrations(join(bad, 'nope')), { code: 'FINNHUBD_ERR_MIGRATION', message: /cannot read the migrations folder/ })
  const ok = t.testdir({ '010_b.cql': 'CREATE B;', '002_a.cql': 'CREATE A;', 'notes.txt': 'x' })
  t.same(loadMigrations(ok).map(m => m.version), [2, 10])
})
