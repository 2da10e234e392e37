// The cluster stack's options, nodes and generated configs, without starting anything:
// node ids, the voters, seeds, addresses, tokens, every port distinct, and the env
// parsing under arbitrary input. The cluster itself runs in cluster.test.ts.
import t from 'tap'
import fc from 'fast-check'
import { spawn } from 'node:child_process'
import { cassandraYaml, kafkaProperties, stackComponents } from '../../tools/stack/components.js'
import { cassandraNodes, clusterEndpoints, evenTokens, kafkaNodes, kafkaVoters } from '../../tools/stack/nodes.js'
import { CLUSTER_DEFAULT_PORTS, CLUSTER_PORT_STEP, stackOptions } from '../../tools/stack/options.js'
import { launchState, sleep } from '../../tools/stack/proc.js'
import { parseQuorum } from '../../tools/stack/quorum.js'
import { selectComponents } from '../../tools/stack/stack.js'

t.test('options: --cluster has its own folder, ports and heaps, and shares the jar cache', async t => {
  const o = stackOptions({ FINNHUBD_STACK_DIR: '/s/.stack' }, { cluster: true })
  t.equal(o.cluster, true)
  t.equal(o.dir, '/s/.stack-cluster')
  t.equal(o.cacheDir, '/s/.stack', 'the plain stack\'s jars')
  t.same([o.kafkaPort, o.kafkaControllerPort, o.kafkaProxiedPort, o.kafkaProxyPort, o.cassandraPort, o.cassandraStoragePort], [39092, 39093, 39094, 39095, 39042, 37000])
  t.same(CLUSTER_DEFAULT_PORTS, { kafkaPort: 39092, kafkaControllerPort: 39093, kafkaProxiedPort: 39094, kafkaProxyPort: 39095, cassandraPort: 39042, cassandraStoragePort: 37000 })
  t.same([o.kafkaHeapMb, o.cassandraHeapMb], [512, 768])
  t.equal(stackOptions({ FINNHUBD_STACK_CLUSTER: '1' }).cluster, true, 'FINNHUBD_STACK_CLUSTER=1 is --cluster')
  t.equal(stackOptions({ FINNHUBD_STACK_CLUSTER: '0' }).cluster, false)
  t.equal(stackOptions({}).cluster, false, 'single node unless asked')
  t.equal(stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_STACK_CLUSTER_DIR: '/c' }).dir, '/c')
  t.equal(stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_STACK_CACHE_DIR: '/jars' }).cacheDir, '/jars')
  t.equal(stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_KAFKA_HEAP_MB: '700' }).kafkaHeapMb, 700, 'the heap variables still move it')
  t.equal(stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_KAFKA_PORT: '45000' }).kafkaPort, 45000)
  t.throws(() => stackOptions({ FINNHUBD_STACK_CLUSTER: 'yes' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_STACK_CLUSTER=yes must be 1 or 0/ })
  t.throws(() => stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_STACK_SECURE: '1' }), { code: 'FINNHUBD_ERR_USAGE', message: /cluster stack has no secure mode yet.*up --cluster.*up --secure/ })
  t.throws(() => stackOptions({}, { cluster: true, secure: true }), { code: 'FINNHUBD_ERR_USAGE' })
  t.throws(() => stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_KAFKA_PORT: '65500' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_KAFKA_PORT=65500 is not a whole number from 1 to 65335/ },
    'node 3 would listen beyond 65535')
  t.equal(stackOptions({ FINNHUBD_KAFKA_PORT: '65500' }).kafkaPort, 65500, 'the single node may use it')
  // Node 2's client port would be the Cassandra port.
  t.throws(() => stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_KAFKA_PORT: '38942' }), { code: 'FINNHUBD_ERR_USAGE', message: /ports clash at 39042/ })
  t.throws(() => stackOptions({ FINNHUBD_STACK_CLUSTER: '1', FINNHUBD_KAFKA_CONTROLLER_PORT: '39192' }), { code: 'FINNHUBD_ERR_USAGE', message: /ports clash at 39192/ })
})

t.test('options: any FINNHUBD_STACK_CLUSTER value is read or refused by name', async t => {
  fc.assert(fc.property(fc.string({ maxLength: 12 }), raw => {
    try {
      const o = stackOptions({ FINNHUBD_STACK_CLUSTER: raw })
      return ['', '0', 'false', '1', 'true'].includes(raw) && o.cluster === ['1', 'true'].includes(raw)
    } catch (err) {
      const e = err as { code?: string, message: string }
      return e.code === 'FINNHUBD_ERR_USAGE' && e.message.includes('FINNHUBD_STACK_CLUSTER=') && !['', '0', 'false', '1', 'true'].includes(raw)
    }
  }), { numRuns: 300 })
})

