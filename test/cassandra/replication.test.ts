// The cluster settings against the real single-node Cassandra, read back from the node:
// the keyspace's replication as system_schema.keyspaces has it (SimpleStrategy from
// replicationFactor, NetworkTopologyStrategy {datacenter1: 1} from cassandra.replication),
// a keyspace whose replication differs reported with the ALTER and the repair and left
// alone, and cassandra.consistency / readConsistency reaching the server: a level one
// node cannot meet (THREE on RF 1) is refused by Cassandra as Unavailable, which only
// happens if the level was sent; the configured default succeeds. And the readiness
// line with the node's state from the driver.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import cassandra from 'cassandra-driver'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { keyspaceReplicationOf } from '../../daemon/cassandra/migrations.js'
import { cassandraCheck, cassandraHosts, createCassandraClient } from '../../daemon/cassandra/client.js'
import { writeGap } from '../../daemon/cassandra/gaps.js'
import { storedTrades } from '../../daemon/cassandra/query.js'
import { validateConfig } from '../../daemon/config/load.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { testEndpoints } from '../fixtures/endpoints.js'

t.setTimeout(300_000)

const { cassandraHost, cassandraPort } = testEndpoints()
const simpleKs = `finnhub_repl_${randomUUID().slice(0, 8)}`
const ntsKs = `finnhub_nts_${randomUUID().slice(0, 8)}`
const configOf = (cassandraSettings: Record<string, unknown>): ReturnType<typeof validateConfig> =>
  validateConfig({ cassandra: { contactPoints: [cassandraHost], port: cassandraPort, ...cassandraSettings } })
const admin = createCassandraClient(configOf({}).cassandra)

t.before(async () => { await admin.connect() })
t.teardown(async () => {
  for (const ks of [simpleKs, ntsKs]) await admin.execute(`DROP KEYSPACE IF EXISTS ${ks}`)
  await admin.shutdown()
})

const UNAVAILABLE = cassandra.types.responseErrorCodes.unavailableException

/** The node's own Unavailable answer inside the driver's error (it wraps it in NoHostAvailableError after trying the host). */
async function unavailable (p: Promise<unknown>): Promise<{ code: number, consistencies: number, required: number, alive: number, message: string } | null> {
  try {
    await p
  } catch (err) {
    const inner = err instanceof cassandra.errors.NoHostAvailableError ? Object.values(err.innerErrors as Record<string, unknown>) : [err]
    const found = inner.find(e => e instanceof cassandra.errors.ResponseError && e.code === UNAVAILABLE)
    return (found as { code: number, consistencies: number, required: number, alive: number, message: string } | undefined) ?? null
  }
  return null
}

t.test('migrate: SimpleStrategy from replicationFactor, as the node stores it', async t => {
  const result = await runMigrate(configOf({ keyspace: simpleKs }), CQL_DIR, () => {})
  t.equal(result.replicationMatches, true)
  t.same(await keyspaceReplicationOf(admin, simpleKs), { class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '1' })
})

t.test('migrate: NetworkTopologyStrategy from cassandra.replication; a differing config is reported, not applied', async t => {
  const nts = { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 1 } }
  const first = await runMigrate(configOf({ keyspace: ntsKs, replication: nts }), CQL_DIR, () => {})
  t.equal(first.replicationMatches, true)
  const stored = { class: 'org.apache.cassandra.locator.NetworkTopologyStrategy', datacenter1: '1' }
  t.same(await keyspaceReplicationOf(admin, ntsKs), stored, 'read back from system_schema.keyspaces')

  const lines: string[] = []
  const second = await runMigrate(configOf({ keyspace: ntsKs, replication: { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 3 } } }), CQL_DIR, l => lines.push(l))
  t.equal(second.replicationMatches, false)
  const notice = lines.find(l => l.startsWith(`keyspace ${ntsKs} has replication`)) ?? ''
  t.match(notice, `ALTER KEYSPACE ${ntsKs} WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 3};`)
  t.match(notice, `nodetool repair --full ${ntsKs}`)
  t.same(await keyspaceReplicationOf(admin, ntsKs), stored, 'the keyspace was left as it was')
})

t.test('the write level reaches the node: THREE on one replica is Unavailable, LOCAL_QUORUM is written', async t => {
  const gap = { id: `test-${randomUUID()}`, reason: 'disconnected' as const, start: Date.now() - 60_000, end: Date.now(), symbols: ['AAPL'], dropped: null, openedAt: Date.now() - 60_000 }
  const three = createCassandraClient(configOf({ keyspace: simpleKs, consistency: 'THREE' }).cassandra)
  t.teardown(async () => { await three.shutdown() })
  t.match(await unavailable(writeGap(three, simpleKs, gap, 'test', Date.now())),
    { code: UNAVAILABLE, consistencies: cassandra.types.consistencies.three, required: 3, alive: 1, message: /at consistency THREE/ }, 'the daemon\'s gap write, sent at THREE')

  const quorum = createCassandraClient(configOf({ keyspace: simpleKs }).cassandra)
  t.teardown(async () => { await quorum.shutdown() })
  await writeGap(quorum, simpleKs, gap, 'test', Date.now())
  const rows = await admin.execute(`SELECT gap_id FROM ${simpleKs}.gaps WHERE gap_id = ? ALLOW FILTERING`, [gap.id], { prepare: true })
  t.equal(rows.rowLength, 1, 'written at LOCAL_QUORUM on the one replica')
})

t.test('the read level reaches the node: readConsistency THREE is Unavailable, the default reads', async t => {
  const config = configOf({ keyspace: simpleKs, readConsistency: 'THREE' }).cassandra
  const client = createCassandraClient(config)
  t.teardown(async () => { await client.shutdown() })
  const now = Date.now()
  t.match(await unavailable(storedTrades(client, config, 'AAPL', now - 60_000, 10, now)),
    { code: UNAVAILABLE, consistencies: cassandra.types.consistencies.three, required: 3, alive: 1 }, 'the query read, sent at THREE')
  t.same(await storedTrades(client, configOf({ keyspace: simpleKs }).cassandra, 'AAPL', now - 60_000, 10, now), [], 'LOCAL_QUORUM reads')
})

t.test('readiness names the node from the driver and applies the level', async t => {
  const config = configOf({}).cassandra
  const hosts = cassandraHosts(admin)
  t.equal(hosts.length, 1, 'one node')
  t.match(hosts[0], { node: `${cassandraHost}:${cassandraPort}`, up: true, state: 'UP', datacenter: 'datacenter1' })
  t.match(cassandraCheck(true, hosts, config), { ok: true, detail: 'last request succeeded; 1/1 hosts up' })
  t.match(cassandraCheck(true, hosts, configOf({ consistency: 'TWO' }).cassandra), { ok: false, detail: '1 host(s) up, TWO writes need 2' })
})
