// What a failed Kafka connection tells the operator: librdkafka's texts for a refused
// login, an untrusted or misnamed certificate and a listener of the other protocol
// (as librdkafka 2.12 words them; the secured stack produces them for real in
// test/security/) each become a FinnhubdError naming the setting to change, and
// anything else (a broker down) is left to the retrying path.
import t from 'tap'
import fc from 'fast-check'
import { validateConfig } from '../../daemon/config/load.js'
import { definitiveKafkaError, KafkaConnectWatch } from '../../daemon/kafka/connect-error.js'
import { holds, runs } from '../fixtures/fuzz.js'

const kafka = validateConfig({ kafka: { bootstrapServers: ['broker-1:9096'], security: { protocol: 'sasl_ssl', sasl: { username: 'finnhubd', password: 'Sup3r-s3cret-pw' } } } }).kafka

const CASES: Array<[string, { code?: number, message: string }, string, RegExp]> = [
  ['wrong password', { code: -169, message: 'sasl_ssl://127.0.0.1:29092/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 305ms in state AUTH_REQ)' },
    'FINNHUBD_ERR_KAFKA_AUTH', /refused the SASL login of user "finnhubd" with SCRAM-SHA-512 .*kafka\.security\.sasl\.username and its password/],
  ['untrusted CA', { code: -181, message: 'ssl://127.0.0.1:29092/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 4ms in state SSL_HANDSHAKE)' },
    'FINNHUBD_ERR_KAFKA_TLS', /could not be verified .*set kafka\.security\.ssl\.caFile.*or it does not name the host connected to/],
  // librdkafka 2.12 words a certificate for another name as it words an unknown CA (seen through a relay on 127.0.0.2).
  ['certificate for another host', { message: 'sasl_ssl://127.0.0.2:29192/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 18ms in state SSL_HANDSHAKE)' },
    'FINNHUBD_ERR_KAFKA_TLS', /could not be verified .*does not name the host connected to: use the broker names its certificate lists in kafka\.bootstrapServers/],
  // OpenSSL's own verify text, when a build reports it.
  ['OpenSSL: IP address mismatch', { code: -181, message: 'ssl://127.0.0.2:29092/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: IP address mismatch' },
    'FINNHUBD_ERR_KAFKA_TLS', /is not for the host connected to .*kafka\.bootstrapServers/],
  ['unsupported mechanism', { message: 'sasl_ssl://127.0.0.1:29092/bootstrap: SASL PLAIN mechanism handshake failed: Broker: Unsupported SASL mechanism: broker\'s supported mechanisms: SCRAM-SHA-512 (after 302ms in state AUTH_HANDSHAKE)' },
    'FINNHUBD_ERR_KAFKA_AUTH', /kafka\.security\.sasl\.mechanism/],
  ['plaintext against TLS', { code: -195, message: 'plaintext://127.0.0.1:29092/bootstrap: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker version is < 0.10 (see api.version.request) (after 2ms in state APIVERSION_QUERY)' },
    'FINNHUBD_ERR_KAFKA_PROTOCOL', /speaks another protocol than kafka\.security\.protocol=sasl_ssl .*set kafka\.security\.protocol/],
  ['TLS against plaintext', { code: -181, message: 'ssl://127.0.0.1:19092/bootstrap: SSL handshake failed: error:0A00010B:SSL routines::wrong version number: connecting to a PLAINTEXT broker listener? (after 1ms in state SSL_HANDSHAKE)' },
    'FINNHUBD_ERR_KAFKA_PROTOCOL', /another protocol/]
]

t.test('each definitive failure names its setting and never the password', async t => {
  for (const [name, err, code, message] of CASES) {
    const out = definitiveKafkaError(err, kafka)
    t.equal(out?.code, code, name)
    t.match(out?.message, message, name)
    t.match(out?.message, 'broker-1:9096', `${name}: names the brokers`)
    t.notMatch(out?.message ?? '', /Sup3r-s3cret-pw/, `${name}: no password`)
  }
})

t.test('a broker that is down or slow is not definitive: librdkafka keeps trying', async t => {
  for (const message of [
    '127.0.0.1:19092/bootstrap: Connect to ipv4#127.0.0.1:19092 failed: Connection refused (after 0ms in state CONNECT)',
    '1/1 brokers are down',
    'Local: Broker transport failure',
    'Local: Timed out',
    'broker-1:9096/bootstrap: Failed to resolve \'broker-1:9096\': Name or service not known (after 4ms in state CONNECT)'
  ]) {
    t.equal(definitiveKafkaError({ code: -195, message }, kafka), null, message)
  }
})

