// Topic creation through node-rdkafka's AdminClient. An existing topic is fine
// (creating is idempotent for us), so `finnhubd` can make sure its topics exist. A topic
// finnhubd creates gets its retention.ms from the config; an existing one keeps its own,
// which finnhubd cannot read: node-rdkafka 3.6.1's AdminClient has no DescribeConfigs
// (only create/delete topic and create partitions), so the start says so and prints the
// commands to check and set it (docs/operations.md, "Retention").

import Kafka from 'node-rdkafka'
import { topicMinInsyncReplicas, type Config } from '../config/schema.js'
import { FinnhubdError, isFinnhubdError } from '../core/errors.js'
import { kafkaClientConfig } from './client-config.js'
import { KafkaConnectWatch } from './connect-error.js'
import type { Check, NodeState } from '../readiness.js'

const TOPIC_ALREADY_EXISTS = Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS

/**
 * Creates a topic; `target` is the daemon's Kafka settings, or a plaintext bootstrap list
 * (the tools' own). `topicConfig` (e.g. retention.ms) applies only when it is created.
 */
export async function createTopic (target: string | Config['kafka'], topic: string, partitions = 3, replicationFactor = 1,
  topicConfig: Readonly<Record<string, string>> = {}): Promise<'created' | 'exists'> {
  const conf = typeof target === 'string' ? { 'metadata.broker.list': target, 'client.id': 'finnhubd-admin' } : kafkaClientConfig(target, '-admin')
  const admin = Kafka.AdminClient.create(conf as Kafka.GlobalConfig)
  try {
    return await new Promise((resolve, reject) => {
      admin.createTopic({ topic, num_partitions: partitions, replication_factor: replicationFactor, config: { ...topicConfig } }, 15_000, err => {
        if (err === null || err === undefined) resolve('created')
        else if (err.code === TOPIC_ALREADY_EXISTS) resolve('exists')
        else reject(err)
      })
    })
  } finally {
    admin.disconnect()
  }
}

/** The retention setting of one of the daemon's topics: the dead-letter topic's, or the trades topic's. */
export function topicRetention (kafka: Config['kafka'], topic: string): { key: string, ms: number } {
  return topic === kafka.deadLetterTopic
    ? { key: 'kafka.deadLetterRetentionMs', ms: kafka.deadLetterRetentionMs }
    : { key: 'kafka.topicRetentionMs', ms: kafka.topicRetentionMs }
}

/**
 * The line for a topic that already exists: its retention.ms is not known to finnhubd
 * (no DescribeConfigs in node-rdkafka), so it names the setting and the kafka-configs.sh
 * commands that check it and set it.
 */
export function existingTopicNotice (kafka: Config['kafka'], topic: string): string {
  const { key, ms } = topicRetention(kafka, topic)
  const base = `kafka-configs.sh --bootstrap-server ${kafka.bootstrapServers.join(',')}` +
    `${kafka.security.protocol === 'plaintext' ? '' : ' --command-config <client.properties>'} --entity-type topics --entity-name ${topic}`
  return `Kafka topic ${topic} exists, so ${key}=${ms} was not applied (it is set only on topics finnhubd creates) ` +
    'and its actual retention.ms cannot be read from here (node-rdkafka has no DescribeConfigs); ' +
    `check it with \`${base} --describe\` and, if it differs, set it with \`${base} --alter --add-config retention.ms=${ms}\``
}

/** Topics this process created (bootstrap list / topic): their retention is known. */
const createdHere = new Set<string>()

export type TopicOutcome = { topic: string, outcome: 'created' | 'exists', retentionMs: number }

/**
 * Creates the daemon's topics when missing, with kafka.topicPartitions,
 * kafka.topicReplicationFactor and their retention (topicRetention). A probe connects
 * first: the admin client reports a refused login or an untrusted certificate only as
 * a timeout. Each topic found existing gets existingTopicNotice's line in `log`.
 */
