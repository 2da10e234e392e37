// Loads the configuration once: file (JSON or YAML) → the seed's environment
// variables as overrides → schema validation → a deep-frozen object. Errors name the
// key path (or the environment variable) and what would be accepted, so an operator
// can fix the file without reading code. Nothing below this module reads process.env.

import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import type { z } from 'zod'
import { show } from '../core/validate.js'
import { consistencyWarnings, effectiveReadConsistency, keyspaceReplication } from '../core/consistency.js'
import { FinnhubdError } from '../core/errors.js'
import { mergeEnv, readEnvFile, seedVariableWarnings } from './env-file.js'
import { configSchema, topicMinInsyncReplicas, type Config } from './schema.js'
import { REDACTED, SECRET_ENV_NAMES, SECRET_PATHS, redactSecrets, resolveSecrets } from './secrets.js'

type Env = Readonly<Record<string, string | undefined>>
type Json = Record<string, unknown>

// The seed's .env names (and a few of ours), each mapped to one key path.
// A later entry wins over an earlier one for the same key.
const ENV_OVERRIDES: ReadonlyArray<{ name: string, path: readonly string[], kind: 'string' | 'list' | 'port' | 'url-or-null' | 'first-path' }> = [
  { name: 'FINNHUB_URL', path: ['finnhub', 'url'], kind: 'string' },
  { name: 'FINNHUB_REST_URL', path: ['finnhub', 'rest', 'url'], kind: 'string' },
  { name: 'FINNHUB_SYMBOLS', path: ['finnhub', 'symbols'], kind: 'list' },
  { name: 'KAFKA_BOOTSTRAP_SERVERS', path: ['kafka', 'bootstrapServers'], kind: 'list' },
  { name: 'KAFKA_TOPIC', path: ['kafka', 'topic'], kind: 'string' },
  { name: 'SCHEMA_REGISTRY_URL', path: ['kafka', 'schemaRegistryUrl'], kind: 'url-or-null' },
  { name: 'SCHEMA_PATH', path: ['schemaPath'], kind: 'string' },
  { name: 'CASSANDRA_HOST', path: ['cassandra', 'contactPoints'], kind: 'list' },
  { name: 'CASSANDRA_PORT', path: ['cassandra', 'port'], kind: 'port' },
  { name: 'CASSANDRA_USER', path: ['cassandra', 'username'], kind: 'string' },
  { name: 'KAFKA_SECURITY_PROTOCOL', path: ['kafka', 'security', 'protocol'], kind: 'string' },
  { name: 'KAFKA_SASL_MECHANISM', path: ['kafka', 'security', 'sasl', 'mechanism'], kind: 'string' },
  { name: 'KAFKA_SASL_USERNAME', path: ['kafka', 'security', 'sasl', 'username'], kind: 'string' },
  { name: 'SCHEMA_REGISTRY_USERNAME', path: ['kafka', 'schemaRegistry', 'username'], kind: 'string' },
  { name: 'CASSANDRA_KEYSPACE', path: ['cassandra', 'keyspace'], kind: 'string' },
  { name: 'CASSANDRA_TABLE', path: ['cassandra', 'tradesTable'], kind: 'string' },
  { name: 'CASSANDRA_DC', path: ['cassandra', 'localDataCenter'], kind: 'string' },
  { name: 'FINNHUBD_LOG_LEVEL', path: ['logLevel'], kind: 'string' },
  // systemd's StateDirectory= (a colon-separated list when there are several: the first is ours).
  { name: 'STATE_DIRECTORY', path: ['stateDir'], kind: 'first-path' },
  { name: 'FINNHUBD_STATE_DIR', path: ['stateDir'], kind: 'string' }
]

/**
 * Every variable the configuration reads: the overrides, the secrets (daemon/config/
 * secrets.ts: each secret's variable) and systemd's CREDENTIALS_DIRECTORY.
 */
export const ENV_OVERRIDE_NAMES: readonly string[] = [...SECRET_ENV_NAMES, ...ENV_OVERRIDES.map(o => o.name), 'CREDENTIALS_DIRECTORY']

export interface LoadOptions {
  /** Path of a JSON or YAML config file; omit to run on defaults + environment. */
  file?: string | undefined
  /** The environment to read overrides from; pass process.env at the entry point only. */
  env?: Env
  /** A seed-style .env file (--env-file): its variables, under those of `env`. */
  envFile?: string | undefined
}

export interface LoadedConfig {
  config: Config
  /** Where each overridden value came from, e.g. { 'kafka.topic': 'KAFKA_TOPIC' }. */
  sources: Readonly<Record<string, string>>
  file: string | null
  envFile: string | null
  /** Variables set that finnhubd has no use for, each with what replaces it (seed .env names). */
  warnings: readonly string[]
}

