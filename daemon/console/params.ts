// The console API's query parameters, checked before anything is read: an unknown
// name, a bad symbol, a bad number or range is a 400 whose message names the
// parameter, what it got and what it accepts. Pure.

import { SYMBOL_PATTERN } from '../config/schema.js'

export class ApiError extends Error {
  readonly status: number
  constructor (status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** The parameters of one request; `allowed` are the names it takes (token is always allowed). */
export function checkParams (query: URLSearchParams, allowed: readonly string[]): void {
  const unknown = [...new Set(query.keys())].filter(k => k !== 'token' && !allowed.includes(k))
  if (unknown.length > 0) {
    throw new ApiError(400, `unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; this endpoint takes ${allowed.length > 0 ? allowed.join(', ') : 'none'}`)
  }
  for (const name of allowed) {
    if (query.getAll(name).length > 1) throw new ApiError(400, `${name} is given more than once`)
  }
}

export function symbolParam (query: URLSearchParams): string {
  const symbol = query.get('symbol')
  if (symbol === null || symbol === '') throw new ApiError(400, 'symbol is required, e.g. ?symbol=BINANCE:BTCUSDT')
  if (!SYMBOL_PATTERN.test(symbol)) throw new ApiError(400, `symbol ${JSON.stringify(symbol.slice(0, 80))} is not a Finnhub symbol such as AAPL or BINANCE:BTCUSDT`)
  return symbol
}

export function intParam (query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name)
  if (raw === null) return fallback
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < min || n > max) throw new ApiError(400, `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 40))}`)
  return n
}

export function choiceParam<T extends string> (query: URLSearchParams, name: string, choices: readonly T[], fallback: T): T {
  const raw = query.get(name)
  if (raw === null) return fallback
  if (!(choices as readonly string[]).includes(raw)) throw new ApiError(400, `${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(raw.slice(0, 40))}`)
  return raw as T
}

export const MAX_RANGE_MS = 2 * 86_400_000

/**
 * A time range: `from` and `to` (ISO times or epoch ms), or `minutes` back from now
 * (default `defaultMinutes`). `from` must be before `to`, and the range at most 2 days.
 */
export function rangeParam (query: URLSearchParams, now: number, defaultMinutes: number): { from: number, to: number } {
  const fromRaw = query.get('from')
  const toRaw = query.get('to')
  if (fromRaw === null && toRaw === null) {
    const minutes = intParam(query, 'minutes', defaultMinutes, 1, MAX_RANGE_MS / 60_000)
    return { from: now - minutes * 60_000, to: now + 60_000 }
  }
  if (query.get('minutes') !== null) throw new ApiError(400, 'give either minutes, or from and to, not both')
  if (fromRaw === null || toRaw === null) throw new ApiError(400, `${fromRaw === null ? 'from' : 'to'} is missing: a range needs both from and to`)
  const from = timeParam('from', fromRaw)
  const to = timeParam('to', toRaw)
  if (from >= to) throw new ApiError(400, `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`)
  if (to - from > MAX_RANGE_MS) throw new ApiError(400, `the range is ${Math.round((to - from) / 3_600_000)} h; at most ${MAX_RANGE_MS / 3_600_000} h at a time`)
  return { from, to }
}

function timeParam (name: string, raw: string): number {
  const t = /^\d{1,15}$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (Number.isNaN(t)) throw new ApiError(400, `${name} ${JSON.stringify(raw.slice(0, 40))} is neither an ISO time (2026-12-01T12:00:00Z) nor epoch milliseconds`)
  return t
}
