// The components of the local stack, one per node (tools/stack/nodes.ts): how each
// is configured, started and probed. The single-node stacks run one Kafka KRaft node
// (broker + controller in one process, storage formatted once, replication factors 1,
// no group-rebalance delay) and one Cassandra node with a capped heap and fast-start
// settings, open or behind a password (FINNHUBD_CASSANDRA_AUTH). The cluster stack
// runs three of each from the same builders: a three-voter quorum with replication
// factor 3 and min ISR 2, and a three-node ring with one token per node. With `secure` (tools/stack/secure.ts)
// Kafka's client listeners are SASL_SSL (SCRAM-SHA-512) and Cassandra asks for TLS
// and a password. Both are ready only when a real client request succeeds, never
// after a sleep.

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import cassandra from 'cassandra-driver'
import Kafka from 'node-rdkafka'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { cassandraNodes, kafkaNodes, kafkaVoters, type CassandraNode, type KafkaNode, type NodeKind } from './nodes.js'
import { STACK_CASSANDRA_CREDENTIALS, stackOptions, type StackOptions } from './options.js'
import {
  cassandraSecureYaml, ensureSecureFiles, kafkaSecureListenerLines, readSecret, SECURE_FLAG, secureDataMarker, secureKafkaClientConfig,
  secureStackFiles, scramFormatArgs, writePrivate, type ServerSecrets
} from './secure.js'

/** `kafka` or `cassandra` (a single-node stack's node, or every node of that kind in the cluster), or a cluster node: `kafka-2`, `cassandra-3`. */
export type ComponentName = string

export interface Component {
  /** The node's name: `kafka`, `cassandra`, or in the cluster `kafka-1` … `cassandra-3`. */
  name: ComponentName
  kind: NodeKind
  /** Where its pom's jars go in the cache (lib/<kind>), shared by every node of the kind. */
  pom: string
  home: (o: StackOptions) => string
  /** Text in the process's command line that proves it is this stack's (its config path). */
  marker: (o: StackOptions) => string
  ports: (o: StackOptions) => Array<{ port: number, host: string, what: string }>
  readyTimeoutMs: (o: StackOptions) => number
  /** Writes config files and does one-time setup (Kafka's storage format). */
  prepare: (o: StackOptions, java: string, libDir: string) => void
  args: (o: StackOptions, libDir: string) => string[]
  /** This node answers a real client request on its own endpoint. */
  probe: (o: StackOptions) => Promise<boolean>
  /**
   * Cluster only: this node and the running `peers` of its kind see each other
   * (Kafka: its metadata lists their broker ids; Cassandra: each one's gossip has all
   * of them NORMAL). Peers are given by name.
   */
  joined?: (o: StackOptions, peers: readonly Component[]) => Promise<boolean>
  /**
   * Cluster Kafka: the nodes must be launched together (a node is served only once a
   * quorum of voters runs), then waited for; Cassandra's join one after another.
   */
  startsWithPeers: boolean
  /** Kafka's broker id, Cassandra's address: what a fault test maps a node by. */
  kafkaBrokerId: number | null
  address: string
  endpoint: (o: StackOptions) => string
  /** Setup that needs the running component (the secure Cassandra's login role); run by every `up`, so it must be idempotent. */
  afterReady?: (o: StackOptions, log: (line: string) => void) => Promise<void>
}

/**
 * A plain `up` never starts on a secure stack's data, nor a secure one on a plain
 * stack's (its SCRAM users, its auth setup would be missing): the two keep apart.
 */
function checkDataMode (o: StackOptions, name: string, home: string, hasData: boolean): void {
  const secureData = existsSync(secureDataMarker(home))
  if (o.secure === secureData || (o.secure && !hasData)) return
  throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
    `${home} holds the data of a ${secureData ? 'secure' : 'plain'} stack's ${name}, and this \`up\` is ${o.secure ? 'secure' : 'plain'}: ` +
    `run ${secureData ? '`npm run stack -- up --secure`' : '`npm run stack -- up` (without --secure)'} for it, ` +
    `or \`npm run stack -- wipe${secureData ? ' --secure' : ''}\` to delete it, or give this stack its own folder (FINNHUBD_STACK_DIR / FINNHUBD_STACK_SECURE_DIR)`)
}

