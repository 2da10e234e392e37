// The cluster settings read back from a real 3-broker / 3-node cluster (npm run
// test:cluster): a topic finnhubd creates with kafka.topicReplicationFactor 3 has three
// replicas, all in sync, and min.insync.replicas=2 (its default for RF 3); the keyspace
// migrate creates with NetworkTopologyStrategy {datacenter1: 3} is stored so; the
// driver sees the three hosts up through several contact points and /readyz's rule
// holds; a write at QUORUM and at ALL succeeds and a read at QUORUM sees it.
// The cluster comes from FINNHUBD_CLUSTER_KAFKA (host:port,…), FINNHUBD_CLUSTER_CASSANDRA
// (host,…) and FINNHUBD_CLUSTER_CASSANDRA_PORT when set (a cluster of your own); else
// from the local stack's cluster (clusterEndpoints), brought up first when it does not
// run (`npm run stack -- up --cluster`; it is left running). Set but invalid fails.
import t from 'tap'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { keyspaceReplicationOf } from '../../daemon/cassandra/migrations.js'
import { cassandraCheck, cassandraHosts, connectCassandra } from '../../daemon/cassandra/client.js'
import { writeGap, storedGaps } from '../../daemon/cassandra/gaps.js'
import { validateConfig } from '../../daemon/config/load.js'
import { ensureTopics, topicMetadata } from '../../daemon/kafka/admin.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { findJava } from '../../tools/stack/java.js'
import { clusterEndpoints } from '../../tools/stack/nodes.js'
import { stackOptions } from '../../tools/stack/options.js'
import { selectComponents, startNode, stopNode, up } from '../../tools/stack/stack.js'
import { uniqueName } from '../fixtures/kafka.js'

t.setTimeout(600_000)

const own = ['FINNHUBD_CLUSTER_KAFKA', 'FINNHUBD_CLUSTER_CASSANDRA', 'FINNHUBD_CLUSTER_CASSANDRA_PORT'].some(k => (process.env[k] ?? '') !== '')
const local = stackOptions(process.env, { cluster: true })
const localEndpoints = clusterEndpoints(local)
const kafkaList = own ? process.env['FINNHUBD_CLUSTER_KAFKA'] ?? '' : localEndpoints.kafkaBootstrap
const cassandraList = own ? process.env['FINNHUBD_CLUSTER_CASSANDRA'] ?? '' : localEndpoints.cassandraContactPoints.join(',')
const cassandraPort = own ? Number(process.env['FINNHUBD_CLUSTER_CASSANDRA_PORT'] ?? '') : localEndpoints.cassandraPort
const missing = [
  ...(kafkaList === '' ? ['FINNHUBD_CLUSTER_KAFKA (the brokers, host:port,host:port,…)'] : []),
  ...(cassandraList === '' ? ['FINNHUBD_CLUSTER_CASSANDRA (the Cassandra hosts, host,host,…)'] : []),
  ...(!Number.isInteger(cassandraPort) || cassandraPort < 1 || cassandraPort > 65535 ? ['FINNHUBD_CLUSTER_CASSANDRA_PORT (their native port)'] : [])
]

