// The cluster stack for real (`npm run test:cluster`, not in `npm test`: six JVMs and
// minutes of start-up): `up --cluster`, then, asked of the cluster itself, three brokers
// registered, a topic made with replication factor 3 has three replicas and three in
// sync on every partition, every Cassandra node sees the other two NORMAL and a write
// at QUORUM reads back from each node; a second `up` only finds it running; `down`
// leaves no process.
import t from 'tap'
import cassandra from 'cassandra-driver'
import Kafka from 'node-rdkafka'
import { runStackCli } from '../../tools/stack/cli.js'
import { gossipNormal } from '../../tools/stack/components.js'
import { cassandraNodes, clusterEndpoints } from '../../tools/stack/nodes.js'
import { stackOptions } from '../../tools/stack/options.js'
import { isAlive } from '../../tools/stack/proc.js'
import { runningPid, selectComponents, status } from '../../tools/stack/stack.js'

t.setTimeout(30 * 60_000)

const env = { ...process.env, FINNHUBD_STACK_CLUSTER: '1' }
const options = stackOptions(env)
const endpoints = clusterEndpoints(options)

async function cli (args: string[]): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await runStackCli(args, { env, out: l => { out.push(l); t.comment(l) }, err: l => err.push(l) })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

interface PartitionView { id: number, leader: number, replicas: number[], isrs: number[] }

async function metadataFrom (bootstrap: string, topic?: string): Promise<{ brokers: number[], partitions: PartitionView[] }> {
  const producer = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'client.id': 'finnhubd-cluster-test', log_level: 0 })
  await new Promise<void>((resolve, reject) => { producer.connect({ timeout: 10_000 }, e => { e ? reject(e) : resolve() }) })
  try {
    const md = await new Promise<Kafka.Metadata>((resolve, reject) => {
      producer.getMetadata({ timeout: 10_000, ...(topic !== undefined ? { topic } : {}) }, (e, m) => { e ? reject(e) : resolve(m) })
    })
    const partitions = md.topics.find(x => x.name === topic)?.partitions ?? []
    return { brokers: md.brokers.map(b => b.id).sort(), partitions: partitions.map(p => ({ id: p.id, leader: p.leader, replicas: [...p.replicas].sort(), isrs: [...p.isrs].sort() })) }
  } finally {
    await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })
  }
}