t.test('options: any cluster ports either give every node distinct ports in range, or a usage error', async t => {
  const port = fc.oneof(fc.integer({ min: -10, max: 70_000 }).map(String), fc.string({ maxLength: 6 }))
  fc.assert(fc.property(fc.tuple(port, port, port, port, port, port), ports => {
    const env = {
      FINNHUBD_STACK_CLUSTER: '1',
      FINNHUBD_KAFKA_PORT: ports[0],
      FINNHUBD_KAFKA_CONTROLLER_PORT: ports[1],
      FINNHUBD_KAFKA_PROXIED_PORT: ports[2],
      FINNHUBD_KAFKA_PROXY_PORT: ports[3],
      FINNHUBD_CASSANDRA_PORT: ports[4],
      FINNHUBD_CASSANDRA_STORAGE_PORT: ports[5]
    }
    let o
    try {
      o = stackOptions(env)
    } catch (err) {
      return (err as { code?: string }).code === 'FINNHUBD_ERR_USAGE'
    }
    const all = [...kafkaNodes(o).flatMap(n => [n.port, n.controllerPort, n.proxiedPort, n.proxyPort]), o.cassandraPort, o.cassandraStoragePort]
    return new Set(all).size === all.length && all.every(p => Number.isInteger(p) && p >= 1 && p <= 65535)
  }), { numRuns: 500 })
})

t.test('nodes: three of each kind with their own names, folders, ids, ports, addresses and tokens', async t => {
  const o = stackOptions({}, { cluster: true, dir: '/c' })
  const kafka = kafkaNodes(o)
  t.same(kafka.map(n => [n.name, n.id, n.home, n.port, n.controllerPort, n.proxiedPort, n.proxyPort]), [
    ['kafka-1', 1, '/c/kafka-1', 39092, 39093, 39094, 39095],
    ['kafka-2', 2, '/c/kafka-2', 39192, 39193, 39194, 39195],
    ['kafka-3', 3, '/c/kafka-3', 39292, 39293, 39294, 39295]
  ])
  t.equal(CLUSTER_PORT_STEP, 100)
  t.equal(kafkaVoters(o), '1@127.0.0.1:39093,2@127.0.0.1:39193,3@127.0.0.1:39293')
  const cassandra = cassandraNodes(o)
  t.same(cassandra.map(n => [n.name, n.address, n.home, n.port, n.storagePort, n.token, n.seed]), [
    ['cassandra-1', '127.0.0.1', '/c/cassandra-1', 39042, 37000, '-9223372036854775808', '127.0.0.1:37000'],
    ['cassandra-2', '127.0.0.2', '/c/cassandra-2', 39042, 37000, '-3074457345618258603', '127.0.0.1:37000'],
    ['cassandra-3', '127.0.0.3', '/c/cassandra-3', 39042, 37000, '3074457345618258602', '127.0.0.1:37000']
  ])
  t.same(evenTokens(1), ['-9223372036854775808'])
  t.same(evenTokens(2), ['-9223372036854775808', '0'])
  const single = stackOptions({}, { dir: '/s' })
  t.same(kafkaNodes(single).map(n => [n.name, n.id, n.home, n.port]), [['kafka', 1, '/s/kafka', 19092]], 'the single node keeps its name and folder')
  t.same(cassandraNodes(single).map(n => [n.name, n.address, n.home, n.token]), [['cassandra', '127.0.0.1', '/s/cassandra', '0']], 'and its token')
  t.same(clusterEndpoints(o), {
    kafkaBootstrap: '127.0.0.1:39092,127.0.0.1:39192,127.0.0.1:39292',
    cassandraContactPoints: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
    cassandraPort: 39042,
    nodes: [
      { name: 'kafka-1', kind: 'kafka', endpoint: '127.0.0.1:39092', kafkaBrokerId: 1, address: '127.0.0.1' },
      { name: 'kafka-2', kind: 'kafka', endpoint: '127.0.0.1:39192', kafkaBrokerId: 2, address: '127.0.0.1' },
      { name: 'kafka-3', kind: 'kafka', endpoint: '127.0.0.1:39292', kafkaBrokerId: 3, address: '127.0.0.1' },
      { name: 'cassandra-1', kind: 'cassandra', endpoint: '127.0.0.1:39042', kafkaBrokerId: null, address: '127.0.0.1' },
      { name: 'cassandra-2', kind: 'cassandra', endpoint: '127.0.0.2:39042', kafkaBrokerId: null, address: '127.0.0.2' },
      { name: 'cassandra-3', kind: 'cassandra', endpoint: '127.0.0.3:39042', kafkaBrokerId: null, address: '127.0.0.3' }
    ]
  })
})

