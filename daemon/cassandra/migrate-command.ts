// `finnhubd migrate`: connect without a keyspace (the first migration creates it),
// apply what is pending, report, disconnect.

import type { Config } from '../config/schema.js'
import { connectCassandra } from './client.js'
import { applyMigrations, loadMigrations, type MigrateResult } from './migrations.js'

export async function runMigrate (config: Config, cqlDir: string, out: (line: string) => void): Promise<MigrateResult> {
  const migrations = loadMigrations(cqlDir)
  const client = await connectCassandra(config.cassandra)
  try {
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
