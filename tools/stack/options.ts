// Where the local stack lives and listens. Defaults stay clear of the standard
// Kafka/Cassandra ports (9092, 9042, 7000) so a user's own servers keep running
// beside it; the FINNHUBD_* variables move everything. The secure stack (--secure,
// FINNHUBD_STACK_SECURE=1) has its own folder and ports, so it runs beside the plain
// one, and shares the plain one's jar cache. The cluster stack (--cluster,
// FINNHUBD_STACK_CLUSTER=1: three Kafka nodes, three Cassandra nodes) has its own
// folder and ports too, and shares the same cache.

import { join } from 'node:path'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'

export interface StackOptions {
  /** Where the stack's data, logs, configs and pid files go. */
  dir: string
  /** Where the Maven cache and the fetched jars go (shared by stacks in other dirs). */
  cacheDir: string
  kafkaPort: number
  kafkaControllerPort: number
  /**
   * A second client listener for fault tests: clients that bootstrap through a proxy
   * on kafkaProxyPort are told to reach the broker there too (advertised), and the
   * proxy forwards to this port. Nothing listens on kafkaProxyPort unless a test does.
   */
  kafkaProxiedPort: number
  kafkaProxyPort: number
  cassandraPort: number
  cassandraStoragePort: number
  kafkaHeapMb: number
  cassandraHeapMb: number
  kafkaReadyTimeoutMs: number
  cassandraReadyTimeoutMs: number
  /** A JDK home to use instead of searching for Java 17. */
  javaHome: string | null
  /** The `mvn` executable. */
  mvn: string
  /**
   * Cassandra without fsync (-Dcassandra.skip_sync=true): faster for throwaway test
   * data, never for the bench's numbers, so it is off unless asked for.
   */
  fastUnsafe: boolean
  /**
   * Cassandra's commit log sync. `periodic` (Cassandra's default) acknowledges a write
   * before the commit log is synced, and a kill -9 loses what was written since the
   * last sync (the fault suite saw it lose acknowledged rows); `group` acknowledges
   * only after the sync, batched over a 10 ms window: acknowledged writes survive a
   * crash of the process or the machine.
   */
  cassandraCommitlogSync: 'periodic' | 'group'
  /**
   * How Cassandra checks clients. `none` lets anyone in (AllowAllAuthenticator);
   * `password` (PasswordAuthenticator) asks for a login, the default superuser
   * STACK_CASSANDRA_CREDENTIALS, so the daemon's auth path can be run locally.
   */
  cassandraAuth: 'none' | 'password'
  /**
   * The secure stack (tools/stack/secure.ts): Kafka's client listeners SASL_SSL with
   * SCRAM-SHA-512, Cassandra behind TLS and a password, certificates from a throwaway
   * CA. Implies cassandraAuth `password`.
   */
  secure: boolean
  /**
   * The cluster stack (tools/stack/nodes.ts): three Kafka nodes (a three-voter KRaft
   * quorum, replication factor 3, min ISR 2) and three Cassandra nodes on 127.0.0.1,
   * 127.0.0.2 and 127.0.0.3. Node n's Kafka ports are the options' plus (n-1)·100; the
   * Cassandra nodes share the two Cassandra ports, each on its own address.
   */
  cluster: boolean
}

type DefaultPorts = Readonly<Pick<StackOptions, 'kafkaPort' | 'kafkaControllerPort' | 'kafkaProxiedPort' | 'kafkaProxyPort' | 'cassandraPort' | 'cassandraStoragePort'>>

/** The secure stack's default ports: the plain ones' with a 2 in front (29092, 29042, …). */
export const SECURE_DEFAULT_PORTS: DefaultPorts = Object.freeze({
  kafkaPort: 29092,
  kafkaControllerPort: 29093,
  kafkaProxiedPort: 29094,
  kafkaProxyPort: 29095,
  cassandraPort: 29042,
  cassandraStoragePort: 27000
})

/** The cluster stack's default ports (node 1's; node n adds (n-1)·100 to the Kafka ones): 39092, 39042, … */
export const CLUSTER_DEFAULT_PORTS: DefaultPorts = Object.freeze({
  kafkaPort: 39092,
  kafkaControllerPort: 39093,
  kafkaProxiedPort: 39094,
  kafkaProxyPort: 39095,
  cassandraPort: 39042,
  cassandraStoragePort: 37000
})

/** How far apart the cluster's Kafka nodes' ports are: node 2 listens on kafkaPort + 100, node 3 on kafkaPort + 200. */
export const CLUSTER_PORT_STEP = 100

