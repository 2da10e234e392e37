// The secure local stack's secrets and settings (`npm run stack -- up --secure`), so
// the daemon's SASL, TLS and password paths run against real servers: a throwaway CA
// (made with openssl on first `up`), the broker's and node's certificate signed by it
// (for 127.0.0.1 and localhost), a client certificate for mutual-TLS tests, a second
// CA that signed nothing (for "untrusted CA" failures), random passwords in files of
// mode 0600, and the daemon's config for this stack beside them. Everything lives in
// <stack dir>/secure/; nothing here is secret beyond this machine's throwaway stack.

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as stringifyYaml } from 'yaml'
import { FinnhubdError } from '../../daemon/core/errors.js'
import type { StackOptions } from './options.js'

/** In a running component's command line when it was started by the secure stack. */
export const SECURE_FLAG = '-Dfinnhubd.stack.secure=true'

/** The SCRAM user the brokers talk to each other as (never the daemon's). */
export const KAFKA_ADMIN_USER = 'admin'
/** The daemon's logins on the secure stack: a SCRAM user in Kafka, a login role in Cassandra. */
export const SECURE_KAFKA_USER = 'finnhubd'
export const SECURE_CASSANDRA_USER = 'finnhubd'
export const SECURE_SASL_MECHANISM = 'SCRAM-SHA-512'

export interface SecureStackFiles {
  /** <stack dir>/secure: everything below lives here. */
  dir: string
  /** The throwaway CA's certificate (PEM): what clients trust. */
  caFile: string
  caKeyFile: string
  /** A second CA's certificate that signed nothing the stack serves. */
  untrustedCaFile: string
  /** The servers' certificate (PEM), for IP:127.0.0.1 and DNS:localhost, and its key (PKCS#8 PEM). */
  serverCertFile: string
  serverKeyFile: string
  /** The servers' certificate, key and CA in a PKCS12 keystore (Kafka and Cassandra read it). */
  serverKeystoreFile: string
  keystorePasswordFile: string
  /** A client certificate (CN finnhubd) and its key (PKCS#8 PEM), signed by the CA, for mutual TLS. */
  clientCertFile: string
  clientKeyFile: string
  kafkaAdminPasswordFile: string
  kafkaUser: string
  kafkaPasswordFile: string
  cassandraUser: string
  cassandraPasswordFile: string
  /** The daemon's config for this stack (YAML). */
  configFile: string
}

export function secureStackFiles (o: Pick<StackOptions, 'dir'>): SecureStackFiles {
  const dir = join(o.dir, 'secure')
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    caKeyFile: join(dir, 'ca-key.pem'),
    untrustedCaFile: join(dir, 'untrusted-ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server-key.pem'),
    serverKeystoreFile: join(dir, 'server.p12'),
    keystorePasswordFile: join(dir, 'keystore-password'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client-key.pem'),
    kafkaAdminPasswordFile: join(dir, 'kafka-admin-password'),
    kafkaUser: SECURE_KAFKA_USER,
    kafkaPasswordFile: join(dir, 'kafka-password'),
    cassandraUser: SECURE_CASSANDRA_USER,
    cassandraPasswordFile: join(dir, 'cassandra-password'),
    configFile: join(dir, 'finnhubd.yaml')
  }
}

/** The passwords the servers' configs need (the keystore's, the brokers' own login). */
export interface ServerSecrets {
  keystorePassword: string
  kafkaAdminPassword: string
}

/** The first line of a secret file (as the daemon reads it). */
export function readSecret (file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unknown error'}); \`npm run stack -- up --secure\` writes it`)
  }
  const value = text.split(/\r?\n/)[0] ?? ''
  if (value === '') throw new FinnhubdError('FINNHUBD_ERR_STACK_START', `${file} is empty; delete it and \`npm run stack -- wipe --secure\`, then \`up --secure\` again`)
  return value
}

/** Writes a file only its owner may read (created so, and chmod-ed in case it was there). */
export function writePrivate (file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 })
  chmodSync(file, 0o600)
}

/**
 * The password in `file`, made (random, 32 hex digits: nothing to quote in a JAAS
 * line, a CQL string or StorageTool's --add-scram) when the file is not there.
 */
export function ensureSecret (file: string): { value: string, created: boolean } {
  if (existsSync(file)) return { value: readSecret(file), created: false }
  const value = randomBytes(16).toString('hex')
  writePrivate(file, `${value}\n`)
  return { value, created: true }
}

// Extensions for each certificate, so openssl's own config (and its defaults) never matter.
const OPENSSL_CNF = `# written by finnhubd stack: extensions of the secure stack's certificates
[req]
distinguished_name = dn
prompt = no
[dn]
CN = finnhubd
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`

