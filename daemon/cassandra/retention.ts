// Retention of the store's tables, kept in line with the config by `finnhubd migrate`
// after the migrations: TimeWindowCompactionStrategy with a window matching each
// table's partition span, and default_time_to_live from cassandra.tradesRetentionDays /
// candlesRetentionDays. Not a migration, because the TTL is a setting that changes: the
// step reads system_schema.tables and ALTERs only what differs, so a second run (or a
// run on a store created with these options) changes nothing. One entry per table in
// RETENTION_TABLES; planning is pure, reconcileRetention alone talks to Cassandra.
// Why TWCS and these windows: docs/operations.md, "Retention".

import type { Client } from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../core/errors.js'

export const TWCS_CLASS = 'org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy'
export const SECONDS_PER_DAY = 86_400

export type RetentionSetting = 'tradesRetentionDays' | 'candlesRetentionDays'
export type WindowUnit = 'MINUTES' | 'HOURS' | 'DAYS'

type RetentionConfig = Pick<Config['cassandra'], 'keyspace' | 'tradesTable' | RetentionSetting>

export interface RetentionEntry {
  /** The table, or how the config names it (the trades table's name is a setting). */
  table: string | ((cassandra: RetentionConfig) => string)
  /** The setting of its TTL; several: the longest of them (0, forever, the longest of all). */
  retention: RetentionSetting | readonly RetentionSetting[]
  /** TWCS window: about one partition's time span, so a partition lives in one or two windows. */
  windowUnit: WindowUnit
  windowSize: number
}

/**
 * The tables under retention. Trades and one-minute candles: partitions of a UTC day,
 * windows of a day. 5 m / 15 m / 1 h candles: partitions of a calendar month; TWCS
 * windows are aligned to the epoch and there is no month unit, so a 30-day window keeps a
 * month's partition within two windows (a read touches at most two SSTables once they
 * are compacted) and a year in about twelve. 1 d candles: partitions of a year, windows
 * of 365 days (two at most per partition). The ledger of gaps: partitions of a month, so
 * windows of 30 days as for the month-partitioned candles; its rows say where trades and
 * the candles made of them may be missing, so they live as long as the longer-lived of
 * the two (forever when either does).
 */
export const RETENTION_TABLES: readonly RetentionEntry[] = Object.freeze([
  { table: c => c.tradesTable, retention: 'tradesRetentionDays', windowUnit: 'DAYS', windowSize: 1 },
  { table: 'candles_1m', retention: 'candlesRetentionDays', windowUnit: 'DAYS', windowSize: 1 },
  { table: 'candles_5m', retention: 'candlesRetentionDays', windowUnit: 'DAYS', windowSize: 30 },
  { table: 'candles_15m', retention: 'candlesRetentionDays', windowUnit: 'DAYS', windowSize: 30 },
  { table: 'candles_1h', retention: 'candlesRetentionDays', windowUnit: 'DAYS', windowSize: 30 },
  { table: 'candles_1d', retention: 'candlesRetentionDays', windowUnit: 'DAYS', windowSize: 365 },
  { table: 'gaps', retention: ['tradesRetentionDays', 'candlesRetentionDays'], windowUnit: 'DAYS', windowSize: 30 }
] satisfies RetentionEntry[])

/** What one table should have. */
export interface TableOptions {
  table: string
  ttlSeconds: number
  windowUnit: WindowUnit
  windowSize: number
}

/** What one table has, as system_schema.tables says. */
export interface CurrentOptions {
  compaction: Readonly<Record<string, string>>
  defaultTimeToLive: number
}

export interface TableChange {
  table: string
  /** The ALTER TABLE … WITH clauses (no keyspace, no table). */
  clauses: string[]
  /** One line per changed option: what it was, what it becomes. */
  changes: string[]
}

export function desiredOptions (cassandra: RetentionConfig, entries: readonly RetentionEntry[] = RETENTION_TABLES): TableOptions[] {
  return entries.map(e => ({
    table: typeof e.table === 'string' ? e.table : e.table(cassandra),
    ttlSeconds: longestDays(typeof e.retention === 'string' ? [cassandra[e.retention]] : e.retention.map(r => cassandra[r])) * SECONDS_PER_DAY,
    windowUnit: e.windowUnit,
    windowSize: e.windowSize
  }))
}

/** The longest of some retentions in days, 0 (forever) being longer than any. */
function longestDays (days: readonly number[]): number {
  return days.includes(0) ? 0 : Math.max(...days)
}

/** The short name of a compaction class ("org.apache….TimeWindowCompactionStrategy" → "TimeWindowCompactionStrategy"). */
export function compactionName (cls: string | undefined): string {
  return (cls ?? 'unknown').split('.').pop() as string
}

