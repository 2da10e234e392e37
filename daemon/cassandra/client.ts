// Builds the cassandra-driver Client from the validated config. The daemon keeps one
// client for its whole life (the driver pools connections per host itself).

import cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'

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
    queryOptions: { consistency: cassandra.types.consistencies.localQuorum }
  })
}
