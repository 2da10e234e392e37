// The secure stack's pure parts, no JVM: its options (own folder and ports, the plain
// stack's jar cache), the generated server.properties, cassandra.yaml and daemon
// config, and the certificates openssl makes (trusted, names, modes).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { main, type DevContext } from '../../daemon/cli.js'
import { loadConfig, validateConfig } from '../../daemon/config/load.js'
import { runDevCommand } from '../../tools/cli.js'
import { COMPONENTS, cassandraYaml, kafkaProperties } from '../../tools/stack/components.js'
import { secureUpLines } from '../../tools/stack/cli.js'
import { SECURE_DEFAULT_PORTS, stackOptions } from '../../tools/stack/options.js'
import {
  ensureCertificates, ensureSecret, ensureSecureFiles, scramFormatArgs, secureDataMarker, secureDaemonConfig, secureDaemonYaml, secureStackFiles
} from '../../tools/stack/secure.js'

const mode = (file: string): number => statSync(file).mode & 0o777

t.test('options: --secure has its own folder and ports, shares the plain jar cache; the plain stack is unchanged', async t => {
  const plain = stackOptions({})
  t.equal(plain.secure, false)
  t.match(plain.dir, /[/\\]\.stack$/)
  t.equal(plain.cacheDir, plain.dir)
  t.equal(plain.kafkaPort, 19092)

  const secure = stackOptions({ FINNHUBD_STACK_SECURE: '1' })
  t.equal(secure.secure, true)
  t.equal(secure.dir, `${plain.dir}-secure`)
  t.equal(secure.cacheDir, plain.dir, 'jars from the plain stack\'s cache')
  t.same([secure.kafkaPort, secure.kafkaControllerPort, secure.kafkaProxiedPort, secure.kafkaProxyPort, secure.cassandraPort, secure.cassandraStoragePort],
    [29092, 29093, 29094, 29095, 29042, 27000])
  t.same(SECURE_DEFAULT_PORTS, { kafkaPort: 29092, kafkaControllerPort: 29093, kafkaProxiedPort: 29094, kafkaProxyPort: 29095, cassandraPort: 29042, cassandraStoragePort: 27000 })
  t.equal(secure.cassandraAuth, 'password', 'the secure stack always asks for a login')
  t.same(stackOptions({}, { secure: true }), secure, 'the --secure override is the variable')

  const moved = stackOptions({ FINNHUBD_STACK_SECURE: 'true', FINNHUBD_STACK_DIR: '/x/stack', FINNHUBD_KAFKA_PORT: '39092', FINNHUBD_CASSANDRA_AUTH: 'none' })
  t.equal(moved.dir, '/x/stack-secure')
  t.equal(moved.cacheDir, '/x/stack')
  t.equal(moved.kafkaPort, 39092, 'the port variables move it too')
  t.equal(moved.cassandraAuth, 'password', 'FINNHUBD_CASSANDRA_AUTH is not read')
  const own = stackOptions({ FINNHUBD_STACK_SECURE: '1', FINNHUBD_STACK_SECURE_DIR: '/y/secure', FINNHUBD_STACK_CACHE_DIR: '/z/cache' })
  t.equal(own.dir, '/y/secure')
  t.equal(own.cacheDir, '/z/cache')
  t.equal(stackOptions({}, { secure: true, dir: '/w' }).dir, '/w')
  t.throws(() => stackOptions({ FINNHUBD_STACK_SECURE: 'yes' }), { code: 'FINNHUBD_ERR_USAGE', message: /FINNHUBD_STACK_SECURE=yes must be 1 or 0/ })
  t.throws(() => stackOptions({}, { secure: true, cassandraAuth: 'none' }), { code: 'FINNHUBD_ERR_USAGE', message: /always runs Cassandra with password authentication/ })
})

const o = stackOptions({}, { secure: true, dir: '/data/sec', kafkaPort: 1111, kafkaControllerPort: 2222, kafkaProxiedPort: 5555, kafkaProxyPort: 6666, cassandraPort: 3333, cassandraStoragePort: 4444 })
const secrets = { keystorePassword: 'ks-0123', kafkaAdminPassword: 'adm-4567' }

