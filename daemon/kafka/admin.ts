// Topic creation through node-rdkafka's AdminClient. An existing topic is fine
// (creating is idempotent for us), so `finnhubd` can make sure its topics exist.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../core/errors.js'

const TOPIC_ALREADY_EXISTS = Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS

export async function createTopic (bootstrap: string, topic: string, partitions = 3, replicationFactor = 1): Promise<'created' | 'exists'> {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': bootstrap, 'client.id': 'finnhubd-admin' })
  try {
    return await new Promise((resolve, reject) => {
      admin.createTopic({ topic, num_partitions: partitions, replication_factor: replicationFactor }, 15_000, err => {
        if (err === null || err === undefined) resolve('created')
        else if (err.code === TOPIC_ALREADY_EXISTS) resolve('exists')
        else reject(err)
      })
    })
  } finally {
    admin.disconnect()
  }
}

/** Creates the daemon's topics when missing, with kafka.topicPartitions and kafka.topicReplicationFactor. */
export async function ensureTopics (kafka: Config['kafka'], topics: readonly string[]): Promise<void> {
  for (const topic of topics) {
    try {
      await createTopic(kafka.bootstrapServers.join(','), topic, kafka.topicPartitions, kafka.topicReplicationFactor)
    } catch (err) {
      throw new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
        `cannot create the Kafka topic ${topic} (${(err as Error).message}); create it yourself or check kafka.bootstrapServers and the broker's ACLs`, { cause: err })
    }
  }
}

/** Connects a node-rdkafka client; rejects with a message that names the brokers and what to do. */
export async function connectKafka (client: Pick<Kafka.Client<string>, 'connect'>, kafka: Config['kafka'], timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    client.connect({ timeout: timeoutMs }, err => {
      if (err !== null && err !== undefined) {
        reject(new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
          `cannot reach Kafka at ${kafka.bootstrapServers.join(',')} (${err.message}); ` +
          'start the local stack with `npm run stack -- up` or set kafka.bootstrapServers / KAFKA_BOOTSTRAP_SERVERS', { cause: err }))
      } else {
        resolve()
      }
    })
  })
}

/** librdkafka's statistics event, parsed; null when it is not JSON (never expected, never fatal). */
export function parseStats<T> (json: string): T | null {
  try {
    return JSON.parse(json) as T
  } catch {
    return null
  }
}

export interface BrokerHealth { up: number, known: number }

/**
 * How many of the cluster's brokers a client is connected to, from librdkafka's
 * statistics (bootstrap entries, nodeid -1, are not brokers of the cluster).
 */
export function brokerHealth (brokers: Record<string, { state: string, nodeid: number }> | undefined): BrokerHealth {
  let up = 0
  let known = 0
  for (const b of Object.values(brokers ?? {})) {
    if (b.nodeid < 0) continue
    known++
    if (b.state === 'UP') up++
  }
  return { up, known }
}

/**
 * A readiness line for a Kafka client: connected, and (once statistics came) at
 * least one broker of the cluster up. Statistics that list no broker of the
 * cluster at all (seen once the only broker went away) are not ready either.
 */
export function kafkaCheck (connected: boolean, health: BrokerHealth | null): { ok: boolean, detail: string } {
  if (!connected) return { ok: false, detail: 'disconnected' }
  if (health === null) return { ok: true, detail: 'connected' }
  if (health.known === 0) return { ok: false, detail: 'no broker known' }
  return { ok: health.up > 0, detail: `${health.up}/${health.known} brokers up` }
}