export function loadConfig (options: LoadOptions = {}): LoadedConfig {
  const envFile = options.envFile === undefined ? null : readEnvFile(options.envFile, ENV_OVERRIDE_NAMES)
  const env = mergeEnv(envFile, options.env ?? {})
  const raw = options.file === undefined ? {} : readConfigFile(options.file)
  const sources: Record<string, string> = {}
  applyEnv(raw, env, sources, envFile)
  const validated = validateConfig(raw, options.file ?? 'defaults', sources)
  const { config, warnings } = resolveSecrets(validated, { env, configFile: options.file ?? null, sources, envSource: name => envSource(name, env, envFile) })
  return {
    config: deepFreeze(config),
    sources: Object.freeze(sources),
    file: options.file ?? null,
    envFile: envFile?.file ?? null,
    warnings: Object.freeze([...seedVariableWarnings(options.env ?? {}, envFile), ...warnings, ...replicationWarnings(config)])
  }
}

/** Validates a plain object (a parsed file plus overrides) and returns it frozen. */
export function validateConfig (raw: unknown, origin = 'config', sources: Readonly<Record<string, string>> = {}): Config {
  const result = configSchema.safeParse(raw)
  if (!result.success) {
    const lines = result.error.issues.map(issue => describeIssue(issue, raw, sources))
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `invalid configuration (${origin}):\n  - ${lines.join('\n  - ')}\n` +
      'Fix the values above; `finnhubd config` prints the effective configuration with its defaults.')
  }
  return deepFreeze(result.data)
}

export function readConfigFile (file: string): Json {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `cannot read config file ${file} (${code}); check the path given with --config or FINNHUBD_CONFIG`, { cause: err })
  }
  const isJson = extname(file).toLowerCase() === '.json'
  const tooDeep = isJson ? null : yamlNestingProblem(text)
  if (tooDeep !== null) {
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG', `config file ${file} is not a configuration: ${tooDeep}; a finnhubd config nests a few levels deep`)
  }
  let parsed: unknown
  try {
    parsed = isJson ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `config file ${file} is not valid ${isJson ? 'JSON' : 'YAML'}: ${parseErrorReason(err, isJson)}${parseErrorPosition(err, text)}; fix the syntax there`)
  }
  if (parsed === null || parsed === undefined) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `config file ${file} must hold a mapping of settings at the top level, not ${Array.isArray(parsed) ? 'a list' : typeof parsed}`)
  }
  return parsed as Json
}

/**
 * What a parser said, without the text it quotes: V8's JSON errors quote the source
 * around the error ("…" in double quotes) and some YAML errors end with a token from
 * it (after ": "), and a syntax error beside a password would print part of it.
 */
export function parseErrorReason (err: unknown, isJson: boolean): string {
  const first = ((err as Error).message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+.*$/, '')
  const unquoted = !isJson ? first.replace(/:\s.*$/, '') : first.replace(/"(?:[^"\\]|\\.)*"?/g, '"…"').replace(/ in JSON at position.*$/, '')
  return unquoted.slice(0, 160)
}

/** " at line L, column C" of a JSON or YAML parse error, or "" when it has none. */
export function parseErrorPosition (err: unknown, text: string): string {
  if (err instanceof YAMLParseError && err.linePos !== undefined) return ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
  const m = /position (\d+)/.exec((err as Error).message)
  if (m === null) return (err as Error).message.includes('end of JSON input') ? ' at the end of the file' : ''
  const before = text.slice(0, Number(m[1]))
  const line = before.split('\n').length
  return ` at line ${line}, column ${before.length - before.lastIndexOf('\n')}`
}

// The YAML parser recurses once per nesting level. Its stack overflow is mostly caught
// (a YAMLParseError), but not always: a file of 100,000 "[" parsed when the stack was
// already a few thousand frames deep killed the process with a fatal V8 out-of-memory
// error in the regular-expression compiler, which no catch stops. So nesting is bounded
// before parsing, conservatively (brackets count inside quotes and comments too, so
// nothing can hide them): flow brackets open at once, and the run of indentation and
// "-", "?", ":" indicators that starts a line (block nesting needs one more of those per level).
const MAX_FLOW_DEPTH = 64
const MAX_BLOCK_INDENT = 256