t.test('up --cluster: three Kafka brokers in one quorum, three Cassandra nodes in one ring', async t => {
  const first = await cli(['up', '--cluster'])
  t.equal(first.code, 0, first.err)
  t.match(first.out, /kafka: quorum leader [123] \(epoch \d+\), voters 1, 2, 3$/m, 'the quorum has a leader, every voter caught up')
  t.match(first.out, /^cassandra-3: (sees cassandra-1 and cassandra-2|already running)/m)

  const again = await cli(['up', '--cluster'])
  t.equal(again.code, 0, again.err)
  t.equal(again.out.match(/already running/g)?.length, 6, 'the second up starts nothing')
  t.notMatch(again.out, /starting \(pid/)

  const rows = await status(options, selectComponents([], options))
  t.same(rows.map(r => [r.name, r.running, r.ready]), [
    ['kafka-1', true, true], ['kafka-2', true, true], ['kafka-3', true, true],
    ['cassandra-1', true, true], ['cassandra-2', true, true], ['cassandra-3', true, true]
  ])
  t.equal(new Set(rows.map(r => r.pid)).size, 6, 'six processes')
  const st = await cli(['status', '--cluster'])
  t.equal(st.code, 0)
  t.match(st.out, /^cassandra-2 +running +pid \d+ +127\.0\.0\.2:\d+ +ready +rss \d+ MiB$/m)
  t.match(st.out, /^total +6 of 6 running, 6 ready, rss \d+ MiB$/m)

  // Kafka: every node lists the three brokers; a topic with replication factor 3 has three replicas, all in sync.
  for (const node of endpoints.nodes.filter(n => n.kind === 'kafka')) {
    t.same((await metadataFrom(node.endpoint)).brokers, [1, 2, 3], `${node.name} lists brokers 1, 2 and 3`)
  }
  const topic = `cluster-test-${process.pid}`
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': endpoints.kafkaBootstrap, 'client.id': 'finnhubd-cluster-test' })
  t.teardown(() => { admin.disconnect() })
  await new Promise<void>((resolve, reject) => {
    admin.createTopic({ topic, num_partitions: 3, replication_factor: 3 }, 30_000, e => { e ? reject(e) : resolve() })
  })
  let partitions: PartitionView[] = []
  for (let i = 0; i < 60; i++) {
    partitions = (await metadataFrom(endpoints.kafkaBootstrap, topic)).partitions
    if (partitions.length === 3 && partitions.every(p => p.isrs.length === 3)) break
    await new Promise(resolve => setTimeout(resolve, 1000))
  }
  t.equal(partitions.length, 3)
  for (const p of partitions) {
    t.same(p.replicas, [1, 2, 3], `partition ${p.id}: three replicas`)
    t.same(p.isrs, [1, 2, 3], `partition ${p.id}: all three in sync`)
  }
  await new Promise<void>(resolve => { admin.deleteTopic(topic, 30_000, () => resolve()) })

  // Cassandra: every node's gossip has all three NORMAL; each lists the other two as peers.
  for (const node of cassandraNodes(options)) {
    t.same((await gossipNormal(options, node))?.sort(), ['127.0.0.1', '127.0.0.2', '127.0.0.3'], `${node.name}'s gossip: all three NORMAL`)
  }
  const client = new cassandra.Client({
    // Addresses, and the port apart: the driver reaches the peers it discovers on protocolOptions.port (default 9042).
    contactPoints: endpoints.cassandraContactPoints,
    protocolOptions: { port: endpoints.cassandraPort },
    localDataCenter: 'datacenter1',
    socketOptions: { readTimeout: 30_000 }
  })
  t.teardown(async () => { await client.shutdown() })
  await client.connect()
  const hosts = client.hosts.values()
  t.same(hosts.map(h => h.address).sort(), endpoints.cassandraContactPoints.map(a => `${a}:${endpoints.cassandraPort}`))
  t.ok(hosts.every(h => h.isUp()), 'the driver sees all three up')
  const ks = `cluster_test_${process.pid}`
  await client.execute(`CREATE KEYSPACE ${ks} WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 3}`)
  t.teardown(async () => { await client.execute(`DROP KEYSPACE IF EXISTS ${ks}`).catch(() => {}) })
  await client.execute(`CREATE TABLE ${ks}.t (k int PRIMARY KEY, v text)`)
  // Every node on the new schema before a write that needs all three.
  let agreed = false
  for (let i = 0; i < 60 && !agreed; i++) {
    // In the driver (lib/metadata), not in its typings.
    agreed = await (client.metadata as unknown as { checkSchemaAgreement: () => Promise<boolean> }).checkSchemaAgreement()
    if (!agreed) await new Promise(resolve => setTimeout(resolve, 1000))
  }
  t.ok(agreed, 'the three nodes agree on the schema')
  await client.execute(`INSERT INTO ${ks}.t (k, v) VALUES (1, 'three')`, [], { consistency: cassandra.types.consistencies.all })
  for (const node of cassandraNodes(options)) {
    const host = client.hosts.get(`${node.address}:${node.port}`)
    t.ok(host, `the driver knows ${node.name}`)
    const peers = await client.execute('SELECT peer FROM system.peers_v2', [], { host } as cassandra.QueryOptions)
    t.same(peers.rows.map(r => String(r['peer'])).sort(), cassandraNodes(options).filter(n => n.address !== node.address).map(n => n.address), `${node.name} knows the other two`)
  }
  const read = await client.execute(`SELECT v FROM ${ks}.t WHERE k = 1`, [], { consistency: cassandra.types.consistencies.all })
  t.equal(read.first()?.['v'], 'three', 'read back from all three at ALL')
})

t.test('down --cluster stops every node and leaves no process', async t => {
  const pids = selectComponents([], options).map(c => runningPid(c, options))
  t.ok(pids.every(p => p !== null), 'all six ran')
  const down = await cli(['down', '--cluster'])
  t.equal(down.code, 0, down.err)
  t.equal(down.out.match(/: stopped \(pid \d+\)/g)?.length, 6)
  t.same(pids.filter(p => p !== null && isAlive(p)), [], 'no process left')
  const after = await cli(['status', '--cluster'])
  t.equal(after.code, 1, 'status: not ready')
  t.match(after.out, /^total +0 of 6 running, 0 ready, rss 0 MiB$/m)
})