/** How many Kafka and how many Cassandra nodes the cluster stack runs. */
export const CLUSTER_SIZE = 3

/**
 * The cluster's default heaps: six JVMs beside the single-node stacks and the other
 * work of a 24 GiB, 2-core machine. Kafka's brokers hold little on the heap (the page
 * cache holds the log): 512 MiB each. Cassandra's memtables live off the heap
 * (offheap_objects) and the test data is small: 768 MiB each, about 1 GiB RSS.
 */
export const CLUSTER_DEFAULT_HEAP_MB = Object.freeze({ kafka: 512, cassandra: 768 })

const PLAIN_DEFAULT_PORTS: DefaultPorts = Object.freeze({
  kafkaPort: 19092,
  kafkaControllerPort: 19093,
  kafkaProxiedPort: 19094,
  kafkaProxyPort: 19095,
  cassandraPort: 19042,
  cassandraStoragePort: 17000
})

/**
 * The login of the stack's Cassandra with cassandraAuth `password`: the superuser
 * Cassandra creates on first start. Public (Cassandra's documented default, and the
 * seed project's .env values), so nothing secret is given away here.
 */
export const STACK_CASSANDRA_CREDENTIALS: Readonly<{ username: string, password: string }> = Object.freeze({ username: 'cassandra', password: 'cassandra' })

export interface Endpoints {
  kafkaBootstrap: string
  cassandraHost: string
  cassandraPort: number
  /** host:port, the form cassandra-driver's contactPoints take. */
  cassandraContactPoint: string
}

type Env = Readonly<Record<string, string | undefined>>

function intFromEnv (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', `${name}=${raw} is not a whole number from ${min} to ${max}`)
  }
  return value
}

function flagFromEnv (env: Env, name: string): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false') return false
  if (raw === '1' || raw === 'true') return true
  throw new FinnhubdError('FINNHUBD_ERR_USAGE', `${name}=${raw} must be 1 or 0 (true or false)`)
}

function commitlogSyncFromEnv (env: Env): StackOptions['cassandraCommitlogSync'] {
  const raw = env['FINNHUBD_CASSANDRA_COMMITLOG_SYNC']
  if (raw === undefined || raw === '' || raw === 'periodic') return 'periodic'
  if (raw === 'group') return 'group'
  throw new FinnhubdError('FINNHUBD_ERR_USAGE', `FINNHUBD_CASSANDRA_COMMITLOG_SYNC=${raw} must be periodic or group`)
}

function cassandraAuthFromEnv (env: Env): StackOptions['cassandraAuth'] {
  const raw = env['FINNHUBD_CASSANDRA_AUTH']
  if (raw === undefined || raw === '' || raw === 'none') return 'none'
  if (raw === 'password') return 'password'
  throw new FinnhubdError('FINNHUBD_ERR_USAGE', `FINNHUBD_CASSANDRA_AUTH=${raw} must be none or password`)
}

/**
 * The stack's options from the environment; `overrides` win. With `secure` (in the
 * overrides or FINNHUBD_STACK_SECURE=1) the defaults are the secure stack's: its
 * folder is FINNHUBD_STACK_SECURE_DIR, else the plain folder with "-secure" appended
 * (.stack-secure), its ports SECURE_DEFAULT_PORTS, and the jar cache stays the plain
 * folder's. The FINNHUBD_*_PORT variables move either stack.
 */
