// Versioned CQL migrations (cql/NNN_name.cql), applied by `finnhubd migrate`.
// Each file is a template: ${keyspace}, ${trades_table}, ${replication} (the keyspace's
// replication map) and ${replication_factor} come from the config. Every statement is
// idempotent (IF NOT EXISTS), applied versions are recorded with the file's checksum in schema_migrations, and an
// applied file that was edited afterwards is refused: schema history only grows.
// Parsing and planning are pure; only applyMigrations talks to Cassandra.

import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Client } from 'cassandra-driver'
import { FinnhubdError } from '../core/errors.js'
import type { Replication } from '../core/consistency.js'

export interface Migration {
  version: number
  name: string
  file: string
  checksum: string
  /** The file's statements, still with their ${placeholders}. */
  statements: string[]
}

export interface AppliedMigration {
  version: number
  checksum: string
}

export interface MigrationParams {
  keyspace: string
  tradesTable: string
  replicationFactor: number
  /** The keyspace's replication map (cassandra.replication); absent: SimpleStrategy with replicationFactor. */
  replication?: Replication
}

// Data-center names go into CQL text between quotes: the schema allows only these, and
// the renderer refuses anything else again (it may be called with other input).
const SAFE_DC = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** The CQL replication map, e.g. {'class': 'NetworkTopologyStrategy', 'dc1': 3}; a hostile name is refused. */
export function renderReplication (replication: Replication): string {
  if (replication.class === 'SimpleStrategy') {
    return `{'class': 'SimpleStrategy', 'replication_factor': ${factor(replication.replicationFactor, 'replicationFactor')}}`
  }
  const entries = Object.entries(replication.dataCenters)
  if (entries.length === 0) throw new FinnhubdError('FINNHUBD_ERR_MIGRATION', 'cassandra.replication.dataCenters is empty: name at least one data center, e.g. { datacenter1: 3 }')
  const parts = entries.map(([dc, rf]) => {
    if (!SAFE_DC.test(dc)) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `data-center name ${JSON.stringify(dc.slice(0, 80))} in cassandra.replication.dataCenters is not allowed: use letters, digits, ".", "_" and "-" (up to 64), as Cassandra names them (nodetool status)`)
    }
    return `'${dc}': ${factor(rf, `dataCenters.${dc}`)}`
  })
  return `{'class': 'NetworkTopologyStrategy', ${parts.join(', ')}}`
}

function factor (n: number, key: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new FinnhubdError('FINNHUBD_ERR_MIGRATION', `cassandra.replication ${key} must be a whole number from 1 to 9, got ${String(n)}`)
  return n
}

/**
 * The replication map as Cassandra stores it in system_schema.keyspaces (full class
 * names, factors as strings), for comparing with what a keyspace has.
 */
export function storedReplication (replication: Replication): Record<string, string> {
  if (replication.class === 'SimpleStrategy') {
    return { class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: String(replication.replicationFactor) }
  }
  const out: Record<string, string> = { class: 'org.apache.cassandra.locator.NetworkTopologyStrategy' }
  for (const [dc, rf] of Object.entries(replication.dataCenters)) out[dc] = String(rf)
  return out
}

/** Whether two stored replication maps say the same (key order aside). */
export function sameReplication (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k])
}

/**
 * The lines for a keyspace whose replication differs from the config: migrate does not
 * change it (raising it without a repair leaves the new replicas empty, and reads at
 * LOCAL_QUORUM may then miss rows), so it prints the statement and the repair to run.
 */
export function replicationNotice (keyspace: string, actual: Readonly<Record<string, string>>, replication: Replication): string {
  const alter = `ALTER KEYSPACE ${keyspace} WITH replication = ${renderReplication(replication)};`
  return `keyspace ${keyspace} has replication ${JSON.stringify(actual)} but the config asks for ${JSON.stringify(storedReplication(replication))}; ` +
    `finnhubd migrate leaves it as it is. To change it run \`${alter}\` in cqlsh, then \`nodetool repair --full ${keyspace}\` on every node ` +
    '(after raising the replication the new replicas are empty until repaired: reads may miss rows until then)'
}

/** The keyspace's replication as Cassandra has it, or null when the keyspace does not exist. */
export async function keyspaceReplicationOf (client: Client, keyspace: string): Promise<Record<string, string> | null> {
  const rs = await client.execute('SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?', [keyspace], { prepare: true })
  const row = rs.first()
  return row === null ? null : { ...(row['replication'] as Record<string, string>) }
}

const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.cql$/

export function loadMigrations (dir: string): Migration[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_MIGRATION', `cannot read the migrations folder ${dir}: ${(err as Error).message}`, { cause: err })
  }
  const migrations: Migration[] = []
  for (const name of names.sort()) {
    if (!name.endsWith('.cql')) continue
    const match = FILE_PATTERN.exec(name)
    if (match === null) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `migration file ${name} does not match NNN_name.cql (lower-case name); rename it, e.g. 005_add_index.cql`)
    }
    const text = readFileSync(join(dir, name), 'utf8')
    migrations.push({
      version: Number(match[1]),
      name: match[2] as string,
      file: name,
      checksum: createHash('sha256').update(text).digest('hex'),
      statements: splitStatements(text)
    })
  }
  for (let i = 1; i < migrations.length; i++) {
    const prev = migrations[i - 1] as Migration
    const cur = migrations[i] as Migration
    if (cur.version === prev.version) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION', `migrations ${prev.file} and ${cur.file} share version ${cur.version}; give each file its own number`)
    }
  }
  return migrations
}

