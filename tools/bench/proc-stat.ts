// CPU accounting from /proc text: a process's user + system time from
// /proc/<pid>/stat (or a thread's, /proc/<pid>/task/<tid>/stat), the machine's busy
// and total time from the `cpu` line of /proc/stat, and the share of a core a
// process used between two readings. Pure parsers (the readers are one line each)
// so the hostile cases — a command name with spaces and parentheses, a truncated
// file, a process gone — are tested without /proc.

import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc's times (USER_HZ; 100 on every Linux this runs on). */
export const CLOCK_TICKS_PER_SEC = 100

/**
 * utime + stime, in clock ticks, from the text of a /proc/<pid>/stat file; null when
 * the text is not one. The command name (field 2) is in parentheses and may itself
 * hold spaces and `)`, so the fields after it are found from the last `)`.
 */
export function procStatTicks (text: string): number | null {
  const close = text.lastIndexOf(')')
  if (close < 0 || text.indexOf('(') < 0 || text.indexOf('(') > close) return null
  // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
  const fields = text.slice(close + 1).trim().split(/\s+/)
  const utime = fields[11]
  const stime = fields[12]
  if (utime === undefined || stime === undefined || !/^\d+$/.test(utime) || !/^\d+$/.test(stime)) return null
  const ticks = Number(utime) + Number(stime)
  return Number.isSafeInteger(ticks) ? ticks : null
}

/** The machine's CPU time from /proc/stat: busy (everything but idle and iowait) and total, in clock ticks; null when there is no valid `cpu` line. */
export function machineTicks (text: string): { busy: number, total: number } | null {
  const line = text.split('\n').find(l => /^cpu\s/.test(l))
  if (line === undefined) return null
  const values = line.trim().split(/\s+/).slice(1)
  // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
  // already counted in user and nice, so only the first eight add up to the total.
  if (values.length < 4 || values.some(v => !/^\d+$/.test(v))) return null
  const n = values.slice(0, 8).map(Number)
  const total = n.reduce((a, b) => a + b, 0)
  const idle = (n[3] ?? 0) + (n[4] ?? 0)
  if (!Number.isSafeInteger(total)) return null
  return { busy: total - idle, total }
}

/** Percent of one core used between two readings (ticks) over `seconds`; NaN when either reading is missing or time did not pass. */
export function corePercent (before: number | null, after: number | null, seconds: number): number {
  if (before === null || after === null || !(seconds > 0) || after < before) return NaN
  return Math.round((after - before) / CLOCK_TICKS_PER_SEC / seconds * 1000) / 10
}

/** Percent of the whole machine (all cores) busy between two /proc/stat readings; NaN when either is missing. */
export function machineBusyPercent (before: { busy: number, total: number } | null, after: { busy: number, total: number } | null): number {
  if (before === null || after === null || after.total <= before.total) return NaN
  return Math.round((after.busy - before.busy) / (after.total - before.total) * 1000) / 10
}

function readOrNull (file: string): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** A process's (or thread's) CPU ticks now; null when it is gone or unreadable. */
export function readProcTicks (pid: number | null, statFile = pid === null ? null : `/proc/${pid}/stat`): number | null {
  if (statFile === null) return null
  const text = readOrNull(statFile)
  return text === null ? null : procStatTicks(text)
}

/** The machine's busy and total CPU ticks now. */
export function readMachineTicks (): { busy: number, total: number } | null {
  const text = readOrNull('/proc/stat')
  return text === null ? null : machineTicks(text)
}
