// Where secrets come from and what is said about them: the environment over a systemd
// credential over a `…File` setting over the inline value; files others can read get a
// warning with the fix; a secret in a URL, a secret both inline and in a file, an
// unreadable or empty file are config errors naming the key; what needs a secret
// (SASL, the console off loopback) is checked once the secrets are in.
import t from 'tap'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../daemon/config/load.js'
import { SECRET_SOURCES } from '../../daemon/config/secrets.js'
import { configError } from '../fixtures/config-error.js'

function secretFile (dir: string, name: string, text: string, mode = 0o600): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  chmodSync(file, mode)
  return file
}

t.test('each secret: environment over systemd credential over file over inline', async t => {
  const dir = t.testdir({})
  for (const src of SECRET_SOURCES) {
    // One credential a folder, as systemd makes it for a unit that loads just that one.
    const creds = join(dir, `creds-${src.credential}`)
    mkdirSync(creds)
    const key = src.path.join('.')
    const fileKey = src.fileKey.join('.')
    const file = secretFile(dir, `${src.credential}.file`, `from-file-${src.credential}\nsecond line ignored\n`)
    secretFile(creds, src.credential, `from-credential-${src.credential}\n`)
    const nest = (path: readonly string[], value: unknown): Record<string, unknown> =>
      path.reduceRight<unknown>((inner, k) => ({ [k]: inner }), value) as Record<string, unknown>
    const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
      const out: Record<string, unknown> = { ...a }
      for (const [k, v] of Object.entries(b)) {
        out[k] = typeof v === 'object' && v !== null && typeof out[k] === 'object' ? merge(out[k] as Record<string, unknown>, v as Record<string, unknown>) : v
      }
      return out
    }
    // What each secret needs beside it to be valid on its own.
    const companions: Record<string, Record<string, unknown>> = {
      'kafka.security.sasl.password': { kafka: { security: { protocol: 'sasl_ssl', sasl: { username: 'u' } } } },
      'kafka.security.ssl.keyPassword': { kafka: { security: { protocol: 'ssl', ssl: { keyFile: file, certificateFile: file } } } },
      'kafka.schemaRegistry.password': { kafka: { schemaRegistry: { username: 'u' } } },
      'cassandra.password': { cassandra: { username: 'u' } },
      'cassandra.tls.keyPassphrase': { cassandra: { tls: { enabled: true, keyFile: file, certificateFile: file } } }
    }
    const base = companions[key] ?? {}
    const withFile = join(dir, `${src.credential}.json`)
    writeFileSync(withFile, JSON.stringify(merge(base, nest(src.fileKey, file))))
    chmodSync(withFile, 0o600)
    const valueOf = (c: unknown): unknown => src.path.reduce<unknown>((n, k) => (n as Record<string, unknown>)[k], c)

    const fromFile = loadConfig({ file: withFile, env: {} })
    t.equal(valueOf(fromFile.config), `from-file-${src.credential}`, `${key}: from ${fileKey} (its first line)`)
    t.equal(fromFile.sources[key], `file ${file}`)
    const fromCred = loadConfig({ file: withFile, env: { CREDENTIALS_DIRECTORY: creds } })
    t.equal(valueOf(fromCred.config), `from-credential-${src.credential}`, `${key}: the systemd credential ${src.credential} wins over the file`)
    t.equal(fromCred.sources[key], `systemd credential ${src.credential}`)
    const fromEnv = loadConfig({ file: withFile, env: { CREDENTIALS_DIRECTORY: creds, [src.env]: `from-env-${src.env}` } })
    t.equal(valueOf(fromEnv.config), `from-env-${src.env}`, `${key}: ${src.env} wins over everything`)
    t.equal(fromEnv.sources[key], src.env)
  }
})