const describeTtl = (s: number): string => s === 0 ? '0 (forever)' : `${s} (${formatSeconds(s)})`

function formatSeconds (s: number): string {
  if (s % SECONDS_PER_DAY === 0) return `${s / SECONDS_PER_DAY} d`
  return `${s} s`
}

/** The ALTER a table needs to match `want`, or null when it already does. Pure. */
export function planTableChange (want: TableOptions, have: CurrentOptions): TableChange | null {
  const clauses: string[] = []
  const changes: string[] = []
  const haveClass = compactionName(have.compaction['class'])
  const isTwcs = haveClass === compactionName(TWCS_CLASS)
  // TWCS's own defaults, for a map that omits them.
  const haveUnit = have.compaction['compaction_window_unit'] ?? 'DAYS'
  const haveSize = have.compaction['compaction_window_size'] ?? '1'
  if (!isTwcs || haveUnit !== want.windowUnit || Number(haveSize) !== want.windowSize) {
    // Same class: the other subproperties an operator set stay; another class's do not apply.
    const kept = isTwcs ? Object.entries(have.compaction).filter(([k]) => !['class', 'compaction_window_unit', 'compaction_window_size'].includes(k)) : []
    const map: Array<[string, string]> = [['class', TWCS_CLASS], ['compaction_window_unit', want.windowUnit], ['compaction_window_size', String(want.windowSize)], ...kept]
    clauses.push(`compaction = {${map.map(([k, v]) => `${cqlString(k)}: ${cqlString(v)}`).join(', ')}}`)
    changes.push(`compaction ${isTwcs ? `TimeWindowCompactionStrategy (${haveSize} ${haveUnit})` : haveClass} → TimeWindowCompactionStrategy (${want.windowSize} ${want.windowUnit})`)
  }
  if (have.defaultTimeToLive !== want.ttlSeconds) {
    clauses.push(`default_time_to_live = ${want.ttlSeconds}`)
    changes.push(`default_time_to_live ${describeTtl(have.defaultTimeToLive)} → ${describeTtl(want.ttlSeconds)}`)
  }
  return clauses.length === 0 ? null : { table: want.table, clauses, changes }
}

const cqlString = (text: string): string => `'${text.replace(/'/g, "''")}'`

export interface RetentionResult {
  altered: TableChange[]
  unchanged: string[]
}

/**
 * Reads each table's options and ALTERs those that differ from `want`, logging each
 * change. A table missing is an error: the migrations create every table listed.
 */
export async function reconcileTables (client: Client, keyspace: string, want: readonly TableOptions[],
  log: (line: string) => void = () => {}): Promise<RetentionResult> {
  const rs = await client.execute(
    'SELECT table_name, compaction, default_time_to_live FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true })
  const current = new Map(rs.rows.map(row => [row['table_name'] as string, {
    compaction: (row['compaction'] ?? {}) as Record<string, string>,
    defaultTimeToLive: row['default_time_to_live'] as number
  }]))
  const result: RetentionResult = { altered: [], unchanged: [] }
  for (const w of want) {
    const have = current.get(w.table)
    if (have === undefined) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `table ${keyspace}.${w.table} does not exist, so its retention cannot be set; the migrations create it: ` +
        'check cassandra.keyspace / cassandra.tradesTable and run `finnhubd migrate` again')
    }
    const change = planTableChange(w, have)
    if (change === null) {
      result.unchanged.push(w.table)
      continue
    }
    const cql = `ALTER TABLE ${keyspace}.${w.table} WITH ${change.clauses.join(' AND ')}`
    try {
      await client.execute(cql)
    } catch (err) {
      throw new FinnhubdError('FINNHUBD_ERR_MIGRATION',
        `cannot set the retention of ${keyspace}.${w.table} (${cql}): ${(err as Error).message}; ` +
        'fix the cause and run `finnhubd migrate` again', { cause: err })
    }
    log(`table ${w.table}: ${change.changes.join('; ')}`)
    result.altered.push(change)
  }
  return result
}

/** The config's retention applied to every table of RETENTION_TABLES. */
export async function reconcileRetention (client: Client, cassandra: RetentionConfig,
  log: (line: string) => void = () => {}): Promise<RetentionResult> {
  const result = await reconcileTables(client, cassandra.keyspace, desiredOptions(cassandra), log)
  if (result.altered.some(c => c.changes.some(line => line.startsWith('default_time_to_live')))) {
    log('a new default_time_to_live applies to rows written from now on; rows already stored keep theirs ' +
      '(docs/operations.md, "Retention", says how to expire them)')
  }
  return result
}