// ---- Kafka ----------------------------------------------------------------------

/**
 * server.properties of one node (node 1 when not given); the secure stack's (o.secure)
 * needs its passwords. The cluster's nodes keep the combined roles of the single node:
 * on a 2-core machine three more JVMs as dedicated controllers would cost ~1.5 GiB and
 * CPU for nothing; a production cluster runs its controllers apart from its brokers.
 * The quorum is static (controller.quorum.voters, KRaft version 0): the three voters
 * are known before the first start, and StorageTool formats each with them as they are.
 */
export function kafkaProperties (o: StackOptions, secrets?: ServerSecrets, node: KafkaNode = firstOf(kafkaNodes(o))): string {
  if (o.secure && secrets === undefined) throw new FinnhubdError('FINNHUBD_ERR_STACK_START', 'the secure stack\'s server.properties needs its passwords (a bug in the stack tool)')
  // Replicated three times in the cluster, acknowledged by two (acks=all survives one node down).
  const rf = o.cluster ? 3 : 1
  const minIsr = o.cluster ? 2 : 1
  return [
    `# written by finnhubd stack: ${o.cluster ? `node ${node.id} of a three-node KRaft cluster` : 'single-node KRaft'} for local use${o.secure ? ' (secure: SASL_SSL, SCRAM-SHA-512)' : ''}`,
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${kafkaVoters(o)}`,
    ...(o.secure && secrets !== undefined
      ? kafkaSecureListenerLines(o, secrets)
      : [
          // VIA_PROXY: for the fault suite's TCP proxy (tools/chaos): it listens on
          // kafkaProxyPort, which this listener advertises, and forwards to kafkaProxiedPort.
          `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort},VIA_PROXY://127.0.0.1:${node.proxiedPort}`,
          `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port},VIA_PROXY://127.0.0.1:${node.proxyPort}`,
          'inter.broker.listener.name=PLAINTEXT',
          'controller.listener.names=CONTROLLER',
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,VIA_PROXY:PLAINTEXT'
        ]),
    `log.dirs=${join(node.home, 'data')}`,
    'num.partitions=3',
    'auto.create.topics.enable=true',
    ...(o.cluster ? [`default.replication.factor=${rf}`, `min.insync.replicas=${minIsr}`] : []),
    `offsets.topic.replication.factor=${rf}`,
    'offsets.topic.num.partitions=6',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=3',
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=24',
    'log.segment.bytes=268435456',
    ''
  ].join('\n')
}

const KAFKA_LOG4J2 = `Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.log.LogCleaner
        level: WARN
      - name: org.apache.kafka.storage.internals.log
        level: WARN
`

/** A KRaft cluster id: 16 random bytes, base64url without padding, not starting with '-'. */
export function clusterId (): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

function firstOf<T> (nodes: readonly T[]): T {
  const node = nodes[0]
  if (node === undefined) throw new FinnhubdError('FINNHUBD_ERR_STACK_START', 'the stack has no node of this kind (a bug in the stack tool)')
  return node
}

/**
 * The cluster's one KRaft cluster id, made once and kept beside the nodes' folders:
 * every node is formatted with it (a node formatted with another would never join).
 */
function sharedClusterId (o: StackOptions): string {
  const file = join(o.dir, 'kafka-cluster-id')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  const id = clusterId()
  mkdirSync(o.dir, { recursive: true })
  writeFileSync(file, `${id}\n`)
  return id
}

/** Broker ids in a metadata answer from one node (empty when it does not answer). */
async function kafkaBrokerIds (o: StackOptions, port: number): Promise<number[] | null> {
  // A metadata request through a real client: the broker is up, registered with the
  // active controller and serving (the secure one: over TLS, logged in as the daemon's user).
  let security: Record<string, string> = {}
  if (o.secure) {
    try {
      security = secureKafkaClientConfig(o)
    } catch {
      return null
    }
  }
  const producer = new Kafka.Producer({ 'metadata.broker.list': `127.0.0.1:${port}`, ...security, 'client.id': 'finnhubd-stack-probe', log_level: 0 })
  try {
    await new Promise<void>((resolve, reject) => {
      producer.connect({ timeout: 3000 }, err => { err ? reject(err) : resolve() })
    })
    return await new Promise<number[]>((resolve, reject) => {
      producer.getMetadata({ timeout: 3000 }, (err, md) => { err ? reject(err) : resolve(md.brokers.map(b => b.id)) })
    })
  } catch {
    return null
  } finally {
    if (producer.isConnected()) await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })
  }
}

