// The cluster settings, pure: cassandra.consistency / readConsistency / replication and
// kafka.topicMinInsyncReplicas parsed and refused, the load warnings (levels the
// replicas cannot meet, write and read levels that may miss each other), the keyspace's
// replication map rendered into CQL (hostile data-center names refused by name), the
// readiness rule, and the topic replication warnings from fabricated metadata.
import t from 'tap'
/* eslint-disable no-template-curly-in-string -- migration templates use ${placeholders} on purpose */
import fc from 'fast-check'
import { loadConfig, replicationWarnings, validateConfig } from '../../daemon/config/load.js'
import { topicMinInsyncReplicas } from '../../daemon/config/schema.js'
import { consistencyWarnings, effectiveReadConsistency, keyspaceReplication, replicasNeeded, writesPossible } from '../../daemon/core/consistency.js'
import { renderReplication, renderStatement, replicationNotice, sameReplication, storedReplication } from '../../daemon/cassandra/migrations.js'
import { cassandraCheck, driverConsistency, readConsistency } from '../../daemon/cassandra/client.js'
import { topicReplicationWarnings } from '../../daemon/kafka/admin.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import cassandra from 'cassandra-driver'
import { holds, runs } from '../fixtures/fuzz.js'

const levels = cassandra.types.consistencies

t.test('defaults: LOCAL_QUORUM both ways, SimpleStrategy from replicationFactor, min.insync one below the topic replication', async t => {
  const c = validateConfig({})
  t.equal(c.cassandra.consistency, 'LOCAL_QUORUM')
  t.equal(c.cassandra.readConsistency, null)
  t.equal(c.cassandra.replication, null)
  t.same(keyspaceReplication(c.cassandra), { class: 'SimpleStrategy', replicationFactor: 1 })
  t.equal(c.kafka.topicMinInsyncReplicas, null)
  t.equal(topicMinInsyncReplicas(c.kafka), 1, 'RF 1: 1')
  t.equal(topicMinInsyncReplicas(validateConfig({ kafka: { topicReplicationFactor: 3 } }).kafka), 2, 'RF 3: 2')
  t.equal(topicMinInsyncReplicas(validateConfig({ kafka: { topicReplicationFactor: 3, topicMinInsyncReplicas: 1 } }).kafka), 1, 'explicit wins')
  t.equal(readConsistency(c.cassandra), levels.localQuorum)
  t.same(loadConfig({ env: {} }).warnings, [], 'the defaults warn about nothing')
})

t.test('the levels reach the driver by name; reads follow writes unless set; EACH_QUORUM reads as LOCAL_QUORUM', async t => {
  t.equal(driverConsistency('ONE'), levels.one)
  t.equal(driverConsistency('THREE'), levels.three)
  t.equal(driverConsistency('EACH_QUORUM'), levels.eachQuorum)
  t.equal(driverConsistency('LOCAL_ONE'), levels.localOne)
  t.equal(readConsistency({ consistency: 'QUORUM', readConsistency: null }), levels.quorum)
  t.equal(readConsistency({ consistency: 'QUORUM', readConsistency: 'ALL' }), levels.all)
  t.equal(effectiveReadConsistency('EACH_QUORUM', null), 'LOCAL_QUORUM')
})

t.test('bad values are refused with the key and what to do', async t => {
  t.throws(() => validateConfig({ cassandra: { consistency: 'SERIAL' } }), { code: 'FINNHUBD_ERR_CONFIG', message: /cassandra\.consistency/ })
  t.throws(() => validateConfig({ cassandra: { readConsistency: 'EACH_QUORUM' } }), { code: 'FINNHUBD_ERR_CONFIG', message: /cassandra\.readConsistency/ })
  t.throws(() => validateConfig({ cassandra: { replication: { class: 'NetworkTopologyStrategy', dataCenters: {} } } }),
    { message: /name at least one data center/ })
  t.throws(() => validateConfig({ cassandra: { replication: { class: 'NetworkTopologyStrategy', dataCenters: { "dc1': 1}; DROP KEYSPACE x; --": 3 } } } }),
    { message: /cassandra\.replication\.dataCenters\.dc1': 1}; DROP KEYSPACE x; --: is not a data-center name/ })
  t.throws(() => validateConfig({ cassandra: { replication: { class: 'OldNetworkTopologyStrategy', replicationFactor: 3 } } }), { message: /cassandra\.replication\.class/ })
  t.throws(() => validateConfig({ cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 10 } } }), { message: /replicationFactor/ })
  t.throws(() => validateConfig({ kafka: { topicReplicationFactor: 2, topicMinInsyncReplicas: 3 } }),
    { message: /kafka\.topicMinInsyncReplicas.*must be ≤ kafka\.topicReplicationFactor \(2\)/s })
})