t.test('any text: the answer is null or a coded error whose message holds no password', async t => {
  holds(t, fc.property(fc.oneof(fc.string(), fc.constantFrom(...CASES.map(c => c[1].message))), fc.integer({ min: -200, max: 100 }), (message, code) => {
    const out = definitiveKafkaError({ code, message: `${message} Sup3r-s3cret-pw`.slice(0, 10) + message }, kafka)
    return out === null || (/^FINNHUBD_ERR_KAFKA_(AUTH|TLS|PROTOCOL)$/.test(out.code) && out.message.length < 2_000)
  }), { numRuns: runs(500) })
})

t.test('a plaintext client whose connection is closed at the first request, twice, is taken for the other protocol; once is not', async t => {
  const closed = '127.0.0.1:29092/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 3ms in state APIVERSION_QUERY)'
  const plain = validateConfig({ kafka: { bootstrapServers: ['127.0.0.1:29092'] } }).kafka
  const watch = new KafkaConnectWatch(plain)
  t.equal(watch.observe({ message: closed }), null, 'once: a broker restarting could do that')
  t.match(watch.observe({ message: closed }), { code: 'FINNHUBD_ERR_KAFKA_PROTOCOL', message: /probably expects TLS, and kafka\.security\.protocol is plaintext; set kafka\.security\.protocol .* to ssl or sasl_ssl/ })
  // A TLS client never gets that reading (its handshake failing says more), nor another disconnect.
  const tls = new KafkaConnectWatch(kafka)
  t.equal(tls.observe({ message: closed.replace('plaintext', 'sasl_ssl') }), null)
  t.equal(tls.observe({ message: closed }), null)
  const other = new KafkaConnectWatch(plain)
  for (let i = 0; i < 3; i++) t.equal(other.observe({ message: '127.0.0.1:29092/bootstrap: Disconnected (after 5000ms in state UP)' }), null, 'a connection that was up and dropped')
  // The definitive texts go through the watch too.
  t.match(new KafkaConnectWatch(kafka).observe(CASES[0]![1]), { code: 'FINNHUBD_ERR_KAFKA_AUTH' })
})

t.test('the watch on any sequence of lines: null or a coded error, never a throw, never the password', async t => {
  const lines = fc.array(fc.oneof(fc.string(), fc.constantFrom(...CASES.map(c => c[1].message)),
    fc.constant('127.0.0.1:1/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 3ms in state APIVERSION_QUERY)')), { maxLength: 8 })
  const plain = validateConfig({ kafka: { bootstrapServers: ['127.0.0.1:1'] } }).kafka
  holds(t, fc.property(lines, fc.boolean(), (texts, tls) => {
    const watch = new KafkaConnectWatch(tls ? kafka : plain)
    return texts.every(message => {
      const out = watch.observe({ message })
      return out === null || (/^FINNHUBD_ERR_KAFKA_(AUTH|TLS|PROTOCOL)$/.test(out.code) && !out.message.includes('Sup3r-s3cret-pw'))
    })
  }), { numRuns: runs(300) })
})

t.test('probeKafka against a port where nothing listens: the connect error, not a crash of the probe\'s own disconnect', async t => {
  // node-rdkafka's Producer throws "Producer not connected" when asked to disconnect before
  // it connected; the probe must report why it could not connect instead (real librdkafka,
  // no broker needed).
  const { probeKafka } = await import('../../daemon/kafka/admin.js')
  const down = validateConfig({ kafka: { bootstrapServers: ['127.0.0.1:1'], connectTimeoutMs: 1000 } }).kafka
  await t.rejects(probeKafka(down, 1000), { code: 'FINNHUBD_ERR_KAFKA_UNREACHABLE', message: /cannot reach Kafka at 127\.0\.0\.1:1 .*kafka\.bootstrapServers/ })
})

t.test('the probe\'s attempts: 3 s, then each twice as long, adding up to the connect timeout', async t => {
  const { probeAttempts } = await import('../../daemon/kafka/admin.js')
  t.same(probeAttempts(15_000), [3000, 6000, 6000])
  t.same(probeAttempts(30_000), [3000, 6000, 12_000, 9000])
  t.same(probeAttempts(1500), [1500])
  t.same(probeAttempts(0), [1])
  holds(t, fc.property(fc.integer({ min: 1, max: 3_600_000 }), timeout => {
    const a = probeAttempts(timeout)
    return a.reduce((x, y) => x + y, 0) === timeout && a[0] === Math.min(3000, timeout) &&
      a.every((ms, i) => ms > 0 && (i === 0 || i === a.length - 1 || ms === 2 * (a[i - 1] ?? 0)))
  }), { numRuns: runs(300) })
})
