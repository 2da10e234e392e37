// The console API's requests, checked before anything is read: the request target,
// then an unknown name, a bad symbol, a bad number or range is a 400 whose message
// names the parameter, what it got (shortened: the answer never echoes a 16 KiB
// URL back) and what it accepts. Pure: every input, however hostile, gives a value
// or an ApiError with a 4xx status, never another exception (a property test holds
// it to that, test/console/params.test.ts).

import { SYMBOL_PATTERN } from '../config/schema.js'
import { RESOLUTION_NAMES, RESOLUTIONS, type ResolutionName } from '../core/candle-periods.js'

export class ApiError extends Error {
  readonly status: number
  /** Extra response headers (Retry-After on a 503 that can be retried). */
  readonly headers: Readonly<Record<string, string>>
  constructor (status: number, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.status = status
    this.headers = headers
  }
}

/** At most this much of a received value goes into an error message. */
const ECHO_CHARS = 40

/**
 * The request target as a URL on this server. Only the origin form (a path from `/`)
 * is served: the absolute form is for proxies, `*` for OPTIONS. Parsed as a path on
 * our own origin, so `//host/x` or `/\host/x` stays a path here (a 404), never
 * another host; the Host header is never used.
 */
export function requestUrl (target: string | undefined): URL {
  const raw = target ?? '/'
  if (!raw.startsWith('/')) throw new ApiError(400, `the request target ${quote(raw)} is not a path: ask for a path such as /healthz or /api`)
  try {
    return new URL(`http://localhost${raw}`)
  } catch {
    throw new ApiError(400, `the request target ${quote(raw)} is not a valid path: ask for a path such as /healthz or /api`)
  }
}

/** The parameters of one request; `allowed` are the names it takes (token is always allowed). */
export function checkParams (query: URLSearchParams, allowed: readonly string[]): void {
  const unknown = [...new Set(query.keys())].filter(k => k !== 'token' && !allowed.includes(k))
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).map(k => /^[A-Za-z0-9_.-]{1,40}$/.test(k) ? k : quote(k)).join(', ') + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : '')
    throw new ApiError(400, `unknown parameter${unknown.length > 1 ? 's' : ''} ${shown}; this endpoint takes ${allowed.length > 0 ? allowed.join(', ') : 'none'}`)
  }
  for (const name of [...allowed, 'token']) {
    if (query.getAll(name).length > 1) throw new ApiError(400, `${name} is given more than once`)
  }
}

export function symbolParam (query: URLSearchParams): string {
  const symbol = query.get('symbol')
  if (symbol === null || symbol === '') throw new ApiError(400, 'symbol is required, e.g. ?symbol=BINANCE:BTCUSDT')
  if (!SYMBOL_PATTERN.test(symbol)) throw new ApiError(400, `symbol ${quote(symbol, 80)} is not a Finnhub symbol such as AAPL or BINANCE:BTCUSDT`)
  return symbol
}

export function intParam (query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name)
  if (raw === null) return fallback
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < min || n > max) throw new ApiError(400, `${name} must be a whole number from ${min} to ${max}, got ${quote(raw)}`)
  return n
}

export function choiceParam<T extends string> (query: URLSearchParams, name: string, choices: readonly T[], fallback: T): T {
  const raw = query.get(name)
  if (raw === null) return fallback
  if (!(choices as readonly string[]).includes(raw)) throw new ApiError(400, `${name} must be one of ${choices.join(', ')}, got ${quote(raw)}`)
  return raw as T
}

export const MAX_RANGE_MS = 2 * 86_400_000
/** Candles a chart reads at most: 2 days of 1 m, 10 days of 5 m, … 3,000 days of 1 d. */
export const MAX_CANDLES = 2880
/** The gaps listed over a long chart (a year of 1 d candles). */
export const MAX_GAP_RANGE_MS = 3000 * 86_400_000

export function maxCandleRangeMs (interval: ResolutionName): number {
  return MAX_CANDLES * RESOLUTIONS[interval].ms
}

/**
 * A time range: `from` and `to` (ISO times or epoch ms), or `minutes` back from now
 * (default `defaultMinutes`). `from` must be before `to`, and the range at most
 * `maxMs` (2 days unless the endpoint says otherwise).
 */