export async function ensureTopics (kafka: Config['kafka'], topics: readonly string[],
  log: (msg: string, fields: Record<string, unknown>) => void = () => {}): Promise<TopicOutcome[]> {
  await probeKafka(kafka, kafka.connectTimeoutMs)
  const out: TopicOutcome[] = []
  for (const topic of topics) {
    const retentionMs = topicRetention(kafka, topic).ms
    let outcome: 'created' | 'exists'
    try {
      outcome = await createTopic(kafka, topic, kafka.topicPartitions, kafka.topicReplicationFactor,
        { 'retention.ms': String(retentionMs), 'min.insync.replicas': String(topicMinInsyncReplicas(kafka)) })
    } catch (err) {
      throw new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
        `cannot create the Kafka topic ${topic} (${(err as Error).message}); create it yourself or check kafka.bootstrapServers and the broker's ACLs`, { cause: err })
    }
    // Both roles of one daemon ensure the trades topic: the second finds what the first made.
    const key = `${kafka.bootstrapServers.join(',')}/${topic}`
    if (outcome === 'created') createdHere.add(key)
    else if (!createdHere.has(key)) log(existingTopicNotice(kafka, topic), { topic, configuredRetentionMs: retentionMs })
    out.push({ topic, outcome, retentionMs })
  }
  // The replication of a topic that was there already can be read (metadata lists each
  // partition's replicas and in-sync replicas); its min.insync.replicas cannot.
  const existing = out.filter(o => o.outcome === 'exists').map(o => o.topic)
  if (existing.length > 0) {
    for (const w of topicReplicationWarnings(kafka, await topicMetadata(kafka, existing))) log(w.message, w.fields)
  }
  return out
}

/** The part of node-rdkafka's metadata read here. */
export interface TopicMetadata { name: string, partitions: Array<{ id: number, replicas: number[], isrs: number[] }> }

/** The metadata of these topics, from a short-lived producer. */
export async function topicMetadata (kafka: Config['kafka'], topics: readonly string[]): Promise<TopicMetadata[]> {
  const client = new Kafka.Producer(kafkaClientConfig(kafka, '-admin') as Kafka.ProducerGlobalConfig)
  try {
    await connectKafka(client, kafka, kafka.connectTimeoutMs)
    const out: TopicMetadata[] = []
    for (const topic of topics) {
      const md = await new Promise<Kafka.Metadata>((resolve, reject) => {
        client.getMetadata({ topic, timeout: 15_000 }, (err, data) => { if (err !== null && err !== undefined) reject(err); else resolve(data) })
      })
      for (const t of md.topics) if (t.name === topic) out.push({ name: t.name, partitions: t.partitions.map(p => ({ id: p.id, replicas: [...p.replicas], isrs: [...p.isrs] })) })
    }
    return out
  } finally {
    await disconnectQuietly(client)
  }
}

/**
 * Warnings for existing topics: fewer replicas than kafka.topicReplicationFactor (with
 * the kafka-reassign-partitions.sh way to add them), and partitions whose in-sync
 * replicas are fewer than the min.insync.replicas finnhubd would give them
 * (under-replicated: acks=all writes fail there until a follower catches up).
 */
export function topicReplicationWarnings (kafka: Config['kafka'], topics: readonly TopicMetadata[]): Array<{ message: string, fields: Record<string, unknown> }> {
  const out: Array<{ message: string, fields: Record<string, unknown> }> = []
  const configured = kafka.topicReplicationFactor
  const minIsr = topicMinInsyncReplicas(kafka)
  for (const t of topics) {
    if (t.partitions.length === 0) continue
    const actual = Math.min(...t.partitions.map(p => p.replicas.length))
    if (actual < configured) {
      out.push({
        message: `Kafka topic ${t.name} has replication factor ${actual}, below kafka.topicReplicationFactor=${configured}: ` +
          `losing ${actual === 1 ? 'its one broker' : `${actual} brokers`} loses trades; finnhubd does not change an existing topic. ` +
          `Add replicas with kafka-reassign-partitions.sh --bootstrap-server ${kafka.bootstrapServers.join(',')} --reassignment-json-file <plan.json> --execute ` +
          `(a plan listing ${configured} broker ids per partition; --generate writes one)`,
        fields: { topic: t.name, replicationFactor: actual, configuredReplicationFactor: configured }
      })
    }
    const under = t.partitions.filter(p => p.isrs.length < Math.min(minIsr, p.replicas.length)).map(p => p.id)
    if (under.length > 0) {
      out.push({
        message: `Kafka topic ${t.name} is under-replicated: partition(s) ${under.join(', ')} have fewer in-sync replicas than min.insync.replicas=${minIsr}; ` +
          'writes with acks=all to them fail until the followers catch up (check the brokers: kafka-topics.sh --describe --under-replicated-partitions)',
        fields: { topic: t.name, underReplicatedPartitions: under, minInsyncReplicas: minIsr }
      })
    }
  }
  return out
}

