// The seed's `.env` file, read by `finnhubd --env-file FILE`. Node's own parser
// (util.parseEnv) reads it; then every name is checked, because a typo in an env file
// is as silent as a typo in a config key: a name finnhubd reads is honoured, a seed
// name that configured the seed's other containers (Cassandra's own cluster settings,
// Grafana) is reported with what replaces it, and any other name is an error. The
// process's environment wins over the file, as with Node's --env-file and systemd's
// Environment= over EnvironmentFile=.

import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { FinnhubdError } from '../core/errors.js'

type Env = Readonly<Record<string, string | undefined>>

/** Seed variables that mean nothing to a client of Cassandra, Kafka or Finnhub: what to do instead. */
export const SEED_VARIABLES_WITHOUT_MEANING: Readonly<Record<string, string>> = {
  CASSANDRA_CLUSTER_NAME: 'names the cluster inside the seed\'s Cassandra container; finnhubd joins no cluster, it connects to the one at CASSANDRA_HOST:CASSANDRA_PORT',
  CASSANDRA_RACK: 'places the seed\'s Cassandra container in a rack; finnhubd is a client and has no rack (CASSANDRA_DC picks its local data center)',
  CASSANDRA_BROADCAST_ADDRESS: 'has no meaning here: it is the address the seed\'s Cassandra container announces to its peers; finnhubd reaches Cassandra at CASSANDRA_HOST:CASSANDRA_PORT',
  CASSANDRA_LISTEN_ADDRESS: 'is where the seed\'s Cassandra container listens; finnhubd reaches Cassandra at CASSANDRA_HOST:CASSANDRA_PORT (the local stack: npm run stack -- up)',
  GRAFANA_ADMIN_USER: 'configures the seed\'s Grafana container; finnhubd runs no Grafana: set the admin in your own Grafana and import monitoring/grafana (see docs/metrics.md)',
  GRAFANA_ADMIN_PASSWORD: 'configures the seed\'s Grafana container; finnhubd runs no Grafana: set the admin in your own Grafana and import monitoring/grafana (see docs/metrics.md)'
}

/** Names of the local stack's settings (tools/stack/options.ts): allowed in an env file for `finnhubd stack` and the demo. */
const STACK_VARIABLE = /^FINNHUBD_(STACK_[A-Z_]+|KAFKA_[A-Z_]+|CASSANDRA_[A-Z_]+|JAVA_HOME|MVN)$/

export interface EnvFile {
  file: string
  values: Record<string, string>
}

/**
 * Reads and checks an env file. `known` are the names finnhubd reads (the config's
 * overrides); a relative SCHEMA_PATH is made relative to the file's folder, as the
 * seed's docker-compose read it.
 */
export function readEnvFile (file: string, known: readonly string[]): EnvFile {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG', `cannot read the env file ${file} (${code}); check the path given with --env-file`, { cause: err })
  }
  const values = parseEnv(text) as Record<string, string>
  const allowed = new Set([...known, 'FINNHUBD_CONFIG'])
  const unknown = Object.keys(values).filter(name =>
    !allowed.has(name) && SEED_VARIABLES_WITHOUT_MEANING[name] === undefined && !STACK_VARIABLE.test(name))
  if (unknown.length > 0) {
    const lineNumbers = lineNumbersOf(text)
    const lines = unknown.map(name => {
      const near = closest(name, [...allowed])
      // Node's parser joins a line without "=" to the name on the next line ("A\nB=1" is
      // the name "A\nB"): that name is shown escaped, at the line of its "=".
      const parts = name.split(/\r\n|\n|\r/)
      const line = lineNumbers.get(bareName(parts[parts.length - 1] as string))
      const shown = parts.length > 1 || CONTROL.test(name) ? JSON.stringify(name) : name
      return `${file}${line === undefined ? '' : `:${line}`}: unknown variable ${shown}${near !== null ? ` (did you mean ${near}?)` : ''}`
    })
    throw new FinnhubdError('FINNHUBD_ERR_CONFIG',
      `${lines.join('\n  ')}\nfinnhubd reads ${[...allowed].join(', ')}; remove the line or fix the name (docs/configuration.md, "Coming from the seed").`)
  }
  const schemaPath = values['SCHEMA_PATH']
  if (schemaPath !== undefined && schemaPath !== '' && !isAbsolute(schemaPath)) values['SCHEMA_PATH'] = resolve(dirname(resolve(file)), schemaPath)
  return { file, values }
}

/** The environment the config is read from: the file's values under the process's own. */
export function mergeEnv (envFile: EnvFile | null, env: Env): Env {
  if (envFile === null) return env
  const merged: Record<string, string | undefined> = { ...envFile.values }
  for (const [name, value] of Object.entries(env)) if (value !== undefined) merged[name] = value
  return merged
}

/** One warning per seed variable set (in the file or the process's environment) that finnhubd has no use for. */
export function seedVariableWarnings (env: Env, envFile: EnvFile | null): string[] {
  const out: string[] = []
  for (const [name, why] of Object.entries(SEED_VARIABLES_WITHOUT_MEANING)) {
    const from = env[name] !== undefined ? 'the environment' : envFile?.values[name] !== undefined ? envFile.file : null
    if (from !== null) out.push(`${name} (from ${from}) is ignored: it ${why}; remove it to silence this warning`)
  }
  return out
}

// eslint-disable-next-line no-control-regex -- control characters are what is looked for
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * The line (1-based) where each name is first assigned. Built once by splitting at the
 * first "=": this was a RegExp made of the name, which threw a SyntaxError (not
 * FINNHUBD_ERR_CONFIG) for a name such as "A(B", said line 0 for "export  NAME", and
 * rescanned the file once per unknown name.
 */
function lineNumbersOf (text: string): Map<string, number> {
  const lines = new Map<string, number>()
  text.split(/\r\n|\n|\r/).forEach((line, i) => {
    const eq = line.indexOf('=')
    if (eq < 0) return
    const name = bareName(line.slice(0, eq))
    if (!lines.has(name)) lines.set(name, i + 1)
  })
  return lines
}

function bareName (text: string): string {
  return text.trim().replace(/^export\s+/, '').trim()
}

/** The known name nearest to `name` by edit distance, when it is near enough to be a typo. */
function closest (name: string, names: readonly string[]): string | null {
  let best: string | null = null
  let bestDistance = Infinity
  const near = Math.max(2, Math.floor(name.length / 4))
  for (const candidate of names) {
    // The distance is at least the difference in length: a long junk name (a line of
    // 100,000 characters) is not compared character by character with every name.
    if (Math.abs(name.length - candidate.length) > near) continue
    const d = editDistance(name, candidate)
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  return bestDistance <= near ? best : null
}

function editDistance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] as number
}