t.test('a secret file others can read gets a warning with the fix; a private one none', async t => {
  const dir = t.testdir({})
  const open = secretFile(dir, 'token-open', 'abc123abc123\n', 0o644)
  const closed = secretFile(dir, 'token-closed', 'abc123abc123\n', 0o600)
  const warned = loadConfig({ env: {}, file: secretFile(dir, 'a.json', JSON.stringify({ finnhub: { tokenFile: open } })) })
  t.match(warned.warnings.join('\n'), new RegExp(`finnhub\\.tokenFile: the secret file ${open} is readable or writable by its group and every user \\(mode 0644\\): run chmod 600 ${open}`))
  const quiet = loadConfig({ env: {}, file: secretFile(dir, 'b.json', JSON.stringify({ finnhub: { tokenFile: closed } })) })
  t.same(quiet.warnings, [])
  const key = secretFile(dir, 'client.key', '-----BEGIN PRIVATE KEY-----\n', 0o640)
  const cert = secretFile(dir, 'client.crt', 'cert', 0o644)
  const keyWarned = loadConfig({ env: {}, file: secretFile(dir, 'c.json', JSON.stringify({ cassandra: { tls: { enabled: true, certificateFile: cert, keyFile: key } } })) })
  t.match(keyWarned.warnings.join('\n'), /cassandra\.tls\.keyFile: the secret file .*client\.key is readable or writable by its group \(mode 0640\)/, 'a private key is a secret file too')
})

t.test('a config file holding an inline secret and readable by others gets a warning', async t => {
  const dir = t.testdir({})
  const file = secretFile(dir, 'inline.yaml', 'finnhub:\n  token: abcdefabcdef\n', 0o644)
  t.match(loadConfig({ file, env: {} }).warnings.join('\n'), new RegExp(`the config file ${file} holds a secret and is readable by its group and every user \\(mode 0644\\): run chmod 600`))
  chmodSync(file, 0o600)
  t.same(loadConfig({ file, env: {} }).warnings, [])
  const noSecret = secretFile(dir, 'plain.yaml', 'logLevel: warn\n', 0o644)
  t.same(loadConfig({ file: noSecret, env: {} }).warnings, [], 'a world-readable file without secrets is fine')
})

t.test('unreadable, empty, doubled: errors naming the key', async t => {
  const dir = t.testdir({})
  const empty = secretFile(dir, 'empty', '\n')
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'a.json', JSON.stringify({ cassandra: { username: 'u', passwordFile: join(dir, 'nope') } })) })).message,
    /cassandra\.passwordFile: cannot read .*nope \(ENOENT\); check the path/)
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'b.json', JSON.stringify({ finnhub: { tokenFile: empty } })) })).message,
    /finnhub\.tokenFile: .*empty is empty; write the secret on its first line/)
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'c.json', JSON.stringify({ finnhub: { token: 'inline-token', tokenFile: empty } })) })).message,
    /finnhub\.tokenFile: is set both inline and as a file: keep one/)
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'd.json', JSON.stringify({ kafka: { security: { protocol: 'ssl', ssl: { caFile: join(dir, 'ca.pem') } } } })) })).message,
    /kafka\.security\.ssl\.caFile: cannot read .*ca\.pem \(ENOENT\)/, 'a missing CA is a config error, not a TLS error later')
  t.match(configError(() => loadConfig({ env: { CREDENTIALS_DIRECTORY: dir }, file: secretFile(dir, 'e.json', JSON.stringify({ kafka: { security: { protocol: 'sasl_ssl', sasl: { username: 'u' } } } })) })).message,
    /kafka\.security\.sasl: protocol sasl_ssl with SCRAM-SHA-512 needs username and a password \(passwordFile, KAFKA_SASL_PASSWORD or the systemd credential kafka-sasl-password\)/)
  t.match(configError(() => loadConfig({ env: { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' } })).message,
    /a login is set but kafka\.security\.protocol is plaintext/)
})

t.test('credentials in URLs are refused with where to put them; plain schemes only on loopback', async t => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ finnhub: { url: 'wss://ws.finnhub.io?token=abc123' } }, /finnhub\.url: holds a credential in its query \(token=…\); remove it from the URL and set finnhub\.token, finnhub\.tokenFile, FINNHUB_TOKEN/],
    [{ finnhub: { rest: { url: 'https://finnhub.io/api/v1?token=abc' } } }, /finnhub\.rest\.url: holds a credential in its query/],
    [{ kafka: { schemaRegistryUrl: 'https://user:pw@registry.example:8081' } }, /kafka\.schemaRegistryUrl: holds a user name or password; remove it from the URL and set kafka\.schemaRegistry\.username/],
    [{ finnhub: { url: 'ws://ws.finnhub.io' } }, /finnhub\.url: must be wss:\/\/ for a host that is not loopback/],
    [{ finnhub: { rest: { url: 'http://finnhub.io/api/v1' } } }, /finnhub\.rest\.url: must be https:\/\/ for a host that is not loopback/]
  ]
  for (const [raw, pattern] of cases) {
    const message = configError(() => loadConfig({ env: {}, file: secretFile(t.testdir({}), 'c.json', JSON.stringify(raw)) })).message
    t.match(message, pattern)
    t.notMatch(message, /abc123|pw@/, 'the credential is not quoted back')
  }
  t.match(configError(() => loadConfig({ env: { FINNHUB_URL: 'wss://ws.finnhub.io/?token=abc123' } })).message, /finnhub\.url \(from FINNHUB_URL\): holds a credential/)
  t.equal(loadConfig({ env: { FINNHUB_URL: 'ws://127.0.0.1:8080', FINNHUB_REST_URL: 'http://localhost:8081/api/v1' } }).config.finnhub.url, 'ws://127.0.0.1:8080', 'loopback may be plain (the simulator)')
})

