// Which changed settings decide how the daemon connects, and the check that they
// still connect: run on a reload before anything is applied, so new credentials that
// a broker or node refuses are refused with the reason while the running clients keep
// the old ones (the new ones take effect at the next restart).

import type { Config } from './config/schema.js'
import { connectCassandra } from './cassandra/client.js'
import { probeKafka } from './kafka/admin.js'
import { tradeSchemaId } from './kafka/schema-registry.js'
import { resolveSchemaPath } from './paths.js'

type Role = 'ingest' | 'process'

const KAFKA = /^kafka\.(bootstrapServers|security|clientProperties)(\.|$)/
const REGISTRY = /^kafka\.(schemaRegistryUrl|schemaRegistry)(\.|$)/
const CASSANDRA = /^cassandra\.(contactPoints|port|username|password|passwordFile|tls|localDataCenter)(\.|$)/

/** The changed keys that a probe must check, for the roles this daemon runs (Cassandra: process only). */
export function connectionChanges (changed: readonly string[], roles: readonly Role[]): string[] {
  return changed.filter(k => KAFKA.test(k) || REGISTRY.test(k) || (roles.includes('process') && CASSANDRA.test(k)))
}

/** Connects with `config` where `changed` says it matters; throws the error a start would meet. */
export async function probeConnections (config: Config, changed: readonly string[]): Promise<void> {
  if (changed.some(k => KAFKA.test(k))) await probeKafka(config.kafka, config.kafka.connectTimeoutMs)
  if (changed.some(k => REGISTRY.test(k))) await tradeSchemaId(config.kafka, resolveSchemaPath(config.schemaPath))
  if (changed.some(k => CASSANDRA.test(k))) {
    const client = await connectCassandra(config.cassandra)
    await client.shutdown()
  }
}
