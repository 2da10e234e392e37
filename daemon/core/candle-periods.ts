// The candle resolutions, pure: 1 m, 5 m, 15 m, 1 h and 1 d, every one aligned to
// UTC (a period starts at a multiple of its length since the epoch; each length
// divides a day, so no period spans two UTC days), and the Cassandra partition each
// period's row lives in. candles_1m keeps its first schema (cql/004: (symbol, day),
// minute); the others (cql/005) are (symbol, bucket), start, with bucket the first day
// of the period's month (5 m, 15 m, 1 h: at most 8,928 rows a partition) or year (1 d):
// a month of 1 h candles or a year of 1 d candles is one partition read.

export const RESOLUTION_NAMES = ['1m', '5m', '15m', '1h', '1d'] as const
export type ResolutionName = typeof RESOLUTION_NAMES[number]

export interface Resolution {
  readonly name: ResolutionName
  /** The period's length. */
  readonly ms: number
  readonly table: string
  /** The partition key's date column and the clustering column, as the table names them. */
  readonly bucketColumn: 'day' | 'bucket'
  readonly startColumn: 'minute' | 'start'
  /** What one partition spans. */
  readonly partition: 'day' | 'month' | 'year'
}

const MINUTE = 60_000
export const DAY_MS = 86_400_000

export const RESOLUTIONS: Readonly<Record<ResolutionName, Resolution>> = {
  '1m': { name: '1m', ms: MINUTE, table: 'candles_1m', bucketColumn: 'day', startColumn: 'minute', partition: 'day' },
  '5m': { name: '5m', ms: 5 * MINUTE, table: 'candles_5m', bucketColumn: 'bucket', startColumn: 'start', partition: 'month' },
  '15m': { name: '15m', ms: 15 * MINUTE, table: 'candles_15m', bucketColumn: 'bucket', startColumn: 'start', partition: 'month' },
  '1h': { name: '1h', ms: 60 * MINUTE, table: 'candles_1h', bucketColumn: 'bucket', startColumn: 'start', partition: 'month' },
  '1d': { name: '1d', ms: DAY_MS, table: 'candles_1d', bucketColumn: 'bucket', startColumn: 'start', partition: 'year' }
}

export function isResolutionName (s: string): s is ResolutionName {
  return (RESOLUTION_NAMES as readonly string[]).includes(s)
}

/** The start of the period of `res` holding the instant `ms`. */
export function periodStart (res: Resolution, ms: number): number {
  return Math.floor(ms / res.ms) * res.ms
}

/** YYYY-MM-DD of the partition holding the period that starts at `start`. */
export function bucketOf (res: Resolution, start: number): string {
  const iso = new Date(start).toISOString()
  switch (res.partition) {
    case 'day': return iso.slice(0, 10)
    case 'month': return `${iso.slice(0, 7)}-01`
    case 'year': return `${iso.slice(0, 4)}-01-01`
  }
}

/**
 * The partitions (bucket days, oldest first) holding the periods of `res` that start in
 * [from, to): what a range read visits.
 */
export function bucketsBetween (res: Resolution, from: number, to: number): string[] {
  const out: string[] = []
  if (!(to > from)) return out
  let at = periodStart(res, from)
  for (;;) {
    const b = bucketOf(res, at)
    if (out[out.length - 1] !== b) out.push(b)
    const d = new Date(`${b}T00:00:00Z`)
    if (res.partition === 'day') d.setUTCDate(d.getUTCDate() + 1)
    else if (res.partition === 'month') d.setUTCMonth(d.getUTCMonth() + 1)
    else d.setUTCFullYear(d.getUTCFullYear() + 1)
    at = d.getTime()
    if (at >= to) return out
  }
}
