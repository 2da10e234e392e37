// The two components of the local stack: how each is configured, started and
// probed. Kafka runs as a single KRaft node (broker + controller in one process,
// storage formatted once, replication factors 1, no group-rebalance delay);
// Cassandra as a single node with a capped heap and fast-start settings, open or
// behind a password (FINNHUBD_CASSANDRA_AUTH). With `secure` (tools/stack/secure.ts)
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
import { STACK_CASSANDRA_CREDENTIALS, type StackOptions } from './options.js'
import {
  cassandraSecureYaml, ensureSecureFiles, kafkaSecureListenerLines, readSecret, SECURE_FLAG, secureDataMarker, secureKafkaClientConfig,
  secureStackFiles, scramFormatArgs, writePrivate, type ServerSecrets
} from './secure.js'

export type ComponentName = 'kafka' | 'cassandra'

export interface Component {
  name: ComponentName
  pom: string
  home: (o: StackOptions) => string
  /** Text in the process's command line that proves it is this stack's (its config path). */
  marker: (o: StackOptions) => string
  ports: (o: StackOptions) => Array<{ port: number, what: string }>
  readyTimeoutMs: (o: StackOptions) => number
  /** Writes config files and does one-time setup (Kafka's storage format). */
  prepare: (o: StackOptions, java: string, libDir: string) => void
  args: (o: StackOptions, libDir: string) => string[]
  probe: (o: StackOptions) => Promise<boolean>
  endpoint: (o: StackOptions) => string
  /** Setup that needs the running component (the secure Cassandra's login role); run by every `up`, so it must be idempotent. */
  afterReady?: (o: StackOptions, log: (line: string) => void) => Promise<void>
}

/**
 * A plain `up` never starts on a secure stack's data, nor a secure one on a plain
 * stack's (its SCRAM users, its auth setup would be missing): the two keep apart.
 */
function checkDataMode (o: StackOptions, name: ComponentName, home: string, hasData: boolean): void {
  const secureData = existsSync(secureDataMarker(home))
  if (o.secure === secureData || (o.secure && !hasData)) return
  throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
    `${home} holds the data of a ${secureData ? 'secure' : 'plain'} stack's ${name}, and this \`up\` is ${o.secure ? 'secure' : 'plain'}: ` +
    `run ${secureData ? '`npm run stack -- up --secure`' : '`npm run stack -- up` (without --secure)'} for it, ` +
    `or \`npm run stack -- wipe${secureData ? ' --secure' : ''}\` to delete it, or give this stack its own folder (FINNHUBD_STACK_DIR / FINNHUBD_STACK_SECURE_DIR)`)
}

// ---- Kafka ----------------------------------------------------------------------

/** server.properties; the secure stack's (o.secure) needs its passwords. */
export function kafkaProperties (o: StackOptions, secrets?: ServerSecrets): string {
  const home = join(o.dir, 'kafka')
  if (o.secure && secrets === undefined) throw new FinnhubdError('FINNHUBD_ERR_STACK_START', 'the secure stack\'s server.properties needs its passwords (a bug in the stack tool)')
  return [
    `# written by finnhubd stack: single-node KRaft for local use${o.secure ? ' (secure: SASL_SSL, SCRAM-SHA-512)' : ''}`,
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${o.kafkaControllerPort}`,
    ...(o.secure && secrets !== undefined
      ? kafkaSecureListenerLines(o, secrets)
      : [
          // VIA_PROXY: for the fault suite's TCP proxy (tools/chaos): it listens on
          // kafkaProxyPort, which this listener advertises, and forwards to kafkaProxiedPort.
          `listeners=PLAINTEXT://127.0.0.1:${o.kafkaPort},CONTROLLER://127.0.0.1:${o.kafkaControllerPort},VIA_PROXY://127.0.0.1:${o.kafkaProxiedPort}`,
          `advertised.listeners=PLAINTEXT://127.0.0.1:${o.kafkaPort},VIA_PROXY://127.0.0.1:${o.kafkaProxyPort}`,
          'inter.broker.listener.name=PLAINTEXT',
          'controller.listener.names=CONTROLLER',
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,VIA_PROXY:PLAINTEXT'
        ]),
    `log.dirs=${join(home, 'data')}`,
    'num.partitions=3',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=6',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=3',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
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

