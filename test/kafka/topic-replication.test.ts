// Topic replication against the real single broker, read back from the broker:
// ensureTopics gives created topics kafka.topicReplicationFactor and
// min.insync.replicas (read with the stack's ConfigCommand and from the metadata);
// an existing topic below the configured replication is reported from its metadata
// with the reassignment command.
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { validateConfig } from '../../daemon/config/load.js'
import { ensureTopics, topicMetadata } from '../../daemon/kafka/admin.js'
import { findJava } from '../../tools/stack/java.js'
import { stackOptions } from '../../tools/stack/options.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, uniqueName } from '../fixtures/kafka.js'

t.setTimeout(240_000)

const { kafkaBootstrap } = testEndpoints()

/** The topic's dynamic config as the broker describes it. */
async function brokerTopicConfig (topic: string): Promise<string> {
  const o = stackOptions(process.env)
  const java = findJava(process.env, o.javaHome).bin
  const { stdout } = await promisify(execFile)(java, [
    '-cp', `${join(o.cacheDir, 'lib', 'kafka')}/*`, 'kafka.admin.ConfigCommand',
    '--bootstrap-server', kafkaBootstrap, '--entity-type', 'topics', '--entity-name', topic, '--describe'
  ], { timeout: 60_000 })
  return stdout
}

t.test('created topics carry min.insync.replicas and the replication factor', async t => {
  const topic = uniqueName('finnhubd.replication-test')
  const dlq = `${topic}.dlq`
  const kafka = validateConfig({ kafka: { bootstrapServers: [kafkaBootstrap], topic, deadLetterTopic: dlq, topicMinInsyncReplicas: 1 } }).kafka
  const lines: string[] = []
  await ensureTopics(kafka, [topic, dlq], msg => lines.push(msg))
  t.same(lines, [])
  for (const name of [topic, dlq]) {
    t.match(await brokerTopicConfig(name), /\bmin\.insync\.replicas=1\b/, `${name}: min.insync.replicas read back`)
  }
  const md = await topicMetadata(kafka, [topic, dlq])
  t.same(md.map(m => m.name), [topic, dlq])
  for (const m of md) {
    t.equal(m.partitions.length, 3, `${m.name}: kafka.topicPartitions`)
    t.ok(m.partitions.every(p => p.replicas.length === 1 && p.isrs.length === 1), `${m.name}: one replica, in sync, per partition`)
  }
})

t.test('an existing topic below kafka.topicReplicationFactor is reported from its metadata', async t => {
  const topic = uniqueName('finnhubd.replication-low')
  await createTopic(kafkaBootstrap, topic, 2)
  // The one broker could not create an RF 2 topic, but it can describe this one.
  const kafka = validateConfig({ kafka: { bootstrapServers: [kafkaBootstrap], topic, topicReplicationFactor: 2 } }).kafka
  const lines: Array<{ msg: string, fields: Record<string, unknown> }> = []
  const outcomes = await ensureTopics(kafka, [topic], (msg, fields) => lines.push({ msg, fields }))
  t.same(outcomes.map(o => o.outcome), ['exists'])
  const low = lines.find(l => l.msg.includes('below kafka.topicReplicationFactor'))
  t.ok(low, 'a replication warning')
  t.same(low?.fields, { topic, replicationFactor: 1, configuredReplicationFactor: 2 })
  t.match(low?.msg, `Kafka topic ${topic} has replication factor 1, below kafka.topicReplicationFactor=2`)
  t.match(low?.msg, `kafka-reassign-partitions.sh --bootstrap-server ${kafkaBootstrap}`)
})