function kafkaComponent (node: KafkaNode, pick: (o: StackOptions) => KafkaNode): Component {
  return {
    name: node.name,
    kind: 'kafka',
    pom: join(PROJECT_ROOT, 'tools', 'stack', 'kafka', 'pom.xml'),
    home: o => pick(o).home,
    marker: o => join(pick(o).home, 'server.properties'),
    ports: o => {
      const n = pick(o)
      const kafka = o.cluster ? `Kafka (${n.name})` : 'Kafka'
      return [
        { port: n.port, host: '127.0.0.1', what: `${kafka} client listener` },
        { port: n.controllerPort, host: '127.0.0.1', what: `${kafka} controller listener` },
        { port: n.proxiedPort, host: '127.0.0.1', what: `${kafka} listener behind the fault-test proxy` }
      ]
    },
    readyTimeoutMs: o => o.kafkaReadyTimeoutMs,
    prepare: (o, java, libDir) => { prepareKafka(o, pick(o), java, libDir) },
    args: (o, libDir) => kafkaArgs(o, pick(o), libDir),
    async probe (o) {
      const n = pick(o)
      const ids = await kafkaBrokerIds(o, n.port)
      // Listed itself: registered with, and unfenced by, an active controller.
      return ids !== null && ids.includes(n.id)
    },
    async joined (o, peers) {
      const ids = await kafkaBrokerIds(o, pick(o).port)
      return ids !== null && peers.every(p => p.kafkaBrokerId !== null && ids.includes(p.kafkaBrokerId))
    },
    startsWithPeers: true,
    kafkaBrokerId: node.id,
    address: '127.0.0.1',
    endpoint: o => `127.0.0.1:${pick(o).port}`
  }
}

function prepareKafka (o: StackOptions, node: KafkaNode, java: string, libDir: string): void {
  const home = node.home
  mkdirSync(join(home, 'data'), { recursive: true })
  const formatted = existsSync(join(home, 'data', 'meta.properties'))
  checkDataMode(o, node.name, home, formatted)
  const setup = o.secure ? ensureSecureFiles(o) : null
  if (setup === null) writeFileSync(join(home, 'server.properties'), kafkaProperties(o, undefined, node))
  // It holds the keystore's and the admin's passwords.
  else writePrivate(join(home, 'server.properties'), kafkaProperties(o, setup.secrets, node))
  writeFileSync(join(home, 'log4j2.yaml'), KAFKA_LOG4J2)
  if (formatted) {
    if (setup?.kafkaPasswordsCreated === true) {
      throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
        `Kafka's storage in ${join(home, 'data')} was formatted with SCRAM users whose passwords are gone (${setup.files.dir} was new); ` +
        '`npm run stack -- wipe --secure kafka` and `up --secure` again to make them anew')
    }
    return
  }
  // The secure stack's SCRAM users are created with the storage (KRaft keeps them in its metadata).
  const scram = setup === null ? [] : scramFormatArgs(setup.secrets.kafkaAdminPassword, readSecret(setup.files.kafkaPasswordFile))
  try {
    execFileSync(java, ['-cp', `${libDir}/*`, `-Dlog4j2.configurationFile=${join(home, 'log4j2.yaml')}`, 'kafka.tools.StorageTool',
      'format', '-c', join(home, 'server.properties'), '-t', o.cluster ? sharedClusterId(o) : clusterId(), '--ignore-formatted', ...scram],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })
    if (setup !== null) writeFileSync(secureDataMarker(home), 'formatted for the secure stack\n')
  } catch (err) {
    const e = err as { stdout?: Buffer, stderr?: Buffer, message: string }
    throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
      `formatting Kafka's storage in ${join(home, 'data')} failed; \`npm run stack -- wipe${o.cluster ? ' --cluster' : ''}\` starts it afresh. Kafka said:\n` +
      `${String(e.stdout ?? '')}${String(e.stderr ?? e.message)}`.trim().split('\n').slice(-15).join('\n'))
  }
}