function openssl (dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer }
    if (e.code === 'ENOENT') {
      throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
        'the secure stack makes its certificates with openssl, which is not installed; install it (Debian/Ubuntu: apt-get install openssl) and run `up --secure` again')
    }
    throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
      `making the secure stack's certificates in ${dir} failed (openssl ${args[0] ?? ''}); delete that folder and run \`up --secure\` again. openssl said:\n` +
      String(e.stderr ?? e.message).trim().split('\n').slice(-10).join('\n'))
  }
}

const serial = (): string => `0x${randomBytes(16).toString('hex').replace(/^[89a-f]/, '1')}`

function newKey (dir: string, file: string): void {
  // Created 0600 first: openssl writes into it and keeps the mode.
  writePrivate(file, '')
  // genpkey writes PKCS#8 ("BEGIN PRIVATE KEY"), the form Kafka's and Node's PEM readers take.
  openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file])
  chmodSync(file, 0o600)
}

function selfSignedCa (dir: string, cnf: string, keyFile: string, certFile: string, name: string): void {
  newKey(dir, keyFile)
  openssl(dir, ['req', '-x509', '-new', '-config', cnf, '-extensions', 'ca_ext', '-key', keyFile, '-subj', `/CN=${name}`,
    '-days', '3650', '-sha256', '-set_serial', serial(), '-out', certFile])
}

function signed (dir: string, cnf: string, files: SecureStackFiles, keyFile: string, certFile: string, cn: string, ext: string): void {
  newKey(dir, keyFile)
  const csr = `${certFile}.csr`
  openssl(dir, ['req', '-new', '-config', cnf, '-key', keyFile, '-subj', `/CN=${cn}`, '-out', csr])
  openssl(dir, ['x509', '-req', '-in', csr, '-CA', files.caFile, '-CAkey', files.caKeyFile, '-set_serial', serial(),
    '-days', '825', '-sha256', '-extfile', cnf, '-extensions', ext, '-out', certFile])
  rmSync(csr, { force: true })
}

/**
 * The CA, the certificates and the keystore, made once (a marker written last says
 * they are complete; an interrupted run starts over). Returns true when made now.
 */
export function ensureCertificates (o: Pick<StackOptions, 'dir'>): boolean {
  const files = secureStackFiles(o)
  const complete = join(files.dir, '.certificates-complete')
  if (existsSync(complete)) return false
  mkdirSync(files.dir, { recursive: true, mode: 0o700 })
  chmodSync(files.dir, 0o700)
  const cnf = join(files.dir, 'openssl.cnf')
  writeFileSync(cnf, OPENSSL_CNF)
  selfSignedCa(files.dir, cnf, files.caKeyFile, files.caFile, 'finnhubd local stack CA')
  signed(files.dir, cnf, files, files.serverKeyFile, files.serverCertFile, 'localhost', 'server_ext')
  signed(files.dir, cnf, files, files.clientKeyFile, files.clientCertFile, SECURE_KAFKA_USER, 'client_ext')
  // A CA nobody here trusts: only its certificate is kept.
  const untrustedKey = join(files.dir, 'untrusted-ca-key.pem')
  selfSignedCa(files.dir, cnf, untrustedKey, files.untrustedCaFile, 'finnhubd untrusted test CA')
  rmSync(untrustedKey, { force: true })
  // The keystore (its password made anew with it): the server's key and certificate with the CA.
  rmSync(files.keystorePasswordFile, { force: true })
  ensureSecret(files.keystorePasswordFile)
  writePrivate(files.serverKeystoreFile, '')
  openssl(files.dir, ['pkcs12', '-export', '-in', files.serverCertFile, '-inkey', files.serverKeyFile, '-certfile', files.caFile,
    '-name', 'finnhubd-stack', '-passout', `file:${files.keystorePasswordFile}`, '-out', files.serverKeystoreFile])
  chmodSync(files.serverKeystoreFile, 0o600)
  writeFileSync(complete, `${new Date().toISOString()}\n`)
  return true
}

export interface SecureSetup {
  files: SecureStackFiles
  secrets: ServerSecrets
  /** The Kafka passwords were made now: a Kafka storage formatted before has other SCRAM users. */
  kafkaPasswordsCreated: boolean
}

/** Certificates, passwords and the daemon's config for the secure stack; each made only when missing. */
export function ensureSecureFiles (o: StackOptions): SecureSetup {
  const files = secureStackFiles(o)
  ensureCertificates(o)
  const admin = ensureSecret(files.kafkaAdminPasswordFile)
  const user = ensureSecret(files.kafkaPasswordFile)
  ensureSecret(files.cassandraPasswordFile)
  writeFileSync(files.configFile, secureDaemonYaml(o))
  return {
    files,
    secrets: { keystorePassword: readSecret(files.keystorePasswordFile), kafkaAdminPassword: admin.value },
    kafkaPasswordsCreated: admin.created || user.created
  }
}

/**
 * The daemon's settings for the secure stack: where it is, how to log in, what CA to
 * trust. Secrets by file only, so the config itself holds none.
 */