t.test('server.properties: SASL_SSL listeners with SCRAM-SHA-512 only, plaintext controller, the PKCS12 keystore', async t => {
  const props = kafkaProperties(o, secrets)
  t.match(props, /^listeners=SASL_SSL:\/\/127\.0\.0\.1:1111,CONTROLLER:\/\/127\.0\.0\.1:2222,VIA_PROXY:\/\/127\.0\.0\.1:5555$/m)
  t.match(props, /^advertised\.listeners=SASL_SSL:\/\/127\.0\.0\.1:1111,VIA_PROXY:\/\/127\.0\.0\.1:6666$/m)
  t.match(props, /^listener\.security\.protocol\.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT,VIA_PROXY:SASL_SSL$/m)
  t.match(props, /^inter\.broker\.listener\.name=SASL_SSL$/m)
  t.match(props, /^sasl\.enabled\.mechanisms=SCRAM-SHA-512$/m)
  t.match(props, /^sasl\.mechanism\.inter\.broker\.protocol=SCRAM-SHA-512$/m)
  t.match(props, /^listener\.name\.sasl_ssl\.scram-sha-512\.sasl\.jaas\.config=org\.apache\.kafka\.common\.security\.scram\.ScramLoginModule required username="admin" password="adm-4567";$/m)
  t.match(props, /^listener\.name\.via_proxy\.scram-sha-512\.sasl\.jaas\.config=org\.apache\.kafka\.common\.security\.scram\.ScramLoginModule required;$/m)
  t.match(props, /^ssl\.keystore\.type=PKCS12$/m)
  t.match(props, /^ssl\.keystore\.location=\/data\/sec\/secure\/server\.p12$/m)
  t.match(props, /^ssl\.keystore\.password=ks-0123$/m)
  t.match(props, /^ssl\.truststore\.type=PEM$/m)
  t.match(props, /^ssl\.truststore\.location=\/data\/sec\/secure\/ca\.pem$/m)
  t.match(props, /^ssl\.client\.auth=none$/m)
  t.notMatch(props, /PLAINTEXT:\/\//, 'no plaintext client listener')
  t.match(props, /^log\.dirs=\/data\/sec\/kafka\/data$/m, 'the rest as in the plain stack')
  t.throws(() => kafkaProperties(o), { code: 'FINNHUBD_ERR_STACK_START' }, 'no passwords, no properties')

  const plain = kafkaProperties(stackOptions({}, { dir: '/data/plain' }))
  t.match(plain, /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:19092,/m, 'the plain stack keeps its listeners')
  t.notMatch(plain, /sasl|ssl\./)

  t.same(scramFormatArgs('a1', 'u2'), [
    '--add-scram', 'SCRAM-SHA-512=[name=admin,password=a1]',
    '--add-scram', 'SCRAM-SHA-512=[name=finnhubd,password=u2]'
  ])
})

t.test('cassandra.yaml: TLS required, no client certificate, PasswordAuthenticator', async t => {
  const yaml = cassandraYaml(o, secrets)
  const parsed = parseYaml(yaml) as Record<string, unknown>
  t.same(parsed['client_encryption_options'], {
    enabled: true, optional: false, keystore: '/data/sec/secure/server.p12', keystore_password: 'ks-0123', store_type: 'PKCS12', require_client_auth: false
  })
  t.equal(parsed['authenticator'], 'PasswordAuthenticator')
  t.equal(parsed['native_transport_port'], 3333)
  t.throws(() => cassandraYaml(o), { code: 'FINNHUBD_ERR_STACK_START' })
  t.notMatch(cassandraYaml(stackOptions({}, { dir: '/data/plain' })), /client_encryption_options/, 'the plain stack has none')
})

t.test('the daemon\'s config for the secure stack: valid, secrets by file only', async t => {
  const text = secureDaemonYaml(o)
  t.match(text, /^# .*npm run finnhubd -- --config \/data\/sec\/secure\/finnhubd\.yaml run$/m)
  const parsed = parseYaml(text) as Record<string, unknown>
  t.same(parsed, secureDaemonConfig(o))
  t.same(parsed, {
    kafka: {
      bootstrapServers: ['127.0.0.1:1111'],
      security: { protocol: 'sasl_ssl', sasl: { mechanism: 'SCRAM-SHA-512', username: 'finnhubd', passwordFile: '/data/sec/secure/kafka-password' }, ssl: { caFile: '/data/sec/secure/ca.pem' } }
    },
    cassandra: {
      contactPoints: ['127.0.0.1'],
      port: 3333,
      username: 'finnhubd',
      passwordFile: '/data/sec/secure/cassandra-password',
      tls: { enabled: true, caFile: '/data/sec/secure/ca.pem' }
    }
  })
  const config = validateConfig(parsed)
  t.equal(config.kafka.security.protocol, 'sasl_ssl')
  t.equal(config.kafka.security.ssl.verifyHostname, true, 'the certificate names 127.0.0.1: hostname checks stay on')
  t.equal(config.cassandra.tls.rejectUnauthorized, true)
  t.notMatch(text, /password:/, 'no password in the file itself')

  const lines = secureUpLines(o).join('\n')
  t.match(lines, /the daemon's config for it: \/data\/sec\/secure\/finnhubd\.yaml/)
  t.match(lines, /npm run finnhubd -- --config \/data\/sec\/secure\/finnhubd\.yaml run/)
  t.match(lines, /demo --secure/)
})

t.test('certificates: a CA, a server certificate for 127.0.0.1 and localhost, a client one, an untrusted CA; keys 0600', async t => {
  const dir = t.testdir({})
  const so = stackOptions({}, { secure: true, dir })
  const files = secureStackFiles(so)
  const started = Date.now()
  t.equal(ensureCertificates(so), true, 'made on first use')
  t.comment(`certificates made in ${Date.now() - started} ms`)
  t.equal(ensureCertificates(so), false, 'kept after')
  const verify = (ca: string, cert: string): string => {
    try {
      return execFileSync('openssl', ['verify', '-CAfile', ca, cert], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (err) {
      return `FAILED ${String((err as { stderr?: string }).stderr)}`
    }
  }
  t.match(verify(files.caFile, files.serverCertFile), /: OK/)
  t.match(verify(files.caFile, files.clientCertFile), /: OK/)
  t.match(verify(files.untrustedCaFile, files.serverCertFile), /^FAILED/, 'the untrusted CA signed nothing the stack serves')
  const server = execFileSync('openssl', ['x509', '-in', files.serverCertFile, '-noout', '-text'], { encoding: 'utf8' })
  t.match(server, /IP Address:127\.0\.0\.1/)
  t.match(server, /DNS:localhost/)
  t.match(server, /TLS Web Server Authentication/)
  t.match(execFileSync('openssl', ['x509', '-in', files.clientCertFile, '-noout', '-subject'], { encoding: 'utf8' }), /CN ?= ?finnhubd/)
  for (const key of [files.caKeyFile, files.serverKeyFile, files.clientKeyFile]) {
    t.match(readFileSync(key, 'utf8'), /^-----BEGIN PRIVATE KEY-----/, `${key} is PKCS#8`)
    t.equal(mode(key), 0o600, `${key} is 0600`)
  }
  t.equal(mode(files.serverKeystoreFile), 0o600)
  t.equal(mode(files.keystorePasswordFile), 0o600)
  t.equal(mode(files.dir), 0o700)
  const p12 = execFileSync('openssl', ['pkcs12', '-in', files.serverKeystoreFile, '-passin', `file:${files.keystorePasswordFile}`, '-nokeys'], { encoding: 'utf8' })
  t.equal(p12.match(/BEGIN CERTIFICATE/g)?.length, 2, 'the keystore holds the server certificate and the CA')

  const setup = ensureSecureFiles(so)
  t.equal(setup.kafkaPasswordsCreated, true)
  for (const file of [files.kafkaAdminPasswordFile, files.kafkaPasswordFile, files.cassandraPasswordFile]) {
    t.equal(mode(file), 0o600, `${file} is 0600`)
    t.match(readFileSync(file, 'utf8'), /^[0-9a-f]{32}\n$/)
  }
  const again = ensureSecureFiles(so)
  t.equal(again.kafkaPasswordsCreated, false, 'passwords are kept')
  t.same(again.secrets, setup.secrets)
  // The generated config loads with the daemon's loader, passwords from the files, no warning.
  const loaded = loadConfig({ file: files.configFile, env: {} })
  t.same(loaded.warnings, [])
  t.equal(loaded.config.kafka.security.sasl.password, readFileSync(files.kafkaPasswordFile, 'utf8').trim())
  t.equal(loaded.config.cassandra.password, readFileSync(files.cassandraPasswordFile, 'utf8').trim())

  writeFileSync(join(dir, 'given'), 'mine\nsecond line\n')
  t.same(ensureSecret(join(dir, 'given')), { value: 'mine', created: false }, 'a secret file is its first line')
})

t.test('a plain and a secure stack never start on each other\'s data', async t => {
  const kafka = COMPONENTS.find(c => c.name === 'kafka')
  if (kafka === undefined) throw new Error('no kafka component')
  const dir = t.testdir({ kafka: { data: { 'meta.properties': 'formatted\n' } } })
  const secure = stackOptions({}, { secure: true, dir })
  const plain = stackOptions({}, { dir })
  // Formatted storage: prepare returns before it would run Java.
  t.throws(() => kafka.prepare(secure, '/no/java', '/no/lib'), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /kafka holds the data of a plain stack's kafka, and this `up` is secure: run `npm run stack -- up` \(without --secure\)/
  })
  t.doesNotThrow(() => kafka.prepare(plain, '/no/java', '/no/lib'), 'the plain stack takes its own data')
  writeFileSync(secureDataMarker(join(dir, 'kafka')), 'secure\n')
  t.throws(() => kafka.prepare(plain, '/no/java', '/no/lib'), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /holds the data of a secure stack's kafka, and this `up` is plain: run `npm run stack -- up --secure`.*`npm run stack -- wipe --secure`/
  })
  // Secure data, but its passwords are gone (made anew now): the SCRAM users would not match.
  t.throws(() => kafka.prepare(secure, '/no/java', '/no/lib'), {
    code: 'FINNHUBD_ERR_STACK_START',
    message: /formatted with SCRAM users whose passwords are gone .*`npm run stack -- wipe --secure kafka`/
  })
  t.doesNotThrow(() => kafka.prepare(secure, '/no/java', '/no/lib'), 'with its passwords kept, it starts')
  t.equal(mode(join(dir, 'kafka', 'server.properties')), 0o600, 'server.properties holds passwords: 0600')
})

t.test('`finnhubd demo --secure` is parsed by the dev commands (anything else is a usage error)', async t => {
  const ctx = (): DevContext => ({ env: {}, out: () => {}, err: () => {}, load: () => { throw new Error('config loaded') }, isEntry: false })
  await t.rejects(runDevCommand('demo', ['--secure'], ctx()), { message: 'config loaded' }, '--secure accepted; the demo goes on to load its config')
  await t.rejects(runDevCommand('demo', [], ctx()), { message: 'config loaded' })
  // Through the command line: demo's options are checked there, with the other commands'.
  const run = async (args: string[]): Promise<{ code: number, text: string }> => {
    const lines: string[] = []
    const code = await main(args, { env: {}, out: l => lines.push(l), err: l => lines.push(l) })
    return { code, text: lines.join('\n') }
  }
  t.match(await run(['demo', '--nope']), { code: 2, text: /Unknown option '--nope'[^]*finnhubd demo --help/ }, 'an unknown option is a usage error')
  t.match(await run(['demo', '--help']), { code: 0, text: /usage: finnhubd \[--config FILE\] demo \[--secure\][^]*--secure +on the secure stack/ }, '--help names --secure')
})