t.test('warnings at load: what the replicas cannot meet, levels that may miss each other, min.insync = RF', async t => {
  const warn = (raw: unknown): string[] => replicationWarnings(validateConfig(raw))
  t.same(warn({ cassandra: { replicationFactor: 3 } }), [], 'LOCAL_QUORUM/LOCAL_QUORUM on RF 3')
  t.same(warn({ cassandra: { replicationFactor: 3, consistency: 'ALL', readConsistency: 'ONE' } }), [], 'ALL + ONE overlap')
  const oneOne = warn({ cassandra: { replicationFactor: 3, consistency: 'ONE' } })
  t.equal(oneOne.length, 1)
  t.match(oneOne[0], /cassandra\.consistency ONE and cassandra\.readConsistency ONE may not meet on one replica \(replication factor 3\): a candle rebuild could miss acknowledged rows and store wrong candles/)
  t.same(warn({ cassandra: { consistency: 'ONE' } }), [], 'ONE/ONE on RF 1 is the one replica')
  t.match(warn({ cassandra: { consistency: 'THREE' } }).join('\n'), /cassandra\.consistency THREE needs 3 replicas but the keyspace has 1 \(replication factor 1\): every such request will fail with Unavailable/)
  const nts = { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 3 } }
  t.same(warn({ cassandra: { replication: nts, localDataCenter: 'dc1' } }), [], 'LOCAL_QUORUM in dc1 both ways')
  t.same(warn({ cassandra: { replication: nts, localDataCenter: 'dc1', consistency: 'EACH_QUORUM' } }), [], 'EACH_QUORUM writes, LOCAL_QUORUM reads')
  t.match(warn({ cassandra: { replication: nts, localDataCenter: 'dc1', consistency: 'QUORUM', readConsistency: 'LOCAL_ONE' } }).join('\n'), /may not meet/)
  t.match(warn({ cassandra: { replication: nts } }).join('\n'), /cassandra\.localDataCenter datacenter1 has no replicas/)
  t.match(warn({ kafka: { topicReplicationFactor: 3, topicMinInsyncReplicas: 3 } }).join('\n'), /equals kafka\.topicReplicationFactor \(3\): with acks=all one broker down stops every write/)
  t.same(consistencyWarnings('QUORUM', 'QUORUM', { class: 'NetworkTopologyStrategy', dataCenters: { a: 2, b: 1 } }, 'a'), [], 'QUORUM over 3 replicas in two DCs')
  t.same(replicasNeeded('QUORUM', { class: 'NetworkTopologyStrategy', dataCenters: { a: 3, b: 3 } }, 'a'), { needed: 4, available: 6, local: false })
  t.same(replicasNeeded('LOCAL_QUORUM', { class: 'NetworkTopologyStrategy', dataCenters: { a: 3, b: 3 } }, 'a'), { needed: 2, available: 3, local: true })
})

t.test('the replication map is rendered into CREATE KEYSPACE; 001 keeps SimpleStrategy for replicationFactor', async t => {
  t.equal(renderReplication({ class: 'SimpleStrategy', replicationFactor: 3 }), "{'class': 'SimpleStrategy', 'replication_factor': 3}")
  t.equal(renderReplication({ class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, 'us-east_2.a': 2 } }),
    "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'us-east_2.a': 2}")
  const params = { keyspace: 'ks', tradesTable: 't', replicationFactor: 2 }
  t.equal(renderStatement('CREATE KEYSPACE ${keyspace} WITH replication = ${replication}', params),
    "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}", 'without a map: replicationFactor')
  t.equal(renderStatement('WITH replication = ${replication}', { ...params, replication: { class: 'NetworkTopologyStrategy', dataCenters: { datacenter1: 1 } } }),
    "WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1}")
  t.throws(() => renderReplication({ class: 'NetworkTopologyStrategy', dataCenters: { "x': 1, 'class": 1 } }),
    { code: 'FINNHUBD_ERR_MIGRATION', message: /data-center name "x': 1, 'class" in cassandra\.replication\.dataCenters is not allowed/ })
  t.throws(() => renderReplication({ class: 'SimpleStrategy', replicationFactor: 0 }), { message: /from 1 to 9/ })
  t.throws(() => renderReplication({ class: 'NetworkTopologyStrategy', dataCenters: {} }), { message: /is empty/ })
})

