// `finnhubd migrate`: connect without a keyspace (the first migration creates it),
// apply what is pending, then bring the tables' compaction and TTL in line with the
// config (retention.ts), report, disconnect. A keyspace whose replication differs from
// the config is reported with the ALTER KEYSPACE and the repair to run, not altered.

import type { Config } from '../config/schema.js'
import { connectCassandra } from './client.js'
import { keyspaceReplication } from '../core/consistency.js'
import { applyMigrations, keyspaceReplicationOf, loadMigrations, replicationNotice, sameReplication, storedReplication, type MigrateResult } from './migrations.js'
import { reconcileRetention, type RetentionResult } from './retention.js'

export interface MigrateCommandResult extends MigrateResult {
  retention: RetentionResult
  /** Whether the keyspace's replication is the configured one (else a line said how to change it). */
  replicationMatches: boolean
}

export async function runMigrate (config: Config, cqlDir: string, out: (line: string) => void): Promise<MigrateCommandResult> {
  const migrations = loadMigrations(cqlDir)
  const client = await connectCassandra(config.cassandra)
  const replication = keyspaceReplication(config.cassandra)
  try {
    const result = await applyMigrations(client, migrations, {
      keyspace: config.cassandra.keyspace,
      tradesTable: config.cassandra.tradesTable,
      replicationFactor: config.cassandra.replicationFactor,
      replication
    }, out)
    // CREATE KEYSPACE IF NOT EXISTS leaves an existing keyspace's replication alone.
    const actual = await keyspaceReplicationOf(client, config.cassandra.keyspace)
    const replicationMatches = actual === null || sameReplication(actual, storedReplication(replication))
    if (!replicationMatches) out(replicationNotice(config.cassandra.keyspace, actual, replication))
    out(result.applied.length === 0
      ? `schema is up to date (${result.alreadyApplied.length} migrations applied before)`
      : `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`)
    const retention = await reconcileRetention(client, config.cassandra, out)
    out(retention.altered.length === 0
      ? `table options match the config (${retention.unchanged.length} tables: compaction and retention)`
      : `altered ${retention.altered.length} table(s): ${retention.altered.map(c => c.table).join(', ')}`)
    return { ...result, retention, replicationMatches }
  } finally {
    await client.shutdown()
  }
}
