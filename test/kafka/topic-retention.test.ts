// Topic retention against the real broker: ensureTopics creates the trades and the
// dead-letter topic with kafka.topicRetentionMs / deadLetterRetentionMs (read back with
// the stack's own kafka-configs tool, ConfigCommand, since the daemon's client cannot
// read topic configs); a topic that already exists keeps its retention, and the start
// says so with the setting, the topic and the commands that check and fix it.
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { validateConfig } from '../../daemon/config/load.js'
import { ensureTopics, existingTopicNotice, topicRetention } from '../../daemon/kafka/admin.js'
import { findJava } from '../../tools/stack/java.js'
import { stackOptions } from '../../tools/stack/options.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, uniqueName } from '../fixtures/kafka.js'

t.setTimeout(180_000)

const { kafkaBootstrap } = testEndpoints()

/** The topic's retention.ms as the broker has it (its dynamic config), or null when unset. */
async function brokerRetentionMs (topic: string): Promise<string | null> {
  const o = stackOptions(process.env)
  const java = findJava(process.env, o.javaHome).bin
  const { stdout } = await promisify(execFile)(java, [
    '-cp', `${join(o.cacheDir, 'lib', 'kafka')}/*`, 'kafka.admin.ConfigCommand',
    '--bootstrap-server', kafkaBootstrap, '--entity-type', 'topics', '--entity-name', topic, '--describe'
  ], { timeout: 60_000 })
  return /\bretention\.ms=(-?\d+)/.exec(stdout)?.[1] ?? null
}

t.test('ensureTopics creates both topics with their configured retention', async t => {
  const topic = uniqueName('finnhubd.retention-test')
  const dlq = `${topic}.dlq`
  const kafka = validateConfig({ kafka: { bootstrapServers: [kafkaBootstrap], topic, deadLetterTopic: dlq, topicRetentionMs: 3_600_000, deadLetterRetentionMs: -1 } }).kafka
  const lines: string[] = []
  const outcomes = await ensureTopics(kafka, [topic, dlq], msg => lines.push(msg))
  t.same(outcomes, [{ topic, outcome: 'created', retentionMs: 3_600_000 }, { topic: dlq, outcome: 'created', retentionMs: -1 }])
  t.same(lines, [], 'nothing to say about topics it created')
  t.equal(await brokerRetentionMs(topic), '3600000', 'the trades topic has kafka.topicRetentionMs')
  t.equal(await brokerRetentionMs(dlq), '-1', 'the dead-letter topic keeps records forever (-1)')

  const again = await ensureTopics(kafka, [topic, dlq], msg => lines.push(msg))
  t.same(again.map(o => o.outcome), ['exists', 'exists'])
  t.same(lines, [], 'a topic this process created is not reported as foreign when the other role ensures it')
})

t.test('an existing topic with another retention is left alone and reported with the fix', async t => {
  const topic = uniqueName('finnhubd.retention-old')
  // Made elsewhere (another tool, an older finnhubd): the broker's default retention.
  await createTopic(kafkaBootstrap, topic, 1)
  const kafka = validateConfig({ kafka: { bootstrapServers: [kafkaBootstrap], topic, topicRetentionMs: 86_400_000 } }).kafka
  const lines: Array<{ msg: string, fields: Record<string, unknown> }> = []
  const outcomes = await ensureTopics(kafka, [topic], (msg, fields) => lines.push({ msg, fields }))
  t.same(outcomes, [{ topic, outcome: 'exists', retentionMs: 86_400_000 }])
  t.equal(lines.length, 1, 'one line for the topic')
  const line = lines[0] as { msg: string, fields: Record<string, unknown> }
  t.same(line.fields, { topic, configuredRetentionMs: 86_400_000 })
  t.match(line.msg, `Kafka topic ${topic} exists, so kafka.topicRetentionMs=86400000 was not applied`)
  t.match(line.msg, 'cannot be read from here (node-rdkafka has no DescribeConfigs)')
  t.match(line.msg, `kafka-configs.sh --bootstrap-server ${kafkaBootstrap} --entity-type topics --entity-name ${topic} --describe`)
  t.match(line.msg, '--alter --add-config retention.ms=86400000')
  t.equal(await brokerRetentionMs(topic), null, 'the topic still has no retention of its own: finnhubd changed nothing')
})

t.test('the notice names the dead-letter setting for the dead-letter topic, and a client config off plaintext', async t => {
  const kafka = validateConfig({ kafka: { security: { protocol: 'sasl_ssl', sasl: { username: 'u', password: 'p' } } } }).kafka
  t.same(topicRetention(kafka, kafka.deadLetterTopic), { key: 'kafka.deadLetterRetentionMs', ms: 2_592_000_000 })
  t.same(topicRetention(kafka, kafka.topic), { key: 'kafka.topicRetentionMs', ms: 604_800_000 })
  const notice = existingTopicNotice(kafka, kafka.deadLetterTopic)
  t.match(notice, 'kafka.deadLetterRetentionMs=2592000000')
  t.match(notice, '--command-config <client.properties> --entity-type topics --entity-name finnhub.trades.dlq')
  t.notMatch(notice, /\bp\b.*password|=p\b/, 'no credential in it')
})