const kafka: Component = {
  name: 'kafka',
  pom: join(PROJECT_ROOT, 'tools', 'stack', 'kafka', 'pom.xml'),
  home: o => join(o.dir, 'kafka'),
  marker: o => join(o.dir, 'kafka', 'server.properties'),
  ports: o => [
    { port: o.kafkaPort, what: 'Kafka client listener' },
    { port: o.kafkaControllerPort, what: 'Kafka controller listener' },
    { port: o.kafkaProxiedPort, what: 'Kafka listener behind the fault-test proxy' }
  ],
  readyTimeoutMs: o => o.kafkaReadyTimeoutMs,
  prepare (o, java, libDir) {
    const home = join(o.dir, 'kafka')
    mkdirSync(join(home, 'data'), { recursive: true })
    const formatted = existsSync(join(home, 'data', 'meta.properties'))
    checkDataMode(o, 'kafka', home, formatted)
    const setup = o.secure ? ensureSecureFiles(o) : null
    if (setup === null) writeFileSync(join(home, 'server.properties'), kafkaProperties(o))
    // It holds the keystore's and the admin's passwords.
    else writePrivate(join(home, 'server.properties'), kafkaProperties(o, setup.secrets))
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
        'format', '-c', join(home, 'server.properties'), '-t', clusterId(), '--ignore-formatted', ...scram],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })
      if (setup !== null) writeFileSync(secureDataMarker(home), 'formatted for the secure stack\n')
    } catch (err) {
      const e = err as { stdout?: Buffer, stderr?: Buffer, message: string }
      throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
        `formatting Kafka's storage in ${join(home, 'data')} failed; \`npm run stack -- wipe\` starts it afresh. Kafka said:\n` +
        `${String(e.stdout ?? '')}${String(e.stderr ?? e.message)}`.trim().split('\n').slice(-15).join('\n'))
    }
  },
  args (o, libDir) {
    const home = join(o.dir, 'kafka')
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
  },
  async probe (o) {
    // A metadata request through a real client: the broker is up, elected and serving
    // (the secure one: over TLS, logged in as the daemon's user).
    let security: Record<string, string> = {}
    if (o.secure) {
      try {
        security = secureKafkaClientConfig(o)
      } catch {
        return false
      }
    }
    const producer = new Kafka.Producer({ 'metadata.broker.list': `127.0.0.1:${o.kafkaPort}`, ...security, 'client.id': 'finnhubd-stack-probe', log_level: 0 })
    try {
      await new Promise<void>((resolve, reject) => {
        producer.connect({ timeout: 3000 }, err => { err ? reject(err) : resolve() })
      })
      const brokers = await new Promise<number>((resolve, reject) => {
        producer.getMetadata({ timeout: 3000 }, (err, md) => { err ? reject(err) : resolve(md.brokers.length) })
      })
      return brokers > 0
    } catch {
      return false
    } finally {
      if (producer.isConnected()) await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })
    }
  },
  endpoint: o => `127.0.0.1:${o.kafkaPort}`
}

// ---- Cassandra -------------------------------------------------------------------

/** cassandra.yaml; the secure stack's (o.secure) needs the keystore's password. */
export function cassandraYaml (o: StackOptions, secrets?: ServerSecrets): string {
  const home = join(o.dir, 'cassandra')
  if (o.secure && secrets === undefined) throw new FinnhubdError('FINNHUBD_ERR_STACK_START', 'the secure stack\'s cassandra.yaml needs its passwords (a bug in the stack tool)')
  return `# written by finnhubd stack: single node for local use
cluster_name: finnhubd-local
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:${o.cassandraStoragePort}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: ${o.cassandraStoragePort}
native_transport_port: ${o.cassandraPort}
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

const cassandraComponent: Component = {
  name: 'cassandra',
  pom: join(PROJECT_ROOT, 'tools', 'stack', 'cassandra', 'pom.xml'),
  home: o => join(o.dir, 'cassandra'),
  marker: o => join(o.dir, 'cassandra', 'cassandra.yaml'),
  ports: o => [{ port: o.cassandraPort, what: 'Cassandra CQL port' }, { port: o.cassandraStoragePort, what: 'Cassandra storage port' }],
  readyTimeoutMs: o => o.cassandraReadyTimeoutMs,
  prepare (o) {
    const home = join(o.dir, 'cassandra')
    mkdirSync(join(home, 'data'), { recursive: true })
    mkdirSync(join(home, 'triggers'), { recursive: true })
    checkDataMode(o, 'cassandra', home, existsSync(join(home, 'data', 'commitlog')))
    if (!o.secure) writeFileSync(join(home, 'cassandra.yaml'), cassandraYaml(o))
    else {
      const setup = ensureSecureFiles(o)
      // It holds the keystore's password.
      writePrivate(join(home, 'cassandra.yaml'), cassandraYaml(o, setup.secrets))
      writeFileSync(secureDataMarker(home), 'used by the secure stack\n')
    }
    writeFileSync(join(home, 'logback.xml'), CASSANDRA_LOGBACK)
  },
  args (o, libDir) {
    const home = join(o.dir, 'cassandra')
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
      '-Dcassandra.skip_wait_for_gossip_to_settle=0',
      '-Dcassandra.ring_delay_ms=1000',
      '-Dcassandra.initial_token=0',
      '-Dcassandra.native.epoll.enabled=true',
      ...(o.fastUnsafe ? [SKIP_SYNC_FLAG] : []),
      ...(o.cassandraAuth === 'password' ? [PASSWORD_AUTH_FLAG] : []),
      ...(o.secure ? [SECURE_FLAG] : []),
      '-cp', `${libDir}/*`,
      'org.apache.cassandra.service.CassandraDaemon'
    ]
  },
  async probe (o) {
    let sslOptions: { ca: Buffer[], rejectUnauthorized: true } | undefined
    if (o.secure) {
      try {
        // The CA only: the certificate names 127.0.0.1, which Node checks without a server name.
        sslOptions = { ca: [readFileSync(secureStackFiles(o).caFile)], rejectUnauthorized: true }
      } catch {
        return false
      }
    }
    const client = new cassandra.Client({
      contactPoints: ['127.0.0.1'],
      protocolOptions: { port: o.cassandraPort },
      localDataCenter: 'datacenter1',
      // Always offered, whatever the options say: the driver answers only when the
      // server asks (AllowAllAuthenticator never does), so one probe reads a node
      // started in either mode as ready, and `up` never stops it for the mode.
      authProvider: new cassandra.auth.PlainTextAuthProvider(STACK_CASSANDRA_CREDENTIALS.username, STACK_CASSANDRA_CREDENTIALS.password),
      socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
      // No connection pools before the first query: a connect that fails half-way
      // (Cassandra still starting) would otherwise leave a pool behind that
      // shutdown() does not see, reconnecting for minutes and holding the process.
      pooling: { warmup: false },
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
  },
  endpoint: o => `127.0.0.1:${o.cassandraPort}`,
  async afterReady (o, log) {
    if (o.secure) await ensureCassandraRole(o, log)
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

export const COMPONENTS: readonly Component[] = [kafka, cassandraComponent]