export function stackOptions (env: Env = {}, overrides: Partial<StackOptions> = {}): StackOptions {
  const secure = overrides.secure ?? flagFromEnv(env, 'FINNHUBD_STACK_SECURE')
  const cluster = overrides.cluster ?? flagFromEnv(env, 'FINNHUBD_STACK_CLUSTER')
  if (secure && cluster) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE',
      'the cluster stack has no secure mode yet: run `npm run stack -- up --cluster` (plain) or `npm run stack -- up --secure` (one node each), ' +
      'not both (unset FINNHUBD_STACK_SECURE or FINNHUBD_STACK_CLUSTER)')
  }
  const plainDir = env['FINNHUBD_STACK_DIR'] ?? join(PROJECT_ROOT, '.stack')
  const dir = overrides.dir ?? (secure
    ? env['FINNHUBD_STACK_SECURE_DIR'] ?? `${plainDir}-secure`
    : cluster ? env['FINNHUBD_STACK_CLUSTER_DIR'] ?? `${plainDir}-cluster` : plainDir)
  const defaults = secure ? SECURE_DEFAULT_PORTS : cluster ? CLUSTER_DEFAULT_PORTS : PLAIN_DEFAULT_PORTS
  // A cluster node n listens on the base port + (n-1)·100: the base leaves room for node 3.
  const maxPort = cluster ? 65535 - (CLUSTER_SIZE - 1) * CLUSTER_PORT_STEP : 65535
  const options: StackOptions = {
    dir,
    cacheDir: env['FINNHUBD_STACK_CACHE_DIR'] ?? (secure || cluster ? plainDir : dir),
    kafkaPort: intFromEnv(env, 'FINNHUBD_KAFKA_PORT', defaults.kafkaPort, 1, maxPort),
    kafkaControllerPort: intFromEnv(env, 'FINNHUBD_KAFKA_CONTROLLER_PORT', defaults.kafkaControllerPort, 1, maxPort),
    kafkaProxiedPort: intFromEnv(env, 'FINNHUBD_KAFKA_PROXIED_PORT', defaults.kafkaProxiedPort, 1, maxPort),
    kafkaProxyPort: intFromEnv(env, 'FINNHUBD_KAFKA_PROXY_PORT', defaults.kafkaProxyPort, 1, maxPort),
    cassandraPort: intFromEnv(env, 'FINNHUBD_CASSANDRA_PORT', defaults.cassandraPort, 1, 65535),
    cassandraStoragePort: intFromEnv(env, 'FINNHUBD_CASSANDRA_STORAGE_PORT', defaults.cassandraStoragePort, 1, 65535),
    kafkaHeapMb: intFromEnv(env, 'FINNHUBD_KAFKA_HEAP_MB', cluster ? CLUSTER_DEFAULT_HEAP_MB.kafka : 1024, 256, 65536),
    cassandraHeapMb: intFromEnv(env, 'FINNHUBD_CASSANDRA_HEAP_MB', cluster ? CLUSTER_DEFAULT_HEAP_MB.cassandra : 1024, 512, 65536),
    kafkaReadyTimeoutMs: intFromEnv(env, 'FINNHUBD_KAFKA_READY_TIMEOUT_MS', 60_000, 1000, 3_600_000),
    cassandraReadyTimeoutMs: intFromEnv(env, 'FINNHUBD_CASSANDRA_READY_TIMEOUT_MS', 180_000, 1000, 3_600_000),
    javaHome: env['FINNHUBD_JAVA_HOME'] ?? null,
    mvn: env['FINNHUBD_MVN'] ?? 'mvn',
    fastUnsafe: flagFromEnv(env, 'FINNHUBD_STACK_FAST_UNSAFE'),
    cassandraCommitlogSync: commitlogSyncFromEnv(env),
    // The secure stack always asks for a login (FINNHUBD_CASSANDRA_AUTH is not read).
    cassandraAuth: secure ? 'password' : cassandraAuthFromEnv(env),
    ...overrides,
    secure,
    cluster
  }
  if (options.secure && options.cassandraAuth !== 'password') {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', 'the secure stack always runs Cassandra with password authentication; leave cassandraAuth out or set it to password')
  }
  const ports = [options.kafkaPort, options.kafkaControllerPort, options.kafkaProxiedPort, options.kafkaProxyPort, options.cassandraPort, options.cassandraStoragePort]
  if (new Set(ports).size !== ports.length) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', `the stack's six ports must differ, got ${ports.join(', ')}`)
  }
  if (cluster) {
    // Every Kafka node's four ports, and the two Cassandra ports (on every node's address, and on 127.0.0.1 beside Kafka).
    const all = [...Array.from({ length: CLUSTER_SIZE }, (_, i) => ports.slice(0, 4).map(p => p + i * CLUSTER_PORT_STEP)).flat(), options.cassandraPort, options.cassandraStoragePort]
    const clash = all.find((p, i) => all.indexOf(p) !== i)
    if (clash !== undefined) {
      throw new FinnhubdError('FINNHUBD_ERR_USAGE',
        `the cluster stack's ports clash at ${clash}: node n's Kafka ports are the FINNHUBD_KAFKA_*_PORT values plus (n-1)·${CLUSTER_PORT_STEP}, ` +
        'and the two Cassandra ports stay as they are; move one FINNHUBD_*_PORT so no two of them meet')
    }
  }
  return options
}

/** Where clients reach the stack; without options, the stack `npm run stack` runs (env applied). For a cluster, node 1 (see clusterEndpoints). */
export function stackEndpoints (options: StackOptions = stackOptions(process.env)): Endpoints {
  return {
    kafkaBootstrap: `127.0.0.1:${options.kafkaPort}`,
    cassandraHost: '127.0.0.1',
    cassandraPort: options.cassandraPort,
    cassandraContactPoint: `127.0.0.1:${options.cassandraPort}`
  }
}