t.test('property: any data-center name is either refused by name (config and renderer) or rendered as one quoted key', async t => {
  holds(t, fc.property(fc.string({ maxLength: 80 }), fc.integer({ min: 1, max: 9 }), (name, rf) => {
    let rendered: string | null = null
    try {
      rendered = renderReplication({ class: 'NetworkTopologyStrategy', dataCenters: { [name]: rf } })
    } catch (err) {
      if (!(err instanceof FinnhubdError) || err.code !== 'FINNHUBD_ERR_MIGRATION' || !err.message.includes('is not allowed')) return false
      let configRefused = false
      try { validateConfig({ cassandra: { replication: { class: 'NetworkTopologyStrategy', dataCenters: { [name]: rf } } } }) } catch { configRefused = true }
      return configRefused
    }
    // Accepted: exactly the key and the factor, nothing that could end the string or the map.
    return rendered === `{'class': 'NetworkTopologyStrategy', '${name}': ${rf}}` && !/['{};\s\\]/.test(name)
  }), { numRuns: runs(2000) })
})

t.test('replication read back from system_schema is compared by value', async t => {
  const nts = { class: 'NetworkTopologyStrategy' as const, dataCenters: { datacenter1: 3 } }
  t.same(storedReplication(nts), { class: 'org.apache.cassandra.locator.NetworkTopologyStrategy', datacenter1: '3' })
  t.ok(sameReplication({ datacenter1: '3', class: 'org.apache.cassandra.locator.NetworkTopologyStrategy' }, storedReplication(nts)))
  t.notOk(sameReplication({ class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '1' }, storedReplication(nts)))
  const notice = replicationNotice('finnhub', { class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '1' }, nts)
  t.match(notice, "ALTER KEYSPACE finnhub WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 3};")
  t.match(notice, 'nodetool repair --full finnhub')
  t.match(notice, 'finnhubd migrate leaves it as it is')
})

t.test('readiness: writes at the level need enough hosts up (local ones for LOCAL_*)', async t => {
  const rf3 = { class: 'SimpleStrategy' as const, replicationFactor: 3 }
  t.same(writesPossible('LOCAL_QUORUM', rf3, 'dc1', { local: 2, total: 2 }), { ok: true, needed: 2, up: 2 })
  t.same(writesPossible('LOCAL_QUORUM', rf3, 'dc1', { local: 1, total: 1 }), { ok: false, needed: 2, up: 1 })
  t.same(writesPossible('ONE', rf3, 'dc1', { local: 0, total: 0 }), { ok: false, needed: 1, up: 0 }, 'nothing up')
  t.same(writesPossible('ALL', rf3, 'dc1', { local: 3, total: 3 }), { ok: true, needed: 3, up: 3 })
  const nts = { class: 'NetworkTopologyStrategy' as const, dataCenters: { dc1: 3, dc2: 3 } }
  t.same(writesPossible('LOCAL_QUORUM', nts, 'dc1', { local: 1, total: 4 }), { ok: false, needed: 2, up: 1 }, 'the other DC does not help LOCAL_QUORUM')
  t.same(writesPossible('QUORUM', nts, 'dc1', { local: 1, total: 4 }), { ok: true, needed: 4, up: 4 })

  const host = (node: string, up: boolean, dc = 'datacenter1'): { node: string, up: boolean, state: string, datacenter: string, rack: string } =>
    ({ node, up, state: up ? 'UP' : 'DOWN', datacenter: dc, rack: 'rack1' })
  const cfg = validateConfig({ cassandra: { replicationFactor: 3 } }).cassandra
  const three = [host('10.0.0.1:9042', true), host('10.0.0.2:9042', true), host('10.0.0.3:9042', false)]
  t.same(cassandraCheck(true, three, cfg), { ok: true, detail: 'last request succeeded; 2/3 hosts up', nodes: three })
  const one = [host('10.0.0.1:9042', true), host('10.0.0.2:9042', false), host('10.0.0.3:9042', false)]
  t.same(cassandraCheck(true, one, cfg), { ok: false, detail: '1 host(s) up, LOCAL_QUORUM writes need 2', nodes: one })
  t.equal(cassandraCheck(false, three, cfg).ok, false, 'a failing request is not ready either')
  t.equal(cassandraCheck(true, [host('a:9042', true)], validateConfig({}).cassandra).ok, true, 'the single node at RF 1')
})

t.test('topic warnings from metadata: replication below the configured one, and under-replicated partitions', async t => {
  const kafka = validateConfig({ kafka: { topicReplicationFactor: 3, bootstrapServers: ['k1:9092', 'k2:9092'] } }).kafka
  const part = (id: number, replicas: number[], isrs: number[]): { id: number, replicas: number[], isrs: number[] } => ({ id, replicas, isrs })
  t.same(topicReplicationWarnings(kafka, [{ name: 'ok', partitions: [part(0, [1, 2, 3], [1, 2, 3]), part(1, [2, 3, 1], [2, 3])] }]), [], 'RF 3, ISR ≥ 2')
  const low = topicReplicationWarnings(kafka, [{ name: 'old', partitions: [part(0, [1], [1]), part(1, [2], [2])] }])
  t.equal(low.length, 1)
  t.same(low[0]?.fields, { topic: 'old', replicationFactor: 1, configuredReplicationFactor: 3 })
  t.match(low[0]?.message, /Kafka topic old has replication factor 1, below kafka\.topicReplicationFactor=3/)
  t.match(low[0]?.message, 'kafka-reassign-partitions.sh --bootstrap-server k1:9092,k2:9092')
  const under = topicReplicationWarnings(kafka, [{ name: 'lagging', partitions: [part(0, [1, 2, 3], [1]), part(1, [1, 2, 3], [1, 2])] }])
  t.equal(under.length, 1)
  t.same(under[0]?.fields, { topic: 'lagging', underReplicatedPartitions: [0], minInsyncReplicas: 2 })
  t.match(under[0]?.message, 'under-replicated')
  t.same(topicReplicationWarnings(kafka, [{ name: 'empty', partitions: [] }]), [], 'no partitions known: nothing to say')
})