/** Splits a CQL file into statements: `--` and `//` line comments dropped, `;` at a line end ends one. */
export function splitStatements (text: string): string[] {
  const statements: string[] = []
  let current: string[] = []
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\s*(--|\/\/).*$/, '').trimEnd()
    if (line.trim() === '') continue
    current.push(line)
    if (line.endsWith(';')) {
      statements.push(current.join('\n').slice(0, -1).trim())
      current = []
    }
  }
  if (current.length > 0) statements.push(current.join('\n').trim())
  return statements
}

export function renderStatement (statement: string, params: MigrationParams): string {
  const values: Record<string, string> = {
    keyspace: params.keyspace,
    trades_table: params.tradesTable,
    replication_factor: String(params.replicationFactor),
    replication: renderReplication(params.replication ?? { class: 'SimpleStrategy', replicationFactor: params.replicationFactor })
  }
  return statement.replace(/\$\{([a-z_]+)\}/g, (_whole, key: string) => {
    const value = values[key]
    if (value === undefined) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `unknown placeholder \${${key}} in a migration; known ones are ${Object.keys(values).map(k => `\${${k}}`).join(', ')}`)
    }
    return value
  })
}

/**
 * Earlier texts of a shipped migration that did the same for every config: a keyspace
 * that applied one of them is not refused. 001's replication map became one parameter
 * (${replication}, for NetworkTopologyStrategy); its SimpleStrategy text renders the same.
 */
const EQUIVALENT_CHECKSUMS: Readonly<Record<number, readonly string[]>> = {
  1: ['eeed927d271df3fe2e023466170cdc218956a0f8c0fdd11221880b0f4497e039']
}

/** The migrations still to apply, in order; refuses edited or unknown applied ones. */
export function planMigrations (migrations: readonly Migration[], applied: readonly AppliedMigration[]): Migration[] {
  const byVersion = new Map(migrations.map(m => [m.version, m]))
  for (const done of applied) {
    const file = byVersion.get(done.version)
    if (file === undefined) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `the database has migration ${done.version} applied but no cql/ file has that version; ` +
        'this finnhubd is older than the schema: upgrade it instead of running it against this keyspace')
    }
    if (file.checksum !== done.checksum && !(EQUIVALENT_CHECKSUMS[done.version] ?? []).includes(done.checksum)) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `migration ${file.file} was changed after it was applied (checksum differs); ` +
        'restore the applied text and put the change in a new, higher-numbered migration')
    }
  }
  const appliedVersions = new Set(applied.map(a => a.version))
  return migrations.filter(m => !appliedVersions.has(m.version))
}

export interface MigrateResult {
  applied: number[]
  alreadyApplied: number[]
}

export async function applyMigrations (client: Client, migrations: readonly Migration[], params: MigrationParams,
  log: (msg: string) => void = () => {}): Promise<MigrateResult> {
  const applied = await readApplied(client, params.keyspace)
  const pending = planMigrations(migrations, applied)
  // Versions applied before schema_migrations existed are recorded as soon as it does.
  const unrecorded: Migration[] = []
  for (const migration of pending) {
    log(`applying migration ${migration.file}`)
    for (const statement of migration.statements) {
      const cql = renderStatement(statement, params)
      try {
        await client.execute(cql)
      } catch (err) {
        throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
          `migration ${migration.file} failed on: ${cql.split('\n')[0] ?? ''} … — ${(err as Error).message}; ` +
          'fix the cause and run `finnhubd migrate` again (statements are idempotent)', { cause: err })
      }
    }
    unrecorded.push(migration)
    if (await migrationsTableExists(client, params.keyspace)) {
      for (const done of unrecorded.splice(0)) {
        await client.execute(
          `INSERT INTO ${params.keyspace}.schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
          [done.version, done.name, done.checksum, new Date()], { prepare: true })
      }
    }
  }
  if (unrecorded.length > 0) {
    throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
      `migrations ran but ${params.keyspace}.schema_migrations does not exist to record them; ` +
      'a migration must create it (cql/002_schema_migrations.cql)')
  }
  return { applied: pending.map(m => m.version), alreadyApplied: applied.map(a => a.version).sort((a, b) => a - b) }
}

/** Which of `tables` the keyspace lacks (a start that needs them refuses to run on a schema older than it). */
export async function missingTables (client: Client, keyspace: string, tables: readonly string[]): Promise<string[]> {
  const rs = await client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true })
  const present = new Set(rs.rows.map(r => r['table_name'] as string))
  return tables.filter(t => !present.has(t))
}

async function migrationsTableExists (client: Client, keyspace: string): Promise<boolean> {
  const rs = await client.execute(
    'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
    [keyspace, 'schema_migrations'], { prepare: true })
  return rs.rowLength > 0
}

async function readApplied (client: Client, keyspace: string): Promise<AppliedMigration[]> {
  if (!await migrationsTableExists(client, keyspace)) return []
  const rs = await client.execute(`SELECT version, checksum FROM ${keyspace}.schema_migrations`)
  return rs.rows.map(row => ({ version: row['version'] as number, checksum: row['checksum'] as string }))
}
