// Structured JSON logs, one object a line on stdout (journald keeps them), with a
// level that can change at run time (SIGHUP reload). `limited()` logs an event at
// most once per interval per key and says how many were suppressed meanwhile, so a
// flood of bad frames costs one line, not one line per frame.

import { LOG_LEVELS } from './config/schema.js'

export type LogLevel = typeof LOG_LEVELS[number]
type Fields = Record<string, unknown>

const RANK: Record<LogLevel, number> = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10 }

export interface Logger {
  level: LogLevel
  fatal: (msg: string, fields?: Fields) => void
  error: (msg: string, fields?: Fields) => void
  warn: (msg: string, fields?: Fields) => void
  info: (msg: string, fields?: Fields) => void
  debug: (msg: string, fields?: Fields) => void
  trace: (msg: string, fields?: Fields) => void
  /** Logs `key`'s event at most once per intervalMs, with the count suppressed since the last line. */
  limited: (level: LogLevel, key: string, msg: string, fields?: Fields) => void
  child: (bindings: Fields) => Logger
  /**
   * Secret values (tokens, passwords) this logger and its children never print: a
   * last line of defence behind messages written not to hold them. Values add up (a
   * reload's new ones beside the old, which running clients may still use).
   */
  redact: (values: Iterable<string>) => void
}

/** Secrets remembered at most (each reload may add some); beyond it the shortest are dropped. */
const MAX_SECRETS = 64
/** Shorter values are not searched for: they would blank out ordinary words. */
const MIN_SECRET_LENGTH = 4

export interface LoggerOptions {
  level: LogLevel
  write?: (line: string) => void
  now?: () => number
  limitIntervalMs?: number
  bindings?: Fields
}

interface LimitState { last: number, suppressed: number }

export function createLogger (options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => { process.stdout.write(line + '\n') })
  const now = options.now ?? Date.now
  const interval = options.limitIntervalMs ?? 10_000
  const limits = new Map<string, LimitState>()
  const shared = { level: options.level, secrets: [] as string[] }
  return build(options.bindings ?? {})

  function build (bindings: Fields): Logger {
    const emit = (level: LogLevel, msg: string, fields?: Fields): void => {
      if (RANK[level] < RANK[shared.level]) return
      const line = JSON.stringify({ time: new Date(now()).toISOString(), level, msg, ...bindings, ...fields }, errorReplacer)
      write(shared.secrets.length === 0 ? line : redactText(line, shared.secrets))
    }
    return {
      get level () { return shared.level },
      set level (level: LogLevel) { shared.level = level },
      fatal: (msg, fields) => emit('fatal', msg, fields),
      error: (msg, fields) => emit('error', msg, fields),
      warn: (msg, fields) => emit('warn', msg, fields),
      info: (msg, fields) => emit('info', msg, fields),
      debug: (msg, fields) => emit('debug', msg, fields),
      trace: (msg, fields) => emit('trace', msg, fields),
      limited: (level, key, msg, fields) => {
        const t = now()
        const state = limits.get(key)
        if (state !== undefined && t - state.last < interval) {
          state.suppressed++
          return
        }
        const suppressed = state?.suppressed ?? 0
        // Keys may carry input (a Finnhub error message, an unknown frame type): a peer
        // sending endless distinct ones must not grow this map without bound.
        if (state === undefined && limits.size >= MAX_LIMIT_KEYS) forgetQuiet(limits, t, interval)
        limits.set(key, { last: t, suppressed: 0 })
        emit(level, msg, suppressed > 0 ? { ...fields, suppressed } : fields)
      },
      child: (more: Fields) => build({ ...bindings, ...more }),
      redact: values => {
        for (const v of values) {
          if (v.length < MIN_SECRET_LENGTH) continue
          // As the JSON line spells it (quotes and backslashes escaped), and as written.
          for (const form of new Set([v, JSON.stringify(v).slice(1, -1)])) {
            if (!shared.secrets.includes(form)) shared.secrets.push(form)
          }
        }
        // Longest first, so a secret that contains another is replaced whole.
        shared.secrets.sort((a, b) => b.length - a.length)
        if (shared.secrets.length > MAX_SECRETS) shared.secrets.length = MAX_SECRETS
      }
    }
  }
}

/** `text` with every occurrence of each secret replaced by [redacted]. */
export function redactText (text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]')
  return out
}

/** Rate-limit keys remembered at most; beyond it the quiet ones are forgotten. */
export const MAX_LIMIT_KEYS = 1000

function forgetQuiet (limits: Map<string, LimitState>, now: number, interval: number): void {
  for (const [key, state] of limits) if (now - state.last >= interval) limits.delete(key)
  // All of them loud within one interval: forget the oldest half (insertion order).
  if (limits.size >= MAX_LIMIT_KEYS) {
    let n = limits.size / 2
    for (const key of limits.keys()) { if (n-- <= 0) break; limits.delete(key) }
  }
}

function errorReplacer (_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code
    return { name: value.name, message: value.message, ...(code !== undefined ? { code } : {}) }
  }
  if (typeof value === 'bigint') return value.toString()
  return value
}