function kafkaArgs (o: StackOptions, node: KafkaNode, libDir: string): string[] {
  const home = node.home
  return [
    `-Xms${o.kafkaHeapMb}m`, `-Xmx${o.kafkaHeapMb}m`,
    '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(home, 'log4j2.yaml')}`,
    `-Dkafka.logs.dir=${home}`,
    ...(o.secure ? [SECURE_FLAG] : []),
    '-cp', `${libDir}/*`,
    'kafka.Kafka', join(home, 'server.properties')
  ]
}

// ---- Cassandra -------------------------------------------------------------------

/**
 * cassandra.yaml of one node (node 1 when not given); the secure stack's (o.secure)
 * needs the keystore's password. One token per node, the ring split evenly
 * (nodes.ts), so each of the cluster's nodes owns a third. SimpleSnitch: its one data
 * centre is "datacenter1", rack "rack1", what the daemon's NetworkTopologyStrategy
 * keyspace names, with no rackdc file to write. The cluster's nodes join without
 * bootstrapping (auto_bootstrap false): right only because a new cluster is empty
 * and there is nothing to stream; a node added to a cluster with data must bootstrap.
 */
export function cassandraYaml (o: StackOptions, secrets?: ServerSecrets, node: CassandraNode = firstOf(cassandraNodes(o))): string {
  const home = node.home
  if (o.secure && secrets === undefined) throw new FinnhubdError('FINNHUBD_ERR_STACK_START', 'the secure stack\'s cassandra.yaml needs its passwords (a bug in the stack tool)')
  return `# written by finnhubd stack: ${o.cluster ? `node ${node.index} of a three-node cluster` : 'single node'} for local use
cluster_name: finnhubd-local
num_tokens: 1
initial_token: ${node.token}
${o.cluster ? 'auto_bootstrap: false\n' : ''}partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${node.seed}"
listen_address: ${node.address}
rpc_address: ${node.address}
storage_port: ${node.storagePort}
native_transport_port: ${node.port}
start_native_transport: true
data_file_directories:
  - ${join(home, 'data', 'data')}
commitlog_directory: ${join(home, 'data', 'commitlog')}
saved_caches_directory: ${join(home, 'data', 'saved_caches')}
hints_directory: ${join(home, 'data', 'hints')}
cdc_raw_directory: ${join(home, 'data', 'cdc_raw')}
${o.cassandraCommitlogSync === 'group' ? 'commitlog_sync: group\ncommitlog_sync_group_window: 10ms' : 'commitlog_sync: periodic\ncommitlog_sync_period: 10000ms'}
commitlog_segment_size: 32MiB
auto_snapshot: false
memtable_allocation_type: offheap_objects
gc_log_threshold: 50ms
concurrent_reads: 16
concurrent_writes: 32
batch_size_warn_threshold: 5KiB
batch_size_fail_threshold: 50KiB
unlogged_batch_across_partitions_warn_threshold: 10
authenticator: ${o.cassandraAuth === 'password' ? 'PasswordAuthenticator' : 'AllowAllAuthenticator'}
authorizer: AllowAllAuthorizer
${o.secure && secrets !== undefined ? cassandraSecureYaml(o, secrets) : ''}`
}

const CASSANDRA_LOGBACK = `<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.datastax" level="WARN"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`

/** In a running Cassandra's command line when it was started without fsync. */
export const SKIP_SYNC_FLAG = '-Dcassandra.skip_sync=true'

/**
 * With password auth: Cassandra creates its default superuser at once instead of
 * 10 s after start, so the node is ready as soon as that login works. Passed only in
 * that mode, it also tells `up` and `status` how a running node was started.
 */
export const PASSWORD_AUTH_FLAG = '-Dcassandra.superuser_setup_delay_ms=0'