if (missing.length > 0) {
  t.fail(`no cluster to test against: ${missing.join(', ')} unset or invalid. Set all three for a cluster of your own, ` +
    'or none for the local stack\'s cluster (npm run stack -- up --cluster), then run npm run test:cluster')
} else {
  if (!own) {
    t.before(async () => { await up(local, process.env, selectComponents([], local), line => { t.comment(line) }) })
  }
  const bootstrapServers = kafkaList.split(',').map(s => s.trim()).filter(s => s !== '')
  const contactPoints = cassandraList.split(',').map(s => s.trim()).filter(s => s !== '')
  const keyspace = `finnhub_cluster_${randomUUID().slice(0, 8)}`
  const configOf = (raw: Record<string, unknown> = {}): ReturnType<typeof validateConfig> => validateConfig({
    kafka: { bootstrapServers, topicReplicationFactor: 3 },
    cassandra: { contactPoints, port: cassandraPort, keyspace, replication: { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 3 } }, ...raw }
  })

  t.test('a created topic has 3 replicas, all in sync, and min.insync.replicas=2', async t => {
    const topic = uniqueName('finnhubd.cluster-test')
    const kafka = { ...configOf().kafka, topic, deadLetterTopic: `${topic}.dlq` }
    const lines: string[] = []
    await ensureTopics(kafka, [topic], msg => lines.push(msg))
    t.same(lines, [], 'nothing to warn about')
    const [md] = await topicMetadata(kafka, [topic])
    t.equal(md?.partitions.length, 3)
    for (const p of md?.partitions ?? []) {
      t.equal(p.replicas.length, 3, `partition ${p.id}: three replicas`)
      t.equal(p.isrs.length, 3, `partition ${p.id}: all in sync`)
    }
    const o = stackOptions(process.env)
    const { stdout } = await promisify(execFile)(findJava(process.env, o.javaHome).bin, [
      '-cp', `${join(o.cacheDir, 'lib', 'kafka')}/*`, 'kafka.admin.ConfigCommand',
      '--bootstrap-server', bootstrapServers.join(','), '--entity-type', 'topics', '--entity-name', topic, '--describe'
    ], { timeout: 120_000 })
    t.match(stdout, /\bmin\.insync\.replicas=2\b/, 'read back from the brokers')
  })

  t.test('migrate stores NetworkTopologyStrategy {datacenter1: 3}; three hosts up; QUORUM and ALL writes succeed', async t => {
    const config = configOf()
    await runMigrate(config, CQL_DIR, () => {})
    const client = await connectCassandra(config.cassandra)
    t.teardown(async () => {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`)
      await client.shutdown()
    })
    t.same(await keyspaceReplicationOf(client, keyspace), { class: 'org.apache.cassandra.locator.NetworkTopologyStrategy', datacenter1: '3' })
    const hosts = cassandraHosts(client)
    t.equal(hosts.length, 3, 'the driver knows the three nodes')
    t.ok(hosts.every(h => h.up && h.datacenter === 'datacenter1'), 'all up, in datacenter1')
    t.match(cassandraCheck(true, hosts, config.cassandra), { ok: true, detail: 'last request succeeded; 3/3 hosts up' })
    t.match(cassandraCheck(true, hosts.map((h, i) => i === 0 ? h : { ...h, up: false, state: 'DOWN' }), config.cassandra),
      { ok: false, detail: '1 host(s) up, LOCAL_QUORUM writes need 2' }, 'one of three up cannot take LOCAL_QUORUM writes')

    for (const level of ['QUORUM', 'ALL'] as const) {
      const c = await connectCassandra(configOf({ consistency: level }).cassandra)
      const gap = { id: `cluster-${level}-${randomUUID()}`, reason: 'disconnected' as const, start: Date.now() - 60_000, end: Date.now(), symbols: ['AAPL'], dropped: null, openedAt: Date.now() - 60_000 }
      await writeGap(c, keyspace, gap, 'cluster-test', Date.now())
      await c.shutdown()
      const read = configOf({ consistency: 'QUORUM' }).cassandra
      const stored = await storedGaps(client, read, gap.start, Date.now() + 1000, null, 1000)
      t.ok(stored.some(g => g.id === gap.id), `written at ${level}, read back at QUORUM`)
    }
  })

  // Only on the local stack's cluster: it stops one of its nodes (a cluster of your own is left alone).
  if (!own) {
    t.test('with one Cassandra node down a QUORUM write still succeeds and a QUORUM read sees it', async t => {
      const config = configOf({ consistency: 'QUORUM' })
      await runMigrate(config, CQL_DIR, () => {})
      const client = await connectCassandra(config.cassandra)
      t.teardown(async () => {
        await startNode(local, 'cassandra-3', process.env, line => { t.comment(line) })
        await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {})
        await client.shutdown()
      })
      await stopNode(local, 'cassandra-3', line => { t.comment(line) })
      const gap = { id: `cluster-one-down-${randomUUID()}`, reason: 'disconnected' as const, start: Date.now() - 60_000, end: Date.now(), symbols: ['AAPL'], dropped: null, openedAt: Date.now() - 60_000 }
      await writeGap(client, keyspace, gap, 'cluster-test', Date.now())
      const stored = await storedGaps(client, config.cassandra, gap.start, Date.now() + 1000, null, 1000)
      t.ok(stored.some(g => g.id === gap.id), 'written at QUORUM with cassandra-3 stopped, read back at QUORUM')
      t.match(cassandraCheck(true, cassandraHosts(client), config.cassandra), { ok: true }, '/readyz\'s rule: 2 of 3 up still takes QUORUM writes')
    })
  }
}
