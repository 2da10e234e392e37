// `finnhubd migrate`: connect without a keyspace (the first migration creates it),
// apply what is pending, report, disconnect.

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../errors.js'
import { createCassandraClient } from './client.js'
import { applyMigrations, loadMigrations, type MigrateResult } from './migrations.js'

export async function runMigrate (config: Config, cqlDir: string, out: (line: string) => void): Promise<MigrateResult> {
  const migrations = loadMigrations(cqlDir)
  const client = createCassandraClient(config.cassandra)
  try {
    await connect(client, config.cassandra)
    const result = await applyMigrations(client, migrations, {
      keyspace: config.cassandra.keyspace,
      tradesTable: config.cassandra.tradesTable,
      replicationFactor: config.cassandra.replicationFactor
    }, out)
    out(result.applied.length === 0
      ? `schema is up to date (${result.alreadyApplied.length} migrations applied before)`
      : `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`)
    return result
  } finally {
    await client.shutdown()
  }
}

async function connect (client: cassandra.Client, config: Config['cassandra']): Promise<void> {
  try {
    await client.connect()
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_CASSANDRA_UNREACHABLE',
      `cannot reach Cassandra at ${config.contactPoints.join(',')}:${config.port} (${(err as Error).message.split('\n')[0] ?? ''}); ` +
      'start the local stack with `npm run stack -- up`, or point cassandra.contactPoints / CASSANDRA_HOST and CASSANDRA_PORT at your cluster',
      { cause: err })
  }
}