export function rangeParam (query: URLSearchParams, now: number, defaultMinutes: number, maxMs = MAX_RANGE_MS, hint = ''): { from: number, to: number } {
  const fromRaw = query.get('from')
  const toRaw = query.get('to')
  if (fromRaw === null && toRaw === null) {
    const minutes = intParam(query, 'minutes', defaultMinutes, 1, maxMs / 60_000)
    return { from: now - minutes * 60_000, to: now + 60_000 }
  }
  if (query.get('minutes') !== null) throw new ApiError(400, 'give either minutes, or from and to, not both')
  if (fromRaw === null || toRaw === null) throw new ApiError(400, `${fromRaw === null ? 'from' : 'to'} is missing: a range needs both from and to`)
  const from = timeParam('from', fromRaw)
  const to = timeParam('to', toRaw)
  if (from >= to) throw new ApiError(400, `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`)
  if (to - from > maxMs) throw new ApiError(400, `the range is ${Math.round((to - from) / 3_600_000)} h; at most ${maxMs / 3_600_000} h at a time${hint}`)
  return { from, to }
}

/** Dates a JavaScript Date can hold (toISOString throws beyond them). */
const MAX_DATE_MS = 8.64e15

function timeParam (name: string, raw: string): number {
  const t = /^\d{1,15}$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (Number.isNaN(t) || Math.abs(t) > MAX_DATE_MS) throw new ApiError(400, `${name} ${quote(raw)} is neither an ISO time (2026-12-01T12:00:00Z) nor epoch milliseconds`)
  return t
}

/** One request of the JSON API, its parameters checked. */
export type ApiRequest =
  | { endpoint: '/api' | '/api/pipeline' | '/api/stream' | '/api/symbols' }
  | { endpoint: '/api/topic', topic: 'trades' | 'dlq', limit: number }
  | { endpoint: '/api/trades', symbol: string, limit: number, from: number, to: number }
  | { endpoint: '/api/candles', symbol: string, interval: ResolutionName, from: number, to: number }
  | { endpoint: '/api/gaps', symbol: string | null, from: number, to: number }

/** What the console reads for `path` and `query`: a 404 for no such endpoint, a 400 for a bad parameter. */
export function apiRequest (path: string, query: URLSearchParams, now: number): ApiRequest {
  switch (path) {
    case '/api':
    case '/api/pipeline':
    case '/api/stream':
    case '/api/symbols':
      checkParams(query, [])
      return { endpoint: path }
    case '/api/topic':
      checkParams(query, ['topic', 'limit'])
      return { endpoint: path, topic: choiceParam(query, 'topic', ['trades', 'dlq'] as const, 'trades'), limit: intParam(query, 'limit', 50, 1, 200) }
    case '/api/trades': {
      checkParams(query, ['symbol', 'limit', 'minutes', 'from', 'to'])
      const symbol = symbolParam(query)
      const limit = intParam(query, 'limit', 100, 1, 1000)
      return { endpoint: path, symbol, limit, ...rangeParam(query, now, 60) }
    }
    case '/api/candles': {
      checkParams(query, ['symbol', 'interval', 'minutes', 'from', 'to'])
      const symbol = symbolParam(query)
      const interval = choiceParam(query, 'interval', RESOLUTION_NAMES, '1m')
      const ms = RESOLUTIONS[interval].ms
      return { endpoint: path, symbol, interval, ...rangeParam(query, now, 120 * ms / 60_000, maxCandleRangeMs(interval), interval === '1d' ? '' : ' (a longer interval, e.g. interval=1h, reads a longer range)') }
    }
    case '/api/gaps': {
      checkParams(query, ['symbol', 'minutes', 'from', 'to'])
      const symbol = query.has('symbol') ? symbolParam(query) : null
      return { endpoint: path, symbol, ...rangeParam(query, now, 120, MAX_GAP_RANGE_MS) }
    }
    default:
      // A URL's pathname is percent-encoded ASCII: only its length needs bounding.
      throw new ApiError(404, `no such endpoint ${path.length > 80 ? `${path.slice(0, 80)}…` : path}; GET /api lists them`)
  }
}

/** A received value for a message: JSON-quoted, cut at `max` characters (never inside a surrogate pair). */
export function quote (raw: string, max = ECHO_CHARS): string {
  if (raw.length <= max) return JSON.stringify(raw)
  const cut = /[\uD800-\uDBFF]/.test(raw.charAt(max - 1)) ? max - 1 : max
  return `${JSON.stringify(raw.slice(0, cut))}…`
}
