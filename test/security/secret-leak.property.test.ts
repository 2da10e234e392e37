// No secret value ever leaves the daemon: generated secrets (printable, JSON-hostile,
// Unicode) pushed through every path that prints something — config errors of every
// kind (a secret beside a syntax error, in an unknown key, in a URL, in the pass-through
// properties, too short), `finnhubd config`, reload diffs, log lines with the secret in
// the message, fields and errors, the connection errors of Kafka, Cassandra and the
// schema registry — and the output searched for the value. The HTTP endpoints and the
// console are searched in the secured end-to-end test (test/security/secure-pipeline).
import t from 'tap'
import { chmodSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import fc from 'fast-check'
import { stringify as yamlStringify } from 'yaml'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { main } from '../../daemon/cli.js'
import { loadConfig, validateConfig } from '../../daemon/config/load.js'
import { describeChange, diffConfig } from '../../daemon/config/reload.js'
import { SECRET_SOURCES } from '../../daemon/config/secrets.js'
import type { Config } from '../../daemon/config/schema.js'
import { definitiveKafkaError } from '../../daemon/kafka/connect-error.js'
import { registerSchema } from '../../daemon/kafka/schema-registry.js'
import { createLogger } from '../../daemon/log.js'
import { freePort } from '../fixtures/ports.js'
import { runs } from '../fixtures/fuzz.js'

// At least 8 characters with a letter and a digit (a real secret; a 1-character one
// would be found in any text), from printable ASCII, JSON's special characters and Unicode.
const secret = fc.tuple(
  fc.string({ unit: fc.constantFrom(...[...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&()*+,-./:;<=>?@[]^_{|}~ "\'\\é€😀']), minLength: 8, maxLength: 40 }),
  fc.integer({ min: 0, max: 9 })
).map(([s, d]) => `k${d}${s}`)

// Every way a text could carry the secret.
function leaks (text: string, s: string): string | null {
  for (const form of [s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s), Buffer.from(s).toString('base64')]) {
    if (form.length >= 4 && text.includes(form)) return form
  }
  return null
}

/** The first 12 characters (whole code points): a console token too short to be valid. */
const head = (s: string): string => Array.from(s).slice(0, 12).join('')

let n = 0
function writeConfig (dir: string, content: string, ext: string): string {
  const file = join(dir, `c${n++}.${ext}`)
  writeFileSync(file, content)
  chmodSync(file, 0o600)
  return file
}

function errorOf (fn: () => unknown): string {
  try {
    fn()
    return ''
  } catch (err) {
    return `${(err as Error).message}\n${String((err as { cause?: unknown }).cause ?? '')}`
  }
}

t.test(`config errors never quote a secret (${runs(300)} generated secrets × 9 placements)`, async t => {
  const dir = t.testdir({})
  const placements: Array<(s: string) => [string, string]> = [
    s => [`{"finnhub": {"token": ${JSON.stringify(s)} "symbols": []}}`, 'json'], // syntax error right after it
    s => [`{"cassandra": {"password": ${JSON.stringify(s)}`, 'json'], // unterminated
    s => [`finnhub:\n  token: ${JSON.stringify(s)}\n  url: [\n`, 'yaml'],
    s => [`a: *${s.replace(/[^A-Za-z0-9]/g, 'x')}\n`, 'yaml'], // an alias named like it
    s => [JSON.stringify({ kafka: { security: { sasl: { pasword: s } } } }), 'json'], // a typo'd key
    s => [JSON.stringify({ kafka: { clientProperties: { 'sasl.password': s } } }), 'json'], // the pass-through map
    s => [JSON.stringify({ finnhub: { url: `wss://ws.finnhub.io/?token=${encodeURIComponent(s)}` } }), 'json'],
    s => [JSON.stringify({ kafka: { schemaRegistryUrl: `https://u:${encodeURIComponent(s)}@registry.example` } }), 'json'],
    s => [yamlStringify({ http: { host: '0.0.0.0', behindTlsProxy: true, console: { token: head(s) } }, cassandra: { password: s } }), 'yaml'] // too short, and a password without a user
  ]
  fc.assert(fc.property(secret, fc.integer({ min: 0, max: placements.length - 1 }), (s, i) => {
    const [content, ext] = (placements[i] as (s: string) => [string, string])(s)
    const message = errorOf(() => loadConfig({ file: writeConfig(dir, content, ext), env: {} }))
    if (message === '') throw new Error(`placement ${i} was accepted`)
    const leak = leaks(message, s) ?? leaks(message, head(s))
    if (leak !== null) throw new Error(`placement ${i} leaked ${JSON.stringify(leak)}: ${message.slice(0, 300)}`)
  }), { seed: 4242, numRuns: runs(300) })
  t.pass('no error quoted a secret')
})

t.test(`\`finnhubd config\` and check-config print no secret, from any source (${runs(60)} runs)`, async t => {
  const dir = t.testdir({ creds: {} })
  await fc.assert(fc.asyncProperty(fc.array(secret, { minLength: SECRET_SOURCES.length, maxLength: SECRET_SOURCES.length }), fc.integer({ min: 0, max: 2 }), async (generated, how) => {
    const secrets = generated.map(s => `${s}-16-chars-at-least`) // the console token's minimum
    const env: Record<string, string> = {}
    const raw: Record<string, unknown> = {
      kafka: { security: { protocol: 'sasl_ssl', sasl: { username: 'u' }, ssl: { keyFile: join(dir, 'key.pem'), certificateFile: join(dir, 'key.pem') } }, schemaRegistry: { username: 'u' } },
      cassandra: { username: 'u', tls: { enabled: true, keyFile: join(dir, 'key.pem'), certificateFile: join(dir, 'key.pem') } }
    }
    writeFileSync(join(dir, 'key.pem'), 'not really a key')
    chmodSync(join(dir, 'key.pem'), 0o600)
    SECRET_SOURCES.forEach((src, i) => {
      const value = secrets[i] as string
      if (how === 0) env[src.env] = value
      else if (how === 1) {
        const f = join(dir, `${src.credential}.secret`)
        writeFileSync(f, `${value}\n`)
        chmodSync(f, 0o600)
        let node = raw
        for (const k of src.fileKey.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>
        node[src.fileKey[src.fileKey.length - 1] as string] = f
      } else {
        let node = raw
        for (const k of src.path.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>
        node[src.path[src.path.length - 1] as string] = value
      }
    })
    const file = writeConfig(dir, JSON.stringify(raw), 'json')
    const out: string[] = []
    for (const command of ['config', 'check-config']) {
      const code = await main(['--config', file, command], { env, out: l => out.push(l), err: l => out.push(l) })
      if (code !== 0) throw new Error(`${command} exited ${code}: ${out.join('\n').slice(0, 400)}`)
    }
    const text = out.join('\n')
    for (const s of secrets) {
      const leak = leaks(text, s)
      if (leak !== null) throw new Error(`leaked ${JSON.stringify(leak)}`)
    }
    if (!text.includes('[redacted]')) throw new Error('nothing was shown as redacted')
  }), { seed: 4343, numRuns: runs(60) })
  t.pass('no secret printed')
})

t.test(`reload diffs show that a secret changed, never its value (${runs(300)} runs)`, async t => {
  fc.assert(fc.property(secret, secret, (a, b) => {
    const mk = (s: string): Config => validateConfig({ finnhub: { token: s }, cassandra: { username: 'u', password: s }, kafka: { schemaRegistry: { username: 'u', password: s }, security: { protocol: 'sasl_ssl', sasl: { username: 'u', password: s } } }, http: { console: { token: `${s}-padding-to-16` } } })
    const changes = diffConfig(mk(a), mk(b)).map(describeChange)
    const text = JSON.stringify(changes)
    if (a !== b && changes.length === 0) throw new Error('no change seen')
    for (const s of [a, b]) if (leaks(text, s) !== null) throw new Error(`leaked: ${text.slice(0, 300)}`)
  }), { seed: 4444, numRuns: runs(300) })
  t.pass('no value in a diff')
})

t.test(`log lines never carry a configured secret, wherever it is put (${runs(500)} runs)`, async t => {
  fc.assert(fc.property(secret, fc.string(), fc.constantFrom('msg', 'field', 'error', 'nested', 'cause'), (s, around, where) => {
    const lines: string[] = []
    const log = createLogger({ level: 'trace', write: l => lines.push(l) })
    log.redact([s])
    const child = log.child({ component: 'x' })
    const text = `${around}${s}${around}`
    if (where === 'msg') child.error(text)
    else if (where === 'field') child.warn('m', { url: text })
    else if (where === 'error') child.error('m', { err: new Error(text) })
    else if (where === 'nested') child.info('m', { a: { b: [text] } })
    else child.limited('error', 'k', 'm', { err: new Error('outer', { cause: text }), reason: text })
    const out = lines.join('\n')
    if (lines.length === 0) throw new Error('nothing was logged')
    if (out.includes(s) || out.includes(JSON.stringify(s).slice(1, -1))) throw new Error(`leaked in ${where}: ${out.slice(0, 300)}`)
    JSON.parse(lines[0] as string) // still one valid JSON object
  }), { seed: 4545, numRuns: runs(500) })
  t.pass('every line redacted')
})

t.test('connection errors carry no password: Kafka, Cassandra, the schema registry', async t => {
  const samples = fc.sample(secret, { seed: 4646, numRuns: 20 })
  for (const s of samples) {
    const kafka = validateConfig({ kafka: { security: { protocol: 'sasl_ssl', sasl: { username: 'u', password: s } } } }).kafka
    for (const message of ['SASL authentication error: Authentication failed', 'SSL handshake failed: certificate verify failed', 'wrong version number: connecting to a PLAINTEXT broker listener?']) {
      const err = definitiveKafkaError({ code: -169, message }, kafka)
      t.equal(leaks(err?.message ?? '', s), null)
    }
  }
  // A real refused connection: nothing listens on the port.
  const port = await freePort()
  const s = samples[0] as string
  const cassandra = validateConfig({ cassandra: { contactPoints: ['127.0.0.1'], port, username: 'u', password: s } }).cassandra
  const cassandraError = await connectCassandra(cassandra).then(() => '', err => `${(err as Error).message} ${String((err as { cause?: unknown }).cause)}`)
  t.match(cassandraError, /cannot reach Cassandra at 127\.0\.0\.1:\d+/)
  t.equal(leaks(cassandraError, s), null, 'Cassandra: no password')
  // A registry that refuses, and one that echoes what it got.
  const server = createServer((req, res) => {
    res.writeHead(req.url?.includes('echo') === true ? 500 : 401, { 'content-type': 'text/plain' })
    res.end(`got ${req.headers.authorization ?? ''}`)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const at = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const refused = await registerSchema({ registryUrl: at, subject: 's', schema: '{}', username: 'u', password: s }).then(() => '', err => (err as Error).message)
  t.match(refused, /refused the credentials of user "u" \(HTTP 401\)/)
  t.equal(leaks(refused, s), null, 'registry 401: no password')
  const echoed = await registerSchema({ registryUrl: `${at}/echo`, subject: 's', schema: '{}', username: 'u', password: s }).then(() => '', err => (err as Error).message)
  t.match(echoed, /HTTP 500/)
  t.equal(leaks(echoed, s), null, 'a registry that echoes the Authorization header back: not repeated')
})