t.test('Kafka: each node\'s server.properties has its id, its listeners, the three voters and replication 3 / min ISR 2', async t => {
  const o = stackOptions({}, { cluster: true, dir: '/c' })
  const props = kafkaNodes(o).map(n => kafkaProperties(o, undefined, n))
  for (const [i, p] of props.entries()) {
    const base = 39092 + i * 100
    t.match(p, new RegExp(`^node\\.id=${i + 1}$`, 'm'))
    t.match(p, /^process\.roles=broker,controller$/m, 'combined roles (see the comment on kafkaProperties)')
    t.match(p, /^controller\.quorum\.voters=1@127\.0\.0\.1:39093,2@127\.0\.0\.1:39193,3@127\.0\.0\.1:39293$/m)
    t.match(p, new RegExp(`^listeners=PLAINTEXT://127\\.0\\.0\\.1:${base},CONTROLLER://127\\.0\\.0\\.1:${base + 1},VIA_PROXY://127\\.0\\.0\\.1:${base + 2}$`, 'm'))
    t.match(p, new RegExp(`^advertised\\.listeners=PLAINTEXT://127\\.0\\.0\\.1:${base},VIA_PROXY://127\\.0\\.0\\.1:${base + 3}$`, 'm'))
    t.match(p, new RegExp(`^log\\.dirs=/c/kafka-${i + 1}/data$`, 'm'))
    for (const line of ['default.replication.factor=3', 'min.insync.replicas=2', 'offsets.topic.replication.factor=3', 'transaction.state.log.replication.factor=3',
      'transaction.state.log.min.isr=2', 'share.coordinator.state.topic.replication.factor=3', 'share.coordinator.state.topic.min.isr=2']) {
      t.ok(p.split('\n').includes(line), `node ${i + 1}: ${line}`)
    }
  }
  const single = kafkaProperties(stackOptions({}, { dir: '/s' }))
  t.notMatch(single, /default\.replication\.factor|min\.insync\.replicas/, 'the single node keeps the broker defaults')
  t.match(single, /^offsets\.topic\.replication\.factor=1$/m)
  t.match(single, /^node\.id=1$/m)
})

t.test('Cassandra: each node\'s yaml listens on its own address with its token, seeded by node 1', async t => {
  const o = stackOptions({}, { cluster: true, dir: '/c', cassandraCommitlogSync: 'group' })
  for (const n of cassandraNodes(o)) {
    const y = cassandraYaml(o, undefined, n)
    t.match(y, new RegExp(`^listen_address: ${n.address.replace(/\./g, '\\.')}$`, 'm'))
    t.match(y, new RegExp(`^rpc_address: ${n.address.replace(/\./g, '\\.')}$`, 'm'))
    t.match(y, new RegExp(`^initial_token: ${n.token}$`, 'm'))
    t.match(y, /^num_tokens: 1$/m)
    t.match(y, /^ {6}- seeds: "127\.0\.0\.1:37000"$/m)
    t.match(y, /^native_transport_port: 39042$/m)
    t.match(y, /^storage_port: 37000$/m)
    t.match(y, /^auto_bootstrap: false$/m, 'an empty new cluster: nothing to stream')
    t.match(y, /^endpoint_snitch: SimpleSnitch$/m)
    t.match(y, new RegExp(`^commitlog_directory: /c/${n.name}/data/commitlog$`, 'm'))
    t.match(y, /^commitlog_sync: group$/m, 'the commit log sync stays configurable')
  }
  const single = cassandraYaml(stackOptions({}, { dir: '/s' }))
  t.notMatch(single, /auto_bootstrap/, 'the single node as before')
  t.match(single, /^initial_token: 0$/m)
  const [, second] = stackComponents(o).filter(c => c.kind === 'cassandra')
  const args = second?.args(o, t.testdir({})) ?? []
  t.ok(args.includes('-Dcassandra.initial_token=-3074457345618258603'), 'the token on the command line too')
  t.ok(args.includes('-Xmx768m'), 'the cluster\'s heap')
  t.ok(args.includes('-Dcassandra.config=file:///c/cassandra-2/cassandra.yaml'))
})

