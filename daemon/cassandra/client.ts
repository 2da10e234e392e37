// Builds the cassandra-driver Client from the validated config. The daemon keeps one
// client for its whole life (the driver pools connections per host itself).

import cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../errors.js'

export interface ClientOptions {
  /** Bind the session to the configured keyspace (off for migrations, which may create it). */
  useKeyspace?: boolean
}

export function createCassandraClient (config: Config['cassandra'], options: ClientOptions = {}): cassandra.Client {
  const authProvider = config.username !== null && config.password !== null
    ? new cassandra.auth.PlainTextAuthProvider(config.username, config.password)
    : undefined
  return new cassandra.Client({
    contactPoints: [...config.contactPoints],
    protocolOptions: { port: config.port },
    localDataCenter: config.localDataCenter,
    ...(options.useKeyspace === true ? { keyspace: config.keyspace } : {}),
    ...(authProvider !== undefined ? { authProvider } : {}),
    socketOptions: { readTimeout: config.requestTimeoutMs, connectTimeout: 5_000 },
    policies: { reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(Math.min(500, config.reconnectMaxDelayMs), config.reconnectMaxDelayMs, false) },
    queryOptions: { consistency: cassandra.types.consistencies.localQuorum }
  })
}

/** A connected client, or a clear error naming the address and what to do. */
export async function connectCassandra (config: Config['cassandra'], options: ClientOptions = {}): Promise<cassandra.Client> {
  const client = createCassandraClient(config, options)
  try {
    await client.connect()
  } catch (err) {
    await client.shutdown().catch(() => {})
    throw new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE',
      `cannot reach Cassandra at ${config.contactPoints.join(',')}:${config.port} (${(err as Error).message.split('\n')[0] ?? ''}); ` +
      'start the local stack with `npm run stack -- up`, or point cassandra.contactPoints / CASSANDRA_HOST and CASSANDRA_PORT at your cluster',
      { cause: err })
  }
  return client
}