/** How long the first probe client may try (see probeKafka); each next one twice as long. */
export const PROBE_ATTEMPT_MS = 3000

/**
 * The probe's attempts: 3 s, 6 s, 12 s, … with the last one cut to what is left of
 * `timeoutMs`, so they add up to it. A slow but working cluster (far away, a slow DNS)
 * gets ever longer tries; a refused one is known within the first.
 */
export function probeAttempts (timeoutMs: number): number[] {
  const out: number[] = []
  let left = Math.max(1, Math.floor(timeoutMs))
  for (let next = PROBE_ATTEMPT_MS; left > 0; next *= 2) {
    const ms = Math.min(next, left)
    out.push(ms)
    left -= ms
  }
  return out
}

/**
 * Connects a short-lived client with these settings and fetches metadata: the same
 * clear error a role would meet at start, without starting one (also used to check a
 * reload's new credentials before the running clients are touched). It tries with a
 * new client for each of probeAttempts(timeoutMs): a client refused while connecting
 * cannot be torn down before its own connect times out (node-rdkafka waits for it,
 * and so does the process's exit), so a short first attempt keeps a refused start
 * from lingering for the whole connect timeout.
 */
export async function probeKafka (kafka: Config['kafka'], timeoutMs: number): Promise<void> {
  const attempts = probeAttempts(timeoutMs)
  for (const [i, attemptMs] of attempts.entries()) {
    const probe = new Kafka.Producer(kafkaClientConfig(kafka, '-probe') as Kafka.ProducerGlobalConfig)
    try {
      await connectKafka(probe, kafka, attemptMs)
    } catch (err) {
      // connectKafka has begun the refused client's disconnect; the next try does not wait for it.
      if (!isFinnhubdError(err, 'FINNHUBD_ERR_KAFKA_UNREACHABLE') || i === attempts.length - 1) throw err
      continue
    }
    await disconnectQuietly(probe)
    return
  }
}

/** Disconnects under way, by client: a second disconnect of node-rdkafka's never calls back. */
const disconnecting = new WeakMap<object, Promise<void>>()

/**
 * Disconnects a client that may never have connected, once: node-rdkafka's Producer
 * throws "Producer not connected" (from its flush) when asked to disconnect before it
 * connected, and a client asked twice (the connect watch, then its owner) never calls
 * the second one back. Every caller gets the same promise.
 */
export async function disconnectQuietly (client: Pick<Kafka.Client<string>, 'isConnected'> & { disconnect: (cb?: () => void) => unknown }): Promise<void> {
  const pending = disconnecting.get(client)
  if (pending !== undefined) return await pending
  if (!client.isConnected()) return
  const done = new Promise<void>(resolve => {
    try {
      client.disconnect(() => resolve())
    } catch {
      resolve()
    }
  })
  disconnecting.set(client, done)
  await done
}

type Connectable = Pick<Kafka.Client<string>, 'connect' | 'on' | 'removeListener' | 'isConnected'> & { disconnect: (cb?: () => void) => unknown }

/** The part of node-rdkafka's event.log payload read here. */
interface KafkaLogLine { severity: number, message: string }

