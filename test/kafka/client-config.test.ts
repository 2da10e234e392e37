// Every Kafka client of the daemon connects the same way: the librdkafka configuration
// starts from kafkaClientConfig (security, SASL, TLS, the deployment's pass-through
// properties), checked three ways: the pure mapping, the configurations the producer,
// consumer and topic reader really hand node-rdkafka (through the fakes), and a scan of
// the sources for any client built without it. The secured stack runs them for real
// (test/security/).
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { validateConfig } from '../../daemon/config/load.js'
import { OWNED_KAFKA_PROPERTIES, ownedKafkaProperty } from '../../daemon/config/schema.js'
import { isFinnhubdError } from '../../daemon/core/errors.js'
import { TradeDecoder, TradeEncoder, singleObjectFingerprint } from '../../daemon/core/avro-codec.js'
import { writerSchemasFor } from '../../daemon/core/process-batch.js'
import { kafkaClientConfig, kafkaSecurityProperties } from '../../daemon/kafka/client-config.js'
import { TradeConsumer } from '../../daemon/kafka/consumer.js'
import { TradeProducer } from '../../daemon/kafka/producer.js'
import { TopicReader } from '../../daemon/kafka/topic-reader.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { loadTradeType, PROJECT_ROOT, SCHEMAS_DIR } from '../../daemon/paths.js'
import { FakeConsumer, FakeProducer } from '../fixtures/fake-rdkafka.js'
import { holds, runs } from '../fixtures/fuzz.js'

const SECURE = {
  kafka: {
    security: {
      protocol: 'sasl_ssl',
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'finnhubd', password: 'p4ss-w0rd' },
      ssl: { caFile: join(PROJECT_ROOT, 'package.json'), verifyHostname: true }
    },
    clientProperties: { 'client.rack': 'use1-az1', 'socket.connection.setup.timeout.ms': 20_000 }
  }
} as const

t.test('the security properties for each protocol', async t => {
  const base = validateConfig({}).kafka.security
  t.same(kafkaSecurityProperties(base), { 'security.protocol': 'plaintext' }, 'plaintext sets nothing else')
  const secure = validateConfig(SECURE).kafka.security
  t.same(kafkaSecurityProperties(secure), {
    'security.protocol': 'sasl_ssl',
    'sasl.mechanisms': 'SCRAM-SHA-512',
    'sasl.username': 'finnhubd',
    'sasl.password': 'p4ss-w0rd',
    'ssl.ca.location': join(PROJECT_ROOT, 'package.json'),
    'ssl.endpoint.identification.algorithm': 'https'
  })
  const mtls = validateConfig({ kafka: { security: { protocol: 'ssl', ssl: { caFile: 'ca.pem', certificateFile: 'c.pem', keyFile: 'k.pem', keyPassword: 'kp', verifyHostname: false } } } }).kafka.security
  t.same(kafkaSecurityProperties(mtls), {
    'security.protocol': 'ssl',
    'ssl.ca.location': 'ca.pem',
    'ssl.certificate.location': 'c.pem',
    'ssl.key.location': 'k.pem',
    'ssl.key.password': 'kp',
    'ssl.endpoint.identification.algorithm': 'none'
  }, 'mutual TLS: no SASL properties, hostname verification off only when asked')
  const saslPlain = validateConfig({ kafka: { security: { protocol: 'sasl_plaintext', sasl: { mechanism: 'PLAIN', username: 'u', password: 'p' } } } }).kafka.security
  t.notOk(Object.keys(kafkaSecurityProperties(saslPlain)).some(k => k.startsWith('ssl.')), 'sasl_plaintext sets no TLS property')
})

t.test('the pass-through properties reach the client; the daemon\'s own cannot be overridden', async t => {
  const kafka = validateConfig(SECURE).kafka
  const conf = kafkaClientConfig(kafka, '-x')
  t.equal(conf['client.rack'], 'use1-az1')
  t.equal(conf['socket.connection.setup.timeout.ms'], 20_000)
  t.equal(conf['client.id'], 'finnhubd-x')
  t.equal(conf['metadata.broker.list'], '127.0.0.1:19092')
})

