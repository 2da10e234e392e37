// Topic creation through node-rdkafka's AdminClient. An existing topic is fine
// (creating is idempotent for us), so `finnhubd` can make sure its topics exist.

import Kafka from 'node-rdkafka'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../core/errors.js'
import { kafkaClientConfig } from './client-config.js'
import { definitiveKafkaError } from './connect-error.js'

const TOPIC_ALREADY_EXISTS = Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS

/** Creates a topic; `target` is the daemon's Kafka settings, or a plaintext bootstrap list (the tools' own). */
export async function createTopic (target: string | Config['kafka'], topic: string, partitions = 3, replicationFactor = 1): Promise<'created' | 'exists'> {
  const conf = typeof target === 'string' ? { 'metadata.broker.list': target, 'client.id': 'finnhubd-admin' } : kafkaClientConfig(target, '-admin')
  const admin = Kafka.AdminClient.create(conf as Kafka.GlobalConfig)
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

/**
 * Creates the daemon's topics when missing, with kafka.topicPartitions and
 * kafka.topicReplicationFactor. A probe connects first: the admin client reports a
 * refused login or an untrusted certificate only as a timeout.
 */
export async function ensureTopics (kafka: Config['kafka'], topics: readonly string[]): Promise<void> {
  await probeKafka(kafka, kafka.connectTimeoutMs)
  for (const topic of topics) {
    try {
      await createTopic(kafka, topic, kafka.topicPartitions, kafka.topicReplicationFactor)
    } catch (err) {
      throw new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
        `cannot create the Kafka topic ${topic} (${(err as Error).message}); create it yourself or check kafka.bootstrapServers and the broker's ACLs`, { cause: err })
    }
  }
}

/**
 * Connects a short-lived client with these settings and fetches metadata: the same
 * clear error a role would meet at start, without starting one (also used to check a
 * reload's new credentials before the running clients are touched).
 */
export async function probeKafka (kafka: Config['kafka'], timeoutMs: number): Promise<void> {
  const probe = new Kafka.Producer({ ...kafkaClientConfig(kafka, '-probe'), log_level: 0 } as Kafka.ProducerGlobalConfig)
  try {
    await connectKafka(probe, kafka, timeoutMs)
  } finally {
    await disconnectQuietly(probe)
  }
}

/**
 * Disconnects a client that may never have connected: node-rdkafka's Producer throws
 * "Producer not connected" (from its flush) when asked to disconnect before connecting,
 * which would mask the connect error being reported.
 */
export async function disconnectQuietly (client: Pick<Kafka.Client<string>, 'isConnected'> & { disconnect: (cb?: () => void) => unknown }): Promise<void> {
  if (!client.isConnected()) return
  await new Promise<void>(resolve => {
    try {
      client.disconnect(() => resolve())
    } catch {
      resolve()
    }
  })
}

type Connectable = Pick<Kafka.Client<string>, 'connect' | 'on'> & { disconnect: (cb?: () => void) => unknown }

/**
 * Connects a node-rdkafka client. Rejects at the first definitive error event (a
 * refused login, an untrusted certificate, the other protocol: see connect-error.ts)
 * and disconnects the client, else at the connect timeout, with a message that names
 * the brokers and what to do.
 */
export async function connectKafka (client: Connectable, kafka: Config['kafka'], timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let settled = false
    let lastError: { code?: number, message: string } | null = null
    const fail = (err: FinnhubdError): void => {
      if (settled) return
      settled = true
      reject(err)
    }
    client.on('event.error', (err: Kafka.LibrdKafkaError) => {
      if (settled) return
      lastError = err
      const definitive = definitiveKafkaError(err, kafka)
      if (definitive !== null) {
        fail(definitive)
        try { client.disconnect(() => {}) } catch {}
      }
    })
    client.connect({ timeout: timeoutMs }, err => {
      if (settled) return
      if (err !== null && err !== undefined) {
        // The connect error is often a bare timeout; an error event before it says why.
        const why = lastError ?? err
        const definitive = definitiveKafkaError(why, kafka) ?? definitiveKafkaError(err, kafka)
        fail(definitive ?? new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
          `cannot reach Kafka at ${kafka.bootstrapServers.join(',')} (${firstLine(why.message)}); ` +
          'start the local stack with `npm run stack -- up` or set kafka.bootstrapServers / KAFKA_BOOTSTRAP_SERVERS', { cause: err }))
      } else {
        settled = true
        resolve()
      }
    })
  })
}

const firstLine = (text: string): string => (text.split('\n')[0] ?? '').slice(0, 400)

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