// Java 17 module flags from Cassandra's conf/jvm17-server.options.
const JAVA17_FLAGS = [
  '-Djdk.attach.allowAttachSelf=true',
  ...['java.base/jdk.internal.misc', 'java.management.rmi/com.sun.jmx.remote.internal.rmi', 'java.management/com.sun.jmx.remote.security',
    'java.rmi/sun.rmi.registry', 'java.rmi/sun.rmi.server', 'java.sql/java.sql', 'java.base/java.lang.ref', 'jdk.unsupported/sun.misc']
    .map(m => `--add-exports=${m}=ALL-UNNAMED`),
  ...['java.base/java.lang.module', 'java.base/jdk.internal.loader', 'java.base/jdk.internal.ref', 'java.base/jdk.internal.reflect',
    'java.base/jdk.internal.math', 'java.base/jdk.internal.module', 'java.base/jdk.internal.util.jar', 'jdk.management/com.sun.management.internal',
    'java.base/sun.nio.ch', 'java.base/java.io', 'java.base/java.lang.reflect', 'java.base/java.lang', 'java.base/java.util', 'java.base/java.nio']
    .map(m => `--add-opens=${m}=ALL-UNNAMED`),
  '-Dio.netty.tryReflectionSetAccessible=true'
]

function cassandraComponent (node: CassandraNode, pick: (o: StackOptions) => CassandraNode): Component {
  return {
    name: node.name,
    kind: 'cassandra',
    pom: join(PROJECT_ROOT, 'tools', 'stack', 'cassandra', 'pom.xml'),
    home: o => pick(o).home,
    marker: o => join(pick(o).home, 'cassandra.yaml'),
    ports: o => {
      const n = pick(o)
      const cassandra = o.cluster ? `Cassandra (${n.name})` : 'Cassandra'
      return [
        { port: n.port, host: n.address, what: `${cassandra} CQL port` },
        { port: n.storagePort, host: n.address, what: `${cassandra} storage port` }
      ]
    },
    readyTimeoutMs: o => o.cassandraReadyTimeoutMs,
    prepare: o => { prepareCassandra(o, pick(o)) },
    args: (o, libDir) => cassandraArgs(o, pick(o), libDir),
    probe: async o => await cassandraProbe(o, pick(o)),
    joined: async (o, peers) => await cassandraJoined(o, pick(o), peers),
    startsWithPeers: false,
    kafkaBrokerId: null,
    address: node.address,
    endpoint: o => `${pick(o).address}:${pick(o).port}`,
    async afterReady (o, log) {
      if (o.secure) await ensureCassandraRole(o, log)
    }
  }
}

function prepareCassandra (o: StackOptions, node: CassandraNode): void {
  const home = node.home
  mkdirSync(join(home, 'data'), { recursive: true })
  mkdirSync(join(home, 'triggers'), { recursive: true })
  checkDataMode(o, node.name, home, existsSync(join(home, 'data', 'commitlog')))
  if (!o.secure) writeFileSync(join(home, 'cassandra.yaml'), cassandraYaml(o, undefined, node))
  else {
    const setup = ensureSecureFiles(o)
    // It holds the keystore's password.
    writePrivate(join(home, 'cassandra.yaml'), cassandraYaml(o, setup.secrets, node))
    writeFileSync(secureDataMarker(home), 'used by the secure stack\n')
  }
  writeFileSync(join(home, 'logback.xml'), CASSANDRA_LOGBACK)
}