t.test('owned properties are refused by name, with the reason, in any case', async t => {
  for (const name of Object.keys(OWNED_KAFKA_PROPERTIES)) {
    try {
      validateConfig({ kafka: { clientProperties: { [name]: 'x' } } })
      t.fail(`${name} was accepted`)
    } catch (err) {
      t.ok(isFinnhubdError(err, 'FINNHUBD_ERR_CONFIG'))
      t.match((err as Error).message, `kafka.clientProperties.${name}`)
      t.match((err as Error).message, OWNED_KAFKA_PROPERTIES[name] as string)
      t.notMatch((err as Error).message, /got "x"/, 'the value is not quoted back (it may be a secret)')
    }
  }
  t.match(ownedKafkaProperty('SASL.PASSWORD'), /kafka\.security\.sasl/)
  t.match(ownedKafkaProperty('ssl.keystore.password'), /kafka\.security\.ssl/)
  t.equal(ownedKafkaProperty('client.rack'), null)
  holds(t, fc.property(
    fc.constantFrom(...Object.keys(OWNED_KAFKA_PROPERTIES), 'sasl.jaas.config', 'sasl.oauthbearer.config', 'ssl.key.pem', 'ssl_engine_callback_data'),
    fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
    (name, upper) => {
      const cased = [...name].map((c, i) => upper[i % upper.length] === true ? c.toUpperCase() : c).join('')
      return ownedKafkaProperty(cased) !== null
    }), { numRuns: runs(300) })
})

const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const log = createLogger({ level: 'fatal', write: () => {} })

t.test('the producer, the consumer and the topic reader hand node-rdkafka the security settings', async t => {
  const config = validateConfig(SECURE)
  const expected = kafkaSecurityProperties(config.kafka.security)
  const producerFake = new FakeProducer()
  const producer = new TradeProducer({ kafka: config.kafka, encoder: new TradeEncoder(type, { kind: 'single-object' }), log, counters: createIngestCounters(), client: producerFake.factory() })
  const consumerFake = new FakeConsumer()
  const consumer = new TradeConsumer({ kafka: config.kafka, batchSize: 10, maxInFlightBatches: 1, log, counters: createProcessCounters(), onBatch: async () => {}, client: consumerFake.factory() })
  const readerFake = new FakeConsumer()
  const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), []))
  const reader = new TopicReader({ kafka: config.kafka, decoder, purpose: 'unit', client: readerFake.factory() })
  await reader.latest(config.kafka.topic, 1).catch(() => {})
  for (const [name, global] of [['producer', producerFake.global], ['consumer', consumerFake.global], ['topic reader', readerFake.global]] as const) {
    t.match(global, expected, `${name}: security`)
    t.match(global, { 'client.rack': 'use1-az1' }, `${name}: pass-through`)
  }
  t.equal(producerFake.global['enable.idempotence'], true, 'the producer\'s own guarantees stay')
  t.equal(consumerFake.global['enable.auto.commit'], false, 'the consumer\'s own guarantees stay')
  await reader.close()
  t.ok(producer !== null && consumer !== null)
})

t.test('no Kafka client in the daemon is built without kafkaClientConfig', async t => {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name))
      else if (e.name.endsWith('.ts')) files.push(join(dir, e.name))
    }
  }
  walk(join(PROJECT_ROOT, 'daemon'))
  let builders = 0
  for (const file of files) {
    if (file.endsWith(join('kafka', 'clients.ts'))) continue // the factory seam: passes its argument through
    const text = readFileSync(file, 'utf8')
    const built = (text.match(/new Kafka\.(?:Producer|KafkaConsumer|HighLevelProducer)\(|AdminClient\.create\(|\(opts\.client \?\? real(?:Producer|Consumer)\)|\(this\.#opts\.client \?\? real(?:Producer|Consumer)\)/g) ?? []).length
    if (built === 0) continue
    builders += built
    const configured = (text.match(/kafkaClientConfig\(/g) ?? []).length
    t.ok(configured >= built, `${file.slice(PROJECT_ROOT.length + 1)}: ${built} client(s) built, ${configured} from kafkaClientConfig`)
  }
  t.ok(builders >= 6, `found the daemon's clients (${builders})`)
})
