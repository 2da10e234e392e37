// Builds the cassandra-driver Client from the validated config. The daemon keeps one
// client for its whole life (the driver pools connections per host itself).

import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../core/errors.js'
import { effectiveReadConsistency, keyspaceReplication, writesPossible, type ReadConsistency, type WriteConsistency } from '../core/consistency.js'
import type { Check, NodeState } from '../readiness.js'

export interface ClientOptions {
  /** Bind the session to the configured keyspace (off for migrations, which may create it). */
  useKeyspace?: boolean
}

export function createCassandraClient (config: Config['cassandra'], options: ClientOptions = {}): cassandra.Client {
  const authProvider = config.username !== null && config.password !== null
    ? new cassandra.auth.PlainTextAuthProvider(config.username, config.password)
    : undefined
  const sslOptions = cassandraTlsOptions(config.tls)
  return new cassandra.Client({
    contactPoints: [...config.contactPoints],
    protocolOptions: { port: config.port },
    localDataCenter: config.localDataCenter,
    ...(options.useKeyspace === true ? { keyspace: config.keyspace } : {}),
    ...(authProvider !== undefined ? { authProvider } : {}),
    ...(sslOptions !== null ? { sslOptions } : {}),
    socketOptions: { readTimeout: config.requestTimeoutMs, connectTimeout: 5_000 },
    policies: { reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(Math.min(500, config.reconnectMaxDelayMs), config.reconnectMaxDelayMs, false) },
    // Every request without its own level is a write or schema work: the write level.
    queryOptions: { consistency: driverConsistency(config.consistency) }
  })
}

const DRIVER_LEVELS: Record<WriteConsistency, number> = {
  ONE: cassandra.types.consistencies.one,
  TWO: cassandra.types.consistencies.two,
  THREE: cassandra.types.consistencies.three,
  QUORUM: cassandra.types.consistencies.quorum,
  LOCAL_QUORUM: cassandra.types.consistencies.localQuorum,
  EACH_QUORUM: cassandra.types.consistencies.eachQuorum,
  ALL: cassandra.types.consistencies.all,
  LOCAL_ONE: cassandra.types.consistencies.localOne
}

/** The driver's code for a configured level. */
export function driverConsistency (level: WriteConsistency | ReadConsistency): number {
  return DRIVER_LEVELS[level]
}

/** The driver's code for the reads that must see the writes (candle rebuilds, the query CLI and console). */
export function readConsistency (config: Pick<Config['cassandra'], 'consistency' | 'readConsistency'>): number {
  return DRIVER_LEVELS[effectiveReadConsistency(config.consistency, config.readConsistency)]
}

/**
 * Node's TLS options for cassandra.tls, or null when it is off. The files were checked
 * readable by the loader; they are read again here so a renewed certificate is used
 * by the next connection the daemon makes.
 */
export function cassandraTlsOptions (tls: Config['cassandra']['tls']): ConnectionOptions | null {
  if (!tls.enabled) return null
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.caFile !== null ? { ca: [readFileSync(tls.caFile)] } : {}),
    ...(tls.certificateFile !== null ? { cert: readFileSync(tls.certificateFile) } : {}),
    ...(tls.keyFile !== null ? { key: readFileSync(tls.keyFile) } : {}),
    ...(tls.keyPassphrase !== null ? { passphrase: tls.keyPassphrase } : {}),
    ...(tls.serverName !== null ? { servername: tls.serverName } : {})
  }
}

/**
 * The login a host refused, if that is why connecting failed. connect() tries each
 * contact point and throws NoHostAvailableError with the error per host; one host
 * refusing the login (AuthenticationError, for wrong credentials and for none given)
 * says more than others being down.
 */
function refusedLogin (err: unknown): cassandra.errors.AuthenticationError | null {
  if (!(err instanceof cassandra.errors.NoHostAvailableError)) return null
  const perHost = Object.values((err.innerErrors ?? {}) as Record<string, unknown>)
  return (perHost.find(e => e instanceof cassandra.errors.AuthenticationError) as cassandra.errors.AuthenticationError | undefined) ?? null
}

/** A connected client, or a clear error naming the address and what to do. */
export async function connectCassandra (config: Config['cassandra'], options: ClientOptions = {}): Promise<cassandra.Client> {
  const client = createCassandraClient(config, options)
  try {
    await client.connect()
  } catch (err) {
    await client.shutdown().catch(() => {})
    throw connectError(config, err)
  }
  return client
}