function cassandraArgs (o: StackOptions, node: CassandraNode, libDir: string): string[] {
  const home = node.home
  const jamm = readdirSync(libDir).find(f => /^jamm-.*\.jar$/.test(f))
  return [
    // A fixed heap (the default would size itself from the machine's RAM). No -Xmn:
    // under G1 a fixed young generation defeats the pause-time goal, which is why
    // cassandra-env.sh applies HEAP_NEWSIZE only to CMS. Cassandra mlockall()s itself
    // when allowed (root), so the whole heap counts in RSS from the start.
    `-Xms${o.cassandraHeapMb}m`, `-Xmx${o.cassandraHeapMb}m`, '-Xss256k',
    // Out of memory, a node may go on with corrupt state: dump, then exit. A 20 ms
    // pause goal, not Cassandra's default 300: on 2 cores the default let eden grow to
    // ~430 MiB and young collections paused every request for 200–420 ms (its
    // GCInspector lines), the periodic stall in the write path's p99.
    '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:+HeapDumpOnOutOfMemoryError', `-XX:HeapDumpPath=${home}`, '-XX:+ExitOnOutOfMemoryError',
    '-Djava.net.preferIPv4Stack=true',
    ...JAVA17_FLAGS,
    ...(jamm !== undefined ? [`-javaagent:${join(libDir, jamm)}`] : []),
    `-Dcassandra.config=file://${join(home, 'cassandra.yaml')}`,
    `-Dcassandra.storagedir=${join(home, 'data')}`,
    `-Dcassandra.logdir=${home}`,
    `-Dcassandra.triggers_dir=${join(home, 'triggers')}`,
    `-Dlogback.configurationFile=${join(home, 'logback.xml')}`,
    '-Dcassandra-foreground=yes',
    // No wait for gossip to settle, a 1 s ring delay: a node learns the ring from its
    // seed at once on loopback, and the cluster's nodes start one after another, each
    // only once the ones before it see it (stack.ts), so no join races another.
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=1000',
    `-Dcassandra.initial_token=${node.token}`,
    '-Dcassandra.native.epoll.enabled=true',
    ...(o.fastUnsafe ? [SKIP_SYNC_FLAG] : []),
    ...(o.cassandraAuth === 'password' ? [PASSWORD_AUTH_FLAG] : []),
    ...(o.secure ? [SECURE_FLAG] : []),
    '-cp', `${libDir}/*`,
    'org.apache.cassandra.service.CassandraDaemon'
  ]
}

/** A probe-sized client of one node only (its address; the driver is kept from the others). */
function nodeClient (o: StackOptions, node: CassandraNode, extra: Partial<cassandra.ClientOptions>): cassandra.Client {
  const endpoint = `${node.address}:${node.port}`
  return new cassandra.Client({
    contactPoints: [endpoint],
    localDataCenter: 'datacenter1',
    policies: { loadBalancing: new cassandra.policies.loadBalancing.AllowListPolicy(new cassandra.policies.loadBalancing.RoundRobinPolicy(), [endpoint]) },
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
    // No connection pools before the first query: a connect that fails half-way
    // (Cassandra still starting) would otherwise leave a pool behind that
    // shutdown() does not see, reconnecting for minutes and holding the process.
    pooling: { warmup: false },
    ...extra
  })
}

async function cassandraProbe (o: StackOptions, node: CassandraNode): Promise<boolean> {
  let sslOptions: { ca: Buffer[], rejectUnauthorized: true } | undefined
  if (o.secure) {
    try {
      // The CA only: the certificate names 127.0.0.1, which Node checks without a server name.
      sslOptions = { ca: [readFileSync(secureStackFiles(o).caFile)], rejectUnauthorized: true }
    } catch {
      return false
    }
  }
  const client = nodeClient(o, node, {
    // Always offered, whatever the options say: the driver answers only when the
    // server asks (AllowAllAuthenticator never does), so one probe reads a node
    // started in either mode as ready, and `up` never stops it for the mode.
    authProvider: new cassandra.auth.PlainTextAuthProvider(STACK_CASSANDRA_CREDENTIALS.username, STACK_CASSANDRA_CREDENTIALS.password),
    ...(sslOptions !== undefined ? { sslOptions } : {})
  })
  try {
    const rs = await client.execute('SELECT bootstrapped FROM system.local')
    return rs.first()?.['bootstrapped'] === 'COMPLETED'
  } catch {
    return false
  } finally {
    await client.shutdown().catch(() => {})
  }
}

/**
 * What `nodetool status` would call UN, without JMX (the stack runs none): every
 * one of `node` and its running peers answers CQL on its own address, and each
 * one's gossip (system_views.gossip_info) lists all of them NORMAL with their CQL
 * ready. A node is Up in that sense; the failure detector's own verdict is not in CQL.
 */
async function cassandraJoined (o: StackOptions, node: CassandraNode, peers: readonly Component[]): Promise<boolean> {
  const all = cassandraNodes(o)
  const want = [node.address, ...peers.map(p => p.address)]
  for (const address of want) {
    const n = all.find(x => x.address === address)
    if (n === undefined) return false
    const seen = await gossipNormal(o, n)
    if (seen === null || !want.every(a => seen.includes(a))) return false
  }
  return true
}

