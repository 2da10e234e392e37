// The gaps table (cql/006_gaps.cql): writing a gap's row into each month it overlaps,
// and reading the gaps of a time range (the CLI's `query --gaps`, the console's
// /api/gaps). Gaps are few (a handful a day), so a range is read month partition by
// month partition and filtered here.

import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { monthsBetween, type Gap, type GapReason } from '../core/gaps.js'
import { combineGaps, type Hole, type RedundancyGroup } from '../core/redundancy.js'

/** A stored gap row: the gap, and which ingest daemon recorded it. */
export interface StoredGap extends Gap {
  source: string
}

/**
 * Month partitions one read or one row covers at most (the latest ones): ten years, beyond
 * the console's longest gap range (MAX_GAP_RANGE_MS, 3,000 days, about 99 months), so a
 * range it serves is read whole.
 */
export const MAX_GAP_MONTHS = 120

/** Upserts `gap` into every month partition from its start to its end (to `now` while open). */
export async function writeGap (client: cassandra.Client, keyspace: string, gap: Gap, source: string, now: number): Promise<void> {
  const cql = `INSERT INTO ${keyspace}.gaps (month, gap_id, reason, start_ts, end_ts, symbols, dropped, source, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
  const months = monthsBetween(gap.start, gap.end ?? Math.max(gap.start, now)).slice(-MAX_GAP_MONTHS)
  for (const month of months) {
    await client.execute(cql, [month, gap.id, gap.reason, new Date(gap.start), gap.end === null ? null : new Date(gap.end), gap.symbols, gap.dropped, source, new Date(gap.openedAt), new Date(now)], { prepare: true })
  }
}

function gapOfRow (r: cassandra.types.Row): StoredGap {
  const dropped = r['dropped'] as { toNumber: () => number } | null
  const end = r['end_ts'] as Date | null
  return {
    id: r['gap_id'] as string,
    reason: r['reason'] as GapReason,
    start: (r['start_ts'] as Date).getTime(),
    end: end === null ? null : end.getTime(),
    symbols: [...((r['symbols'] as string[] | null) ?? [])].sort(),
    dropped: dropped === null ? null : dropped.toNumber(),
    source: (r['source'] as string | null) ?? '',
    openedAt: (r['opened_at'] as Date).getTime()
  }
}

/**
 * The gaps overlapping [fromMs, toMs) (an open gap reaches to now), of `symbol` when
 * given, oldest first, at most `limit`.
 */
export async function storedGaps (client: cassandra.Client, config: Config['cassandra'], fromMs: number, toMs: number, symbol: string | null, limit: number): Promise<StoredGap[]> {
  const cql = `SELECT gap_id, reason, start_ts, end_ts, symbols, dropped, source, opened_at FROM ${config.keyspace}.gaps WHERE month = ?`
  const seen = new Map<string, StoredGap>()
  for (const month of monthsBetween(fromMs, Math.max(fromMs, toMs - 1)).slice(-MAX_GAP_MONTHS)) {
    const rows = (await client.execute(cql, [month], { prepare: true, fetchSize: 5_000 })).rows
    for (const row of rows) {
      const g = gapOfRow(row)
      if (g.start >= toMs || (g.end !== null && g.end < fromMs)) continue
      if (symbol !== null && !g.symbols.includes(symbol)) continue
      seen.set(g.id, g)
    }
  }
  return [...seen.values()].sort((a, b) => a.start - b.start || a.id.localeCompare(b.id)).slice(0, limit)
}

/** A stored gap as the readers show it: `covered` when it is a redundancy group member's and no hole of the group overlaps it. */
export interface ShownGap extends StoredGap {
  covered: boolean
}

/**
 * The readers' view (`query --gaps`, /api/gaps) under the reader's redundancy group
 * (config.redundancy): every row, each member's marked covered where the other members
 * had no gap at the same time for its symbols, and the group's holes (core/redundancy.ts).
 */
export function gapView (gaps: readonly StoredGap[], group: RedundancyGroup | null, now: number): { gaps: ShownGap[], holes: Hole[] } {
  const { holes, covered } = combineGaps(gaps, group, now)
  const members = new Set(covered)
  const overlaps = (g: StoredGap): boolean => holes.some(h => h.start <= (g.end ?? now) && g.start <= h.end && h.symbols.some(s => g.symbols.includes(s)))
  return { gaps: gaps.map(g => ({ ...g, covered: members.has(g) && !overlaps(g) })), holes }
}

/** One line per gap for `finnhubd query --gaps`. */
export function gapLine (g: StoredGap & { covered?: boolean }): string {
  const end = g.end === null ? 'open' : new Date(g.end).toISOString()
  const span = g.end === null ? '' : `  ${((g.end - g.start) / 1000).toFixed(3)} s`
  const symbols = g.symbols.length <= 6 ? g.symbols.join(',') : `${g.symbols.slice(0, 6).join(',')} +${g.symbols.length - 6}`
  const covered = g.covered === true ? `  covered by the group (${g.source}'s own gap, no hole)` : ''
  return `${new Date(g.start).toISOString()} → ${end}${span}  ${g.reason}  dropped ${g.dropped ?? 'unknown'}  ${symbols}${covered}`
}

/**
 * `finnhubd query --gaps`: the gaps since `sinceMs` (of `symbol` when given), oldest first,
 * one line each; with a redundancy group, its members' gaps the others covered are marked
 * so, and the group's holes (where every member had a gap) follow.
 */
export async function queryGapLines (client: cassandra.Client, config: Config['cassandra'], symbol: string | null, sinceMs: number, limit: number, now: number, group: RedundancyGroup | null = null): Promise<string[]> {
  const view = gapView(await storedGaps(client, config, sinceMs, now + 86_400_000, symbol, limit), group, now)
  const lines = view.gaps.map(gapLine)
  if (group !== null && view.gaps.some(g => g.source.startsWith(`${group.group}/`))) {
    lines.push(`group ${group.group} (${group.members.join(', ')}): ${view.holes.length === 0 ? 'no hole: every member\'s gap was covered by another' : `${view.holes.length} holes, where every member had a gap:`}`)
    for (const h of view.holes) lines.push(`  hole ${new Date(h.start).toISOString()} → ${new Date(h.end).toISOString()}  ${((h.end - h.start) / 1000).toFixed(3)} s  ${h.symbols.join(',')}`)
  }
  return lines
}