t.test('the console off loopback: a token from any source, and TLS or a TLS proxy', async t => {
  const dir = t.testdir({})
  const token = secretFile(dir, 'console-token', 'a-console-token-of-32-characters\n')
  const off = { http: { host: '0.0.0.0' } }
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'a.json', JSON.stringify({ http: { host: '0.0.0.0', behindTlsProxy: true } })) })).message,
    /http\.console\.token: the web console would be served through a reverse proxy, beyond this machine: set an access token \(tokenFile, FINNHUBD_CONSOLE_TOKEN/)
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'a2.json', JSON.stringify({ http: { host: '0.0.0.0', tls: { certificateFile: token, keyFile: token } } })) })).message,
    /http\.console\.token: the web console would be served on 0\.0\.0\.0, beyond this machine/)
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'a3.json', JSON.stringify({ http: { behindTlsProxy: true } })) })).message,
    /http\.console\.token: the web console would be served through a reverse proxy/, 'a loopback daemon behind a proxy is reachable from afar: a token too')
  t.match(configError(() => loadConfig({ env: {}, file: secretFile(dir, 'b.json', JSON.stringify({ http: { ...off.http, console: { tokenFile: token } } })) })).message,
    /http\.tls: the console on 0\.0\.0\.0 would send its token in clear text/)
  const ok = loadConfig({ env: {}, file: secretFile(dir, 'c.json', JSON.stringify({ http: { ...off.http, behindTlsProxy: true, console: { tokenFile: token } } })) })
  t.equal(ok.config.http.console.token, 'a-console-token-of-32-characters')
  t.match(configError(() => loadConfig({ env: { FINNHUBD_CONSOLE_TOKEN: 'short' }, file: secretFile(dir, 'd.json', JSON.stringify({ http: { ...off.http, behindTlsProxy: true } })) })).message,
    /http\.console\.token: use at least 16 characters/)
})

t.test('secret files are read again on every load (a rotated password is picked up by a reload)', async t => {
  const dir = t.testdir({})
  mkdirSync(join(dir, 's'))
  const file = secretFile(join(dir, 's'), 'pw', 'first-password\n')
  const cfg = secretFile(dir, 'c.json', JSON.stringify({ cassandra: { username: 'u', passwordFile: file } }))
  t.equal(loadConfig({ file: cfg, env: {} }).config.cassandra.password, 'first-password')
  secretFile(join(dir, 's'), 'pw', 'second-password\n')
  t.equal(loadConfig({ file: cfg, env: {} }).config.cassandra.password, 'second-password')
})
