// Where each secret comes from, resolved once per load (start and every reload). A
// secret may be given, strongest first, by its environment variable, by a systemd
// credential (LoadCredential= puts it in $CREDENTIALS_DIRECTORY under a fixed name),
// by a file named in the config (`…File`), or inline in the config file. The value
// lands in the config's value field (e.g. finnhub.token) so the rest of the daemon
// reads one place; SECRET_PATHS is the one list that redaction, the reload diff and
// the error messages use to keep the values out of every output.

import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { FinnhubdError } from '../core/errors.js'
import { isLoopbackHost, type Config } from './schema.js'

type Env = Readonly<Record<string, string | undefined>>
type Json = Record<string, unknown>

export interface SecretSource {
  /** Where the value lives in the config. */
  path: readonly string[]
  /** The config key naming a file that holds it. */
  fileKey: readonly string[]
  /** The environment variable that gives it. */
  env: string
  /** The systemd credential name (a file in $CREDENTIALS_DIRECTORY). */
  credential: string
}

const s = (path: string, fileKey: string, env: string, credential: string): SecretSource =>
  ({ path: path.split('.'), fileKey: fileKey.split('.'), env, credential })

export const SECRET_SOURCES: readonly SecretSource[] = Object.freeze([
  s('finnhub.token', 'finnhub.tokenFile', 'FINNHUB_TOKEN', 'finnhub-token'),
  s('kafka.security.sasl.password', 'kafka.security.sasl.passwordFile', 'KAFKA_SASL_PASSWORD', 'kafka-sasl-password'),
  s('kafka.security.ssl.keyPassword', 'kafka.security.ssl.keyPasswordFile', 'KAFKA_SSL_KEY_PASSWORD', 'kafka-ssl-key-password'),
  s('kafka.schemaRegistry.password', 'kafka.schemaRegistry.passwordFile', 'SCHEMA_REGISTRY_PASSWORD', 'schema-registry-password'),
  s('cassandra.password', 'cassandra.passwordFile', 'CASSANDRA_PASSWORD', 'cassandra-password'),
  s('cassandra.tls.keyPassphrase', 'cassandra.tls.keyPassphraseFile', 'CASSANDRA_TLS_KEY_PASSPHRASE', 'cassandra-tls-key-passphrase'),
  s('http.console.token', 'http.console.tokenFile', 'FINNHUBD_CONSOLE_TOKEN', 'console-token')
])

/** Every config key whose value is a secret, dotted. */
export const SECRET_PATHS: readonly string[] = Object.freeze(SECRET_SOURCES.map(x => x.path.join('.')))

/** Private keys: files the daemon's clients read themselves, as secret as a password. */
const KEY_FILES: ReadonlyArray<readonly string[]> = ['kafka.security.ssl.keyFile', 'cassandra.tls.keyFile', 'http.tls.keyFile'].map(p => p.split('.'))
/** Public files that must exist and be readable (a missing CA is a config error, not a TLS error later). */
const PUBLIC_FILES: ReadonlyArray<readonly string[]> = [
  'kafka.security.ssl.caFile', 'kafka.security.ssl.certificateFile', 'kafka.schemaRegistry.caFile',
  'cassandra.tls.caFile', 'cassandra.tls.certificateFile', 'http.tls.certificateFile'
].map(p => p.split('.'))

export const SECRET_ENV_NAMES: readonly string[] = Object.freeze(SECRET_SOURCES.map(x => x.env))

export const REDACTED = '[redacted]'

export interface ResolveOptions {
  env: Env
  /** The config file the inline values came from (its mode is checked when it holds one). */
  configFile: string | null
  /** Where each value came from, filled in (names and paths only, never values). */
  sources: Record<string, string>
  /** How an environment variable is named as a source (e.g. "FINNHUB_TOKEN in /etc/finnhubd/env"). */
  envSource?: (name: string) => string
}

export interface Resolved {
  config: Config
  warnings: string[]
}