function yamlNestingProblem (text: string): string | null {
  let depth = 0
  let line = 1
  let lead = 0
  let leading = true
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x0a) { line++; lead = 0; leading = true; continue }
    if (leading) {
      // space, tab, "-", "?", ":"
      if (c === 0x20 || c === 0x09 || c === 0x2d || c === 0x3f || c === 0x3a) {
        if (++lead > MAX_BLOCK_INDENT) return `line ${line} is indented or nested more than ${MAX_BLOCK_INDENT} columns deep`
        continue
      }
      leading = false
    }
    if (c === 0x5b || c === 0x7b) { // [ {
      if (++depth > MAX_FLOW_DEPTH) return `brackets nest more than ${MAX_FLOW_DEPTH} levels deep at line ${line}`
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth-- // ] }
  }
  return null
}

function applyEnv (raw: Json, env: Env, sources: Record<string, string>, envFile: { file: string, values: Record<string, string> } | null): void {
  for (const { name, path, kind } of ENV_OVERRIDES) {
    const value = env[name]
    if (value === undefined || value === '') continue
    let converted: unknown
    switch (kind) {
      case 'string': converted = value; break
      case 'list': converted = value.split(',').map(s => s.trim()).filter(s => s !== ''); break
      case 'url-or-null': converted = value.toLowerCase() === 'none' ? null : value; break
      case 'port': converted = /^\d+$/.test(value) ? Number(value) : value; break
      case 'first-path': converted = value.split(':')[0]; break
    }
    setPath(raw, path, converted)
    sources[path.join('.')] = envSource(name, env, envFile)
  }
}

/** How a variable is named as a source: with its env file when it came from there. */
function envSource (name: string, env: Env, envFile: { file: string, values: Record<string, string> } | null): string {
  return envFile !== null && envFile.values[name] === env[name] ? `${name} in ${envFile.file}` : name
}

function setPath (obj: Json, path: readonly string[], value: unknown): void {
  let node: Json = obj
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      // A wrong-typed section in the file is reported by validation; the env value
      // replaces it only if the section is absent.
      if (next !== undefined) return
      node[key] = {}
    }
    node = node[key] as Json
  }
  node[path[path.length - 1] as string] = value
}

function describeIssue (issue: z.core.$ZodIssue, raw: unknown, sources: Readonly<Record<string, string>>): string {
  const base = issue.path.map(String)
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map(k => [...base, k].join('.'))
    const plural = keys.length > 1
    return `unknown key${plural ? 's' : ''} ${keys.map(k => `"${k}"`).join(', ')}: remove ${plural ? 'them' : 'it'} or check the spelling (keys are camelCase, e.g. kafka.lingerMs)`
  }
  const keyPath = base.length > 0 ? base.join('.') : '(top level)'
  const from = sources[keyPath] !== undefined ? ` (from ${sources[keyPath]})` : ''
  const got = valueAt(raw, issue.path)
  const gotText = got === undefined ? '' : `, got ${describeValue(keyPath, got)}`
  return `${keyPath}${from}: ${issue.message}${gotText}`
}

function valueAt (raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = raw
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[key]
  }
  return node
}

// A value under a secret's key, anything in kafka.clientProperties (it may hold what
// belongs in kafka.security) and anything under a key that sounds like a secret is
// never quoted back.
function mayBeSecret (keyPath: string): boolean {
  if (SECRET_PATHS.includes(keyPath) || keyPath.startsWith('kafka.clientProperties')) return true
  // URLs too: one holding a credential is refused, and its text must not be the leak.
  return /pass|secret|token|credential|key|auth|sasl|url/i.test(keyPath.split('.').slice(-1)[0] ?? '')
}

function describeValue (keyPath: string, value: unknown): string {
  if (mayBeSecret(keyPath)) return REDACTED
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    // JSON.stringify recurses: a file with `kafka:` nested 100,000 lists deep made it
    // overflow the stack, and the RangeError escaped instead of FINNHUBD_ERR_CONFIG.
    text = show(value)
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

/** A copy safe to print or log: the tokens and passwords are replaced. */
export function redactConfig (config: Config): Config {
  return redactSecrets(config)
}

export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/**
 * What the replication settings allow that is probably not meant: consistency levels
 * the keyspace cannot meet or that may miss each other (core/consistency.ts), and a
 * min.insync.replicas equal to the topics' replication (one broker down stops writes).
 */
export function replicationWarnings (config: Config): string[] {
  const c = config.cassandra
  const out = consistencyWarnings(c.consistency, effectiveReadConsistency(c.consistency, c.readConsistency), keyspaceReplication(c), c.localDataCenter)
  const rf = config.kafka.topicReplicationFactor
  if (rf > 1 && topicMinInsyncReplicas(config.kafka) === rf) {
    out.push(`kafka.topicMinInsyncReplicas equals kafka.topicReplicationFactor (${rf}): with acks=all one broker down stops every write; ` +
      `${rf - 1} keeps writing through the loss of one broker without losing an acknowledged trade`)
  }
  return out
}