export function secureDaemonConfig (o: StackOptions): {
  kafka: { bootstrapServers: string[], security: { protocol: 'sasl_ssl', sasl: { mechanism: string, username: string, passwordFile: string }, ssl: { caFile: string } } }
  cassandra: { contactPoints: string[], port: number, username: string, passwordFile: string, tls: { enabled: true, caFile: string } }
} {
  const files = secureStackFiles(o)
  return {
    kafka: {
      bootstrapServers: [`127.0.0.1:${o.kafkaPort}`],
      security: {
        protocol: 'sasl_ssl',
        sasl: { mechanism: SECURE_SASL_MECHANISM, username: files.kafkaUser, passwordFile: files.kafkaPasswordFile },
        ssl: { caFile: files.caFile }
      }
    },
    cassandra: {
      contactPoints: ['127.0.0.1'],
      port: o.cassandraPort,
      username: files.cassandraUser,
      passwordFile: files.cassandraPasswordFile,
      tls: { enabled: true, caFile: files.caFile }
    }
  }
}

export function secureDaemonYaml (o: StackOptions): string {
  const files = secureStackFiles(o)
  return '# written by finnhubd stack (up --secure): the daemon\'s settings for the secure local stack\n' +
    '# (SASL_SSL with SCRAM-SHA-512 to Kafka, TLS and a password to Cassandra). Run the daemon with it:\n' +
    `#   npm run finnhubd -- --config ${files.configFile} run\n` +
    '# Rewritten on every `up --secure`: copy it to change it.\n' +
    stringifyYaml(secureDaemonConfig(o))
}

/** The lines of server.properties that make the client listeners SASL_SSL (replacing the plain stack's listener lines). */
export function kafkaSecureListenerLines (o: StackOptions, secrets: ServerSecrets): string[] {
  const files = secureStackFiles(o)
  const jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required'
  return [
    // VIA_PROXY as in the plain stack (the fault suite's proxy), secured the same way.
    `listeners=SASL_SSL://127.0.0.1:${o.kafkaPort},CONTROLLER://127.0.0.1:${o.kafkaControllerPort},VIA_PROXY://127.0.0.1:${o.kafkaProxiedPort}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${o.kafkaPort},VIA_PROXY://127.0.0.1:${o.kafkaProxyPort}`,
    'inter.broker.listener.name=SASL_SSL',
    'controller.listener.names=CONTROLLER',
    // The controller listener stays plaintext: loopback only, and nothing but this node speaks on it.
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT,VIA_PROXY:SASL_SSL',
    `sasl.enabled.mechanisms=${SECURE_SASL_MECHANISM}`,
    `sasl.mechanism.inter.broker.protocol=${SECURE_SASL_MECHANISM}`,
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas} username="${KAFKA_ADMIN_USER}" password="${secrets.kafkaAdminPassword}";`,
    `listener.name.via_proxy.scram-sha-512.sasl.jaas.config=${jaas};`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${files.serverKeystoreFile}`,
    `ssl.keystore.password=${secrets.keystorePassword}`,
    `ssl.key.password=${secrets.keystorePassword}`,
    // The brokers' own client side (inter-broker) trusts the stack's CA; clients need no certificate.
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${files.caFile}`,
    'ssl.client.auth=none'
  ]
}

/** The `--add-scram` arguments of StorageTool's format: the brokers' admin and the daemon's user. */
export function scramFormatArgs (adminPassword: string, userPassword: string): string[] {
  return [
    '--add-scram', `${SECURE_SASL_MECHANISM}=[name=${KAFKA_ADMIN_USER},password=${adminPassword}]`,
    '--add-scram', `${SECURE_SASL_MECHANISM}=[name=${SECURE_KAFKA_USER},password=${userPassword}]`
  ]
}

/** cassandra.yaml's client encryption for the secure stack: TLS required, no client certificate asked. */
export function cassandraSecureYaml (o: StackOptions, secrets: ServerSecrets): string {
  const files = secureStackFiles(o)
  return `client_encryption_options:
  enabled: true
  optional: false
  keystore: ${files.serverKeystoreFile}
  keystore_password: ${secrets.keystorePassword}
  store_type: PKCS12
  require_client_auth: false
`
}

/** The librdkafka settings that reach the secure Kafka as the daemon's user (probes, tests). */
export function secureKafkaClientConfig (o: StackOptions): Record<string, string> {
  const files = secureStackFiles(o)
  return {
    'metadata.broker.list': `127.0.0.1:${o.kafkaPort}`,
    'security.protocol': 'sasl_ssl',
    'sasl.mechanisms': SECURE_SASL_MECHANISM,
    'sasl.username': files.kafkaUser,
    'sasl.password': readSecret(files.kafkaPasswordFile),
    'ssl.ca.location': files.caFile
  }
}

/** A marker in a component's folder: its data belongs to a secure stack (a plain `up` must not reuse it, nor a secure one a plain stack's). */
export const secureDataMarker = (home: string): string => join(home, 'secure-stack')