// Never the password: messages end up in logs and journals.
function connectError (config: Config['cassandra'], err: unknown): FinnhubdError {
  const at = `${config.contactPoints.join(',')}:${config.port}`
  const refused = refusedLogin(err)
  if (refused !== null) {
    if (config.username === null || config.password === null) {
      return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_AUTH',
        `Cassandra at ${at} requires password authentication and no credentials are configured; ` +
        'set CASSANDRA_USER and CASSANDRA_PASSWORD (or cassandra.username and cassandra.password in the config file)',
        { cause: err })
    }
    return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_AUTH',
      `Cassandra at ${at} refused the credentials of user "${config.username}" (${firstLine(refused)}); ` +
      'check CASSANDRA_USER / CASSANDRA_PASSWORD (cassandra.username / cassandra.password)',
      { cause: err })
  }
  const tls = tlsProblem(config, err)
  if (tls !== null) return tls
  return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE',
    `cannot reach Cassandra at ${at} (${firstLine(err)}); ` +
    'start the local stack with `npm run stack -- up`, or point cassandra.contactPoints / CASSANDRA_HOST and CASSANDRA_PORT at your cluster',
    { cause: err })
}

const firstLine = (err: unknown): string => (err as Error).message.split('\n')[0] ?? ''

// Node's TLS error codes: the certificate is not trusted, or names another host.
const UNTRUSTED = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])

/**
 * A TLS reason among the hosts' errors: an untrusted or misnamed certificate, TLS
 * against a plaintext port (the handshake reads a non-TLS answer), or plaintext
 * against a TLS port (the node closes the connection before answering).
 */
function tlsProblem (config: Config['cassandra'], err: unknown): FinnhubdError | null {
  const at = `${config.contactPoints.join(',')}:${config.port}`
  const perHost = err instanceof cassandra.errors.NoHostAvailableError
    ? Object.values((err.innerErrors ?? {}) as Record<string, Error & { code?: string }>)
    : [err as Error & { code?: string }]
  const said = (e: Error): string => `the driver said: ${firstLine(e)}`
  for (const e of perHost) {
    if (e === null || e === undefined) continue
    const code = e.code ?? ''
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_TLS',
        `the certificate of Cassandra at ${at} is not for the host connected to (${said(e)}); connect by a name the certificate lists, ` +
        'or set cassandra.tls.serverName to the name it carries')
    }
    if (UNTRUSTED.has(code)) {
      return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_TLS',
        `the certificate of Cassandra at ${at} is not trusted (${said(e)}); set cassandra.tls.caFile to the CA that signed the nodes' certificates`)
    }
    if (config.tls.enabled && (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || /wrong version number|packet length too long/i.test(e.message))) {
      return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_TLS',
        `Cassandra at ${at} does not speak TLS on that port (${said(e)}); set cassandra.tls.enabled: false, or turn on its client_encryption_options`)
    }
    if (config.tls.enabled && /SSL|TLS|certificate/i.test(e.message)) {
      return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_TLS',
        `the TLS handshake with Cassandra at ${at} failed (${said(e)}); check cassandra.tls (caFile; certificateFile and keyFile when the nodes require client certificates)`)
    }
  }
  if (!config.tls.enabled && perHost.some(e => e !== null && e !== undefined && /socket was closed|ECONNRESET|closed before|Connection reset|timed out/i.test(e.message))) {
    return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_TLS',
      `Cassandra at ${at} closed the connection before answering (${said(perHost[0] as Error)}): it may require TLS; ` +
      'set cassandra.tls.enabled: true with cassandra.tls.caFile, or check that the port is Cassandra\'s native port')
  }
  return null
}

/** Each host the driver knows (contact points and the peers it discovered), with its state. */
export function cassandraHosts (client: Pick<cassandra.Client, 'hosts'>): NodeState[] {
  const out: NodeState[] = []
  for (const h of client.hosts.values()) {
    const up = h.isUp()
    out.push({ node: h.address, up, state: up ? 'UP' : 'DOWN', datacenter: h.datacenter ?? '', rack: h.rack ?? '' })
  }
  return out.sort((a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }))
}

/**
 * The readiness line for Cassandra: the last request succeeded, and the hosts up can
 * still take a write at cassandra.consistency for the configured replication
 * (core/consistency.ts, writesPossible: at least one host up, and as many up, in the
 * local data center for LOCAL_* levels, as the level needs replicas).
 */
export function cassandraCheck (lastRequestOk: boolean, hosts: readonly NodeState[], config: Pick<Config['cassandra'], 'consistency' | 'replication' | 'replicationFactor' | 'localDataCenter'>): Check {
  const up = { total: hosts.filter(h => h.up).length, local: hosts.filter(h => h.up && h.datacenter === config.localDataCenter).length }
  const w = writesPossible(config.consistency, keyspaceReplication(config), config.localDataCenter, up)
  const nodes = [...hosts]
  if (!w.ok) return { ok: false, detail: `${w.up} host(s) up, ${config.consistency} writes need ${w.needed}`, nodes }
  return { ok: lastRequestOk, detail: `${lastRequestOk ? 'last request succeeded' : 'last request failed'}; ${up.total}/${hosts.length} hosts up`, nodes }
}