/**
 * Connects a node-rdkafka client. Rejects at the first definitive error (a refused
 * login, an untrusted certificate, the other protocol: see connect-error.ts), seen in
 * an error event or in librdkafka's log (where it reports them before the client is
 * connected), else at the connect timeout, with a message that names the brokers and
 * what to do. A client that failed is disconnected (not awaited: a client refused
 * mid-connect finishes only when its connect times out; its owner's own disconnect
 * gets the same promise through disconnectQuietly).
 */
export async function connectKafka (client: Connectable, kafka: Config['kafka'], timeoutMs: number): Promise<void> {
  const watch = new KafkaConnectWatch(kafka)
  let lastError: { code?: number, message: string } | null = null
  let fail: (err: FinnhubdError) => void = () => {}
  const observe = (err: { code?: number, message: string }): void => {
    lastError = err
    const definitive = watch.observe(err)
    if (definitive !== null) fail(definitive)
  }
  const onError = (err: Kafka.LibrdKafkaError): void => { observe(err) }
  // Errors (3) and the notices a refused connection is logged at (librdkafka logs some at 6).
  const onLog = (line: KafkaLogLine): void => { if (line.severity <= 6) observe({ message: line.message.replace(/^\[thrd:[^\]]*\]: /, '') }) }
  client.on('event.error', onError)
  client.on('event.log', onLog)
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false
      fail = err => {
        if (settled) return
        settled = true
        reject(err)
      }
      client.connect({ timeout: timeoutMs }, err => {
        if (settled) return
        if (err === null || err === undefined) {
          settled = true
          resolve()
          return
        }
        // The connect error is often a bare "broker transport failure"; the log before it
        // (already seen by the watch, and not definitive) says more.
        const why = lastError ?? err
        fail(watch.observe(err) ?? new FinnhubdError('FINNHUBD_ERR_KAFKA_UNREACHABLE',
          `cannot reach Kafka at ${kafka.bootstrapServers.join(',')} (${firstLine(err.message)}${why !== err ? `; last: ${firstLine(why.message)}` : ''}); ` +
          'start the local stack with `npm run stack -- up` or set kafka.bootstrapServers / KAFKA_BOOTSTRAP_SERVERS', { cause: err }))
      })
    })
  } catch (err) {
    disconnectQuietly(client).catch(() => {})
    throw err
  } finally {
    // Connected or not, the watch is over: the running client's errors go to its owner.
    client.removeListener('event.error', onError)
    client.removeListener('event.log', onLog)
  }
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

export interface BrokerHealth { up: number, known: number, nodes: NodeState[] }

/**
 * How many of the cluster's brokers a client is connected to, and each one's state,
 * from librdkafka's statistics (bootstrap entries, nodeid -1, are not brokers of the
 * cluster).
 */
export function brokerHealth (brokers: Record<string, { state: string, nodeid: number, nodename?: string }> | undefined): BrokerHealth {
  let up = 0
  let known = 0
  const nodes: NodeState[] = []
  for (const [name, b] of Object.entries(brokers ?? {})) {
    if (b.nodeid < 0) continue
    known++
    if (b.state === 'UP') up++
    nodes.push({ node: `${b.nodeid} ${b.nodename ?? name.replace(/\/\d+$/, '')}`, up: b.state === 'UP', state: b.state })
  }
  nodes.sort((a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }))
  return { up, known, nodes }
}

/**
 * A readiness line for a Kafka client: connected, and (once statistics came) at
 * least one broker of the cluster up. Statistics that list no broker of the
 * cluster at all (seen once the only broker went away) are not ready either.
 * With acks=all the brokers themselves refuse a write below min.insync.replicas;
 * the client cannot tell that from its statistics, the topic warnings at start can.
 */
export function kafkaCheck (connected: boolean, health: BrokerHealth | null): Check {
  if (!connected) return { ok: false, detail: 'disconnected', ...(health !== null ? { nodes: health.nodes } : {}) }
  if (health === null) return { ok: true, detail: 'connected' }
  if (health.known === 0) return { ok: false, detail: 'no broker known', nodes: health.nodes }
  return { ok: health.up > 0, detail: `${health.up}/${health.known} brokers up`, nodes: health.nodes }
}