/** The addresses one node's gossip holds as NORMAL; null when it does not answer. */
export async function gossipNormal (o: StackOptions, node: CassandraNode): Promise<string[] | null> {
  const client = nodeClient(o, node, {
    authProvider: new cassandra.auth.PlainTextAuthProvider(STACK_CASSANDRA_CREDENTIALS.username, STACK_CASSANDRA_CREDENTIALS.password)
  })
  try {
    // Cassandra 5.0 gossips the status with the storage port (status_with_port); `status` is the pre-4.0 key.
    const rs = await client.execute('SELECT address, status, status_with_port, rpc_ready FROM system_views.gossip_info')
    return rs.rows
      .filter(r => String(r['status_with_port'] ?? r['status']).startsWith('NORMAL') && String(r['rpc_ready']) === 'true')
      .map(r => String(r['address']))
  } catch {
    return null
  } finally {
    await client.shutdown().catch(() => {})
  }
}

/** A probe-sized client of the secure Cassandra, over TLS, trusting the stack's CA. */
function secureCassandraClient (o: StackOptions, username: string, password: string): cassandra.Client {
  return new cassandra.Client({
    contactPoints: ['127.0.0.1'],
    protocolOptions: { port: o.cassandraPort },
    localDataCenter: 'datacenter1',
    authProvider: new cassandra.auth.PlainTextAuthProvider(username, password),
    sslOptions: { ca: [readFileSync(secureStackFiles(o).caFile)], rejectUnauthorized: true },
    socketOptions: { connectTimeout: 5000, readTimeout: 20_000 },
    pooling: { warmup: false }
  })
}

async function canLogIn (o: StackOptions, username: string, password: string): Promise<boolean> {
  const client = secureCassandraClient(o, username, password)
  try {
    await client.execute('SELECT release_version FROM system.local')
    return true
  } catch {
    return false
  } finally {
    await client.shutdown().catch(() => {})
  }
}

/**
 * The secure stack's login role for the daemon, made (idempotently) as the default
 * superuser over TLS, with the password in its file. A role from an earlier run that
 * does not take the file's password (the file was made anew) gets it: the file is
 * always the truth. With AllowAllAuthorizer a login needs no grants.
 */
async function ensureCassandraRole (o: StackOptions, log: (line: string) => void): Promise<void> {
  const files = secureStackFiles(o)
  const password = readSecret(files.cassandraPasswordFile)
  const client = secureCassandraClient(o, STACK_CASSANDRA_CREDENTIALS.username, STACK_CASSANDRA_CREDENTIALS.password)
  try {
    // The password is 32 hex digits (secure.ts): nothing to escape. Roles take no bind markers.
    await client.execute(`CREATE ROLE IF NOT EXISTS ${files.cassandraUser} WITH PASSWORD = '${password}' AND LOGIN = true`)
    // Cassandra 5.0 refuses a second password change within 5 s, so only when needed.
    if (!await canLogIn(o, files.cassandraUser, password)) {
      await client.execute(`ALTER ROLE ${files.cassandraUser} WITH PASSWORD = '${password}' AND LOGIN = true`)
    }
    log(`cassandra: login role ${files.cassandraUser} ready over TLS (password in ${files.cassandraPasswordFile})`)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
      `creating the secure stack's Cassandra role ${files.cassandraUser} failed (${(err as Error).message}); ` +
      '`npm run stack -- logs --secure cassandra` shows why; `wipe --secure` and `up --secure` start afresh', { cause: err })
  } finally {
    await client.shutdown().catch(() => {})
  }
}

/** The stack's components, one per node: [kafka, cassandra], or in the cluster kafka-1 … kafka-3, cassandra-1 … cassandra-3. */
export function stackComponents (o: StackOptions): Component[] {
  return [
    ...kafkaNodes(o).map((n, i) => kafkaComponent(n, x => firstOf(kafkaNodes(x).slice(i)))),
    ...cassandraNodes(o).map((n, i) => cassandraComponent(n, x => firstOf(cassandraNodes(x).slice(i))))
  ]
}

/** The single-node stacks' two components (plain and secure: the options pick the folder and ports). */
export const COMPONENTS: readonly Component[] = stackComponents(stackOptions())
