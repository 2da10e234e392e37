// `finnhubd migrate`: connect without a keyspace (the first migration creates it),
// apply what is pending, then bring the tables' compaction and TTL in line with the
// config (retention.ts), report, disconnect.

import type { Config } from '../config/schema.js'
import { connectCassandra } from './client.js'
import { applyMigrations, loadMigrations, type MigrateResult } from './migrations.js'
import { reconcileRetention, type RetentionResult } from './retention.js'

export interface MigrateCommandResult extends MigrateResult {
  retention: RetentionResult
}

export async function runMigrate (config: Config, cqlDir: string, out: (line: string) => void): Promise<MigrateCommandResult> {
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
    const retention = await reconcileRetention(client, config.cassandra, out)
    out(retention.altered.length === 0
      ? `table options match the config (${retention.unchanged.length} tables: compaction and retention)`
      : `altered ${retention.altered.length} table(s): ${retention.altered.map(c => c.table).join(', ')}`)
    return { ...result, retention }
  } finally {
    await client.shutdown()
  }
}