/**
 * The configuration with every secret read from its source, checked for what only
 * the secrets decide (a SASL protocol needs a password, the console off loopback a
 * token). Throws FINNHUBD_ERR_CONFIG naming the key and the source, never the value.
 */
export function resolveSecrets (config: Config, options: ResolveOptions): Resolved {
  const copy = structuredClone(config) as unknown as Json
  const warnings: string[] = []
  const problems: string[] = []
  const credentialsDir = options.env['CREDENTIALS_DIRECTORY']
  let inline = false
  for (const src of SECRET_SOURCES) {
    const key = src.path.join('.')
    const fromEnv = options.env[src.env]
    const credential = credentialsDir !== undefined && credentialsDir !== '' ? join(credentialsDir, src.credential) : null
    const file = get(copy, src.fileKey) as string | null
    try {
      if (fromEnv !== undefined && fromEnv !== '') {
        set(copy, src.path, fromEnv)
        options.sources[key] = options.envSource?.(src.env) ?? src.env
      } else if (credential !== null && exists(credential)) {
        // systemd made it private to the unit (its mode may show an ACL's group bits): no warning.
        set(copy, src.path, readSecretFile(credential, key, []))
        options.sources[key] = `systemd credential ${src.credential}`
      } else if (file !== null) {
        set(copy, src.path, readSecretFile(file, src.fileKey.join('.'), warnings))
        options.sources[key] = `file ${file}`
      } else {
        const value = get(copy, src.path)
        if (typeof value === 'string' && value !== '') inline = true
      }
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  for (const path of KEY_FILES) {
    const file = get(copy, path) as string | null
    if (file === null) continue
    try {
      readPrivate(file, path.join('.'), warnings)
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  for (const path of PUBLIC_FILES) {
    const file = get(copy, path) as string | null
    if (file === null) continue
    try {
      readFileSync(file)
    } catch (err) {
      problems.push(`${path.join('.')}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unknown error'}); check the path and that the daemon's user may read it`)
    }
  }
  if (inline && options.configFile !== null) {
    const mode = modeOf(options.configFile)
    if (mode !== null && (mode & 0o044) !== 0) {
      warnings.push(`the config file ${options.configFile} holds a secret and is readable by ${whoCanRead(mode)} (mode ${octal(mode)}): ` +
        `run chmod 600 ${options.configFile} (chmod 640 with the daemon's group), or move the secret to a file, an environment variable or a systemd credential (docs/security.md)`)
    }
  }
  const resolved = copy as unknown as Config
  problems.push(...secretIssues(resolved))
  if (problems.length > 0) {
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `invalid configuration (${options.configFile ?? 'defaults'}: secrets and credentials):\n  - ${problems.join('\n  - ')}\nSee docs/security.md for where each secret may come from.`)
  }
  return { config: resolved, warnings }
}

// What can only be checked once the secrets are in.
function secretIssues (cfg: Config): string[] {
  const out: string[] = []
  const sec = cfg.kafka.security
  if (sec.protocol === 'sasl_plaintext' || sec.protocol === 'sasl_ssl') {
    if (sec.sasl.username === null || sec.sasl.password === null) {
      out.push(`kafka.security.sasl: protocol ${sec.protocol} with ${sec.sasl.mechanism} needs username and a password ` +
        '(passwordFile, KAFKA_SASL_PASSWORD or the systemd credential kafka-sasl-password)')
    }
  } else if (sec.sasl.username !== null) {
    out.push(`kafka.security.sasl: a login is set but kafka.security.protocol is ${sec.protocol}, which does not use SASL: use sasl_ssl (or sasl_plaintext)`)
  }
  if (sec.ssl.keyPassword !== null && sec.ssl.keyFile === null) {
    out.push('kafka.security.ssl.keyPassword is set but no keyFile: set kafka.security.ssl.keyFile')
  }
  const c = cfg.cassandra
  if ((c.username === null) !== (c.password === null)) {
    out.push('cassandra.username and cassandra.password go together: set both or neither (the password from passwordFile, CASSANDRA_PASSWORD or the systemd credential cassandra-password)')
  }
  if (c.tls.keyPassphrase !== null && c.tls.keyFile === null) {
    out.push('cassandra.tls.keyPassphrase is set but no keyFile: set cassandra.tls.keyFile')
  }
  const r = cfg.kafka.schemaRegistry
  if ((r.username === null) !== (r.password === null)) {
    out.push('kafka.schemaRegistry.username and password go together: set both or neither (the password from passwordFile, SCHEMA_REGISTRY_PASSWORD or the systemd credential schema-registry-password)')
  }
  const h = cfg.http
  if (h.enabled && h.console.enabled && (!isLoopbackHost(h.host) || h.behindTlsProxy)) {
    if (h.console.token === null || h.console.token === '') {
      out.push(`http.console.token: the web console would be served ${h.behindTlsProxy ? 'through a reverse proxy' : `on ${h.host}`}, beyond this machine: set an access token ` +
        '(tokenFile, FINNHUBD_CONSOLE_TOKEN or the systemd credential console-token), or turn the console off with http.console.enabled: false')
    } else if (h.console.token.length < 16) {
      out.push('http.console.token: use at least 16 characters')
    }
  }
  return out
}

// The first line of the file: a secret written with `echo` ends in a newline that is
// not part of it. An empty file is an error, not an empty password.
function readSecretFile (file: string, key: string, warnings: string[]): string {
  const value = readPrivate(file, key, warnings).replace(/^\uFEFF/, '').split(/\r?\n/)[0] ?? ''
  if (value === '') throw new FinnhubdError('FINNHUBD_ERR_CONFIG', `${key}: ${file} is empty; write the secret on its first line`)
  return value
}

// A file only the daemon's user should read (a secret, a private key): its text, with
// a warning when its mode lets others in.
function readPrivate (file: string, key: string, warnings: string[]): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unknown error'}); check the path and that the daemon's user may read it`)
  }
  const mode = modeOf(file)
  if (mode !== null && (mode & 0o077) !== 0) {
    warnings.push(`${key}: the secret file ${file} is readable or writable by ${whoCanRead(mode)} (mode ${octal(mode)}): run chmod 600 ${file} ` +
      '(chmod 640 with the daemon\'s group), or pass it as a systemd credential (LoadCredential=, docs/security.md)')
  }
  return text
}

function exists (file: string): boolean {
  try {
    return statSync(file).isFile()
  } catch {
    return false
  }
}

function modeOf (file: string): number | null {
  try {
    return statSync(file).mode & 0o777
  } catch {
    return null
  }
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`

function whoCanRead (mode: number): string {
  const who: string[] = []
  if ((mode & 0o070) !== 0) who.push('its group')
  if ((mode & 0o007) !== 0) who.push('every user')
  return who.join(' and ')
}

function get (obj: Json, path: readonly string[]): unknown {
  let node: unknown = obj
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Json)[key]
  }
  return node
}

function set (obj: Json, path: readonly string[], value: unknown): void {
  let node = obj
  for (const key of path.slice(0, -1)) node = node[key] as Json
  node[path[path.length - 1] as string] = value
}

/** A copy safe to print or log: every secret replaced (set ones only, so "unset" still shows). */
export function redactSecrets<T> (config: T): T {
  const copy = structuredClone(config) as unknown as Json
  for (const src of SECRET_SOURCES) {
    const value = get(copy, src.path)
    if (value !== null && value !== undefined && value !== '') set(copy, src.path, REDACTED)
  }
  return copy as unknown as T
}

/** The secret values set in a configuration, for the logger to keep out of every line. */
export function secretValues (config: Config): string[] {
  const out: string[] = []
  for (const src of SECRET_SOURCES) {
    const value = get(config as unknown as Json, src.path)
    if (typeof value === 'string' && value !== '') out.push(value)
  }
  return out
}
