// Builds the cassandra-driver Client from the validated config. The daemon keeps one
// client for its whole life (the driver pools connections per host itself).

import cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../core/errors.js'

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
  return new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE',
    `cannot reach Cassandra at ${at} (${firstLine(err)}); ` +
    'start the local stack with `npm run stack -- up`, or point cassandra.contactPoints / CASSANDRA_HOST and CASSANDRA_PORT at your cluster',
    { cause: err })
}

const firstLine = (err: unknown): string => (err as Error).message.split('\n')[0] ?? ''