t.test('components: one per node; kafka and cassandra pick every node of the kind, a node name one', async t => {
  const o = stackOptions({}, { cluster: true, dir: '/c' })
  const all = stackComponents(o)
  t.same(all.map(c => c.name), ['kafka-1', 'kafka-2', 'kafka-3', 'cassandra-1', 'cassandra-2', 'cassandra-3'])
  t.same(all.map(c => c.marker(o)), ['/c/kafka-1/server.properties', '/c/kafka-2/server.properties', '/c/kafka-3/server.properties',
    '/c/cassandra-1/cassandra.yaml', '/c/cassandra-2/cassandra.yaml', '/c/cassandra-3/cassandra.yaml'])
  t.same(all.map(c => c.kafkaBrokerId), [1, 2, 3, null, null, null])
  t.same(all.map(c => c.endpoint(o)), ['127.0.0.1:39092', '127.0.0.1:39192', '127.0.0.1:39292', '127.0.0.1:39042', '127.0.0.2:39042', '127.0.0.3:39042'])
  const ports = all.flatMap(c => c.ports(o).map(p => `${p.host}:${p.port}`))
  t.equal(new Set(ports).size, ports.length, 'no two nodes bind the same address and port')
  t.match(all[4]?.ports(o), [{ port: 39042, host: '127.0.0.2', what: 'Cassandra (cassandra-2) CQL port' }, { port: 37000, host: '127.0.0.2' }])
  t.same(selectComponents(['kafka'], o).map(c => c.name), ['kafka-1', 'kafka-2', 'kafka-3'])
  t.same(selectComponents(['cassandra-3', 'kafka-2'], o).map(c => c.name), ['kafka-2', 'cassandra-3'], 'in start order')
  t.same(selectComponents(['cassandra', 'cassandra-1'], o).map(c => c.name), ['cassandra-1', 'cassandra-2', 'cassandra-3'], 'each once')
  t.same(selectComponents([], o).length, 6)
  t.throws(() => selectComponents(['kafka-4'], o), { code: 'FINNHUBD_ERR_USAGE', message: /unknown stack component "kafka-4"; use kafka or cassandra or one node: kafka-1, kafka-2, kafka-3, cassandra-1/ })
  t.same(selectComponents([]).map(c => c.name), ['kafka', 'cassandra'], 'without options: the single-node stack')
  t.throws(() => selectComponents(['kafka-1']), { code: 'FINNHUBD_ERR_USAGE', message: /^unknown stack component "kafka-1"; use kafka or cassandra$/ })
  t.same(all.map(c => c.startsWithPeers), [true, true, true, false, false, false], 'Kafka nodes start together, Cassandra\'s one by one')
})

t.test('the quorum answer is read, and anything else is named', async t => {
  t.same(parseQuorum('leader=2 epoch=5 hw=120\nvoter=1 leo=120\nvoter=2 leo=120\nvoter=3 leo=80\n'), {
    leaderId: 2,
    leaderEpoch: 5,
    highWatermark: 120,
    voters: [{ id: 1, logEndOffset: 120, caughtUp: true }, { id: 2, logEndOffset: 120, caughtUp: true }, { id: 3, logEndOffset: 80, caughtUp: false }]
  })
  t.match(parseQuorum('leader=-1 epoch=0 hw=-1\nvoter=1 leo=-1\n'), { leaderId: -1, voters: [{ id: 1, caughtUp: false }] }, 'no leader: nobody caught up')
  t.match(parseQuorum('Exception in thread "main" TimeoutException'), /^no quorum in the answer: Exception in thread/)
  fc.assert(fc.property(fc.string({ maxLength: 200 }), text => {
    const q = parseQuorum(text)
    return typeof q === 'string' || (Number.isInteger(q.leaderId) && q.voters.every(v => Number.isInteger(v.id)))
  }))
})

t.test('a launched process is ours once its command line names the marker, gone once it exits', async t => {
  const marker = `finnhubd-launch-marker-${process.pid}`
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' })
  const pid = child.pid as number
  let state = launchState(pid, marker)
  for (let i = 0; i < 100 && state !== 'ours'; i++) {
    t.equal(state, 'unknown', 'never taken for gone while it starts')
    await sleep(50)
    state = launchState(pid, marker)
  }
  t.equal(state, 'ours')
  t.equal(launchState(process.pid, marker), 'gone', 'a live process running something else is not ours')
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
  t.equal(launchState(pid, marker), 'gone')
})
