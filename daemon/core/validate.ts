// The one trade validator, pure, used by both roles. The ingest role checks each
// trade of a Finnhub frame with it before it is produced; the process role checks
// each record it decodes from the topic with it again, because the topic is shared
// infrastructure (another producer, an older finnhubd, a hand-written test record):
// a record that is valid Avro is still not trusted. What fails goes to the
// dead-letter topic with the field named, never into `trades` or a candle.
//
// Also here: `show()`, the one way to put an untrusted value into a log detail. It
// never recurses over the value (a 100,000-level nested array made JSON.stringify
// overflow the stack and crash the daemon) and its output is bounded.

/** Finnhub symbols look like "AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD", "BRK.B": 1–64 characters, no space or control character. */
export const SYMBOL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9:._/^=-]{0,63}$/

/** Trades before 2000-01-01 are not from this feed: a seconds-for-milliseconds mix-up, or garbage. */
export const MIN_TRADE_TS = Date.UTC(2000, 0, 1)
/** Finnhub sends at most a few condition codes per trade; more is not a trade. */
export const MAX_CONDITIONS = 64
export const MAX_CONDITION_LENGTH = 16
/** An ordinal counts identical trades in one frame: a frame holds far fewer trades than this. */
export const MAX_ORDINAL = 1_000_000

export const TRADE_FIELD_REASONS = ['bad_symbol', 'bad_price', 'bad_volume', 'bad_timestamp', 'bad_conditions', 'bad_ingest_ts', 'bad_ordinal'] as const
export type TradeFieldReason = typeof TRADE_FIELD_REASONS[number]

export interface TradeProblem {
  reason: TradeFieldReason
  /** The field at fault: s, p, v, t, c, ingest_ts or ordinal. */
  field: string
  /** What was wrong and what a good value looks like, values shortened. */
  detail: string
}

/** How far past its receive time a trade time may lie (clock skew between Finnhub and us). */
export const MAX_FUTURE_SKEW_MS = 86_400_000

export function checkSymbol (s: unknown): TradeProblem | null {
  if (typeof s === 'string' && SYMBOL_PATTERN.test(s)) return null
  return { reason: 'bad_symbol', field: 's', detail: `"s" must be a Finnhub symbol (1-64 of A-Z a-z 0-9 : . _ / ^ = -), got ${show(s)}` }
}

/**
 * Upper bounds far above any real market (Berkshire A trades near 1e6, a meme coin's
 * whole supply is under 1e15 units), chosen so that a candle's sums stay finite: a
 * finite 1e308 price times a volume of 10 made an infinite notional and VWAP.
 */
export const MAX_PRICE = 1e9
export const MAX_VOLUME = 1e15

export function checkPrice (p: unknown): TradeProblem | null {
  if (typeof p === 'number' && p > 0 && p <= MAX_PRICE) return null
  return { reason: 'bad_price', field: 'p', detail: `"p" must be a number > 0 and ≤ ${MAX_PRICE}, got ${show(p)}` }
}

export function checkVolume (v: unknown): TradeProblem | null {
  if (typeof v === 'number' && v >= 0 && v <= MAX_VOLUME) return null
  return { reason: 'bad_volume', field: 'v', detail: `"v" must be a number ≥ 0 and ≤ ${MAX_VOLUME}, got ${show(v)}` }
}

export function checkTradeTs (t: unknown, maxTradeTs: number): TradeProblem | null {
  if (typeof t === 'number' && Number.isSafeInteger(t) && t >= MIN_TRADE_TS && t <= maxTradeTs) return null
  return {
    reason: 'bad_timestamp',
    field: 't',
    detail: `"t" must be epoch milliseconds between 2000-01-01 and ${isoOrNumber(maxTradeTs)} (receive time + the allowed skew), got ${show(t)}`
  }
}

/** Conditions as Finnhub may send them: null/absent, or a list of codes (numbers taken as their text). */
export function parseConditions (c: unknown): { ok: true, value: string[] | null } | { ok: false, problem: TradeProblem } {
  if (c === null || c === undefined) return { ok: true, value: null }
  if (Array.isArray(c) && c.length <= MAX_CONDITIONS) {
    const codes: string[] = []
    for (const code of c as unknown[]) {
      const text = typeof code === 'string' ? code : typeof code === 'number' && Number.isFinite(code) ? String(code) : null
      if (text === null || text.length > MAX_CONDITION_LENGTH || CONTROL.test(text)) return { ok: false, problem: conditionsProblem(c) }
      codes.push(text)
    }
    return { ok: true, value: codes }
  }
  return { ok: false, problem: conditionsProblem(c) }
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/

function conditionsProblem (c: unknown): TradeProblem {
  return {
    reason: 'bad_conditions',
    field: 'c',
    detail: `"c" must be null, absent or a list of at most ${MAX_CONDITIONS} codes of at most ${MAX_CONDITION_LENGTH} printable characters, got ${show(c)}`
  }
}

/**
 * The checks a trade's own fields get in both roles, in this order: symbol, price,
 * volume, trade time (no later than `maxTradeTs`), conditions. Valid: the conditions as
 * stored (null, or codes as text).
 */
export function checkTrade (f: { s: unknown, p: unknown, t: unknown, v: unknown, c: unknown }, maxTradeTs: number): { ok: true, conditions: string[] | null } | { ok: false, problem: TradeProblem } {
  const problem = checkSymbol(f.s) ?? checkPrice(f.p) ?? checkVolume(f.v) ?? checkTradeTs(f.t, maxTradeTs)
  if (problem !== null) return { ok: false, problem }
  const conditions = parseConditions(f.c)
  return conditions.ok ? { ok: true, conditions: conditions.value } : conditions
}

/** The fields of a Kafka `Trade` record as decoded (types as avsc gives them, values untrusted). */
export interface DecodedTradeFields { s: unknown, p: unknown, t: unknown, v: unknown, c: unknown, ingest_ts: unknown, ordinal: unknown }

/**
 * Checks a record decoded from the topic as strictly as the ingest checks a frame's
 * trade, plus our envelope: ingest_ts a sane time no later than `now` + skew, the
 * trade time no later than its ingest time + skew, the ordinal ≥ 0. Null when valid.
 */
export function checkDecodedTrade (r: DecodedTradeFields, now: number, maxFutureSkewMs = MAX_FUTURE_SKEW_MS): TradeProblem | null {
  const ingest = r.ingest_ts
  if (typeof ingest !== 'number' || !Number.isSafeInteger(ingest) || ingest < MIN_TRADE_TS || ingest > now + maxFutureSkewMs) {
    return { reason: 'bad_ingest_ts', field: 'ingest_ts', detail: `"ingest_ts" must be epoch milliseconds between 2000-01-01 and now + ${maxFutureSkewMs} ms, got ${show(ingest)}` }
  }
  const trade = checkTrade(r, ingest + maxFutureSkewMs)
  if (!trade.ok) return trade.problem
  // Avro strings only: a number here would mean the decoder is not ours.
  if (r.c !== null && (r.c as unknown[]).some(code => typeof code !== 'string')) return conditionsProblem(r.c)
  const o = r.ordinal
  if (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || o > MAX_ORDINAL) {
    return { reason: 'bad_ordinal', field: 'ordinal', detail: `"ordinal" must be an integer between 0 and ${MAX_ORDINAL}, got ${show(o)}` }
  }
  return null
}

function isoOrNumber (ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms)
}

const SHOW_MAX = 60

/**
 * A short, single-line text of an untrusted value for a log detail: scalars as
 * JSON, strings shortened, arrays and objects described by their first few items
 * only one level deep. Never recursive, never longer than about 80 characters.
 */
export function show (value: unknown): string {
  // JSON.stringify escapes control characters but not NEL, U+2028 and U+2029, which are
  // line breaks to JavaScript and YAML readers: a symbol "\u2028" split a log detail in two.
  return clip(describe(value, true).replace(LINE_SEPARATORS, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))
}

const LINE_SEPARATORS = /[\u0085\u2028\u2029]/g

function describe (value: unknown, top: boolean): string {
  switch (typeof value) {
    case 'undefined': return 'nothing'
    case 'number': case 'boolean': case 'bigint': return String(value)
    case 'string': return JSON.stringify(value.length > SHOW_MAX ? value.slice(0, SHOW_MAX) : value)
    case 'object': {
      if (value === null) return 'null'
      if (!top) return Array.isArray(value) ? `[…${value.length}]` : '{…}'
      if (Array.isArray(value)) {
        const items = value.slice(0, 4).map(v => describe(v, false))
        return `[${items.join(',')}${value.length > 4 ? `,…(${value.length} items)` : ''}]`
      }
      const keys = Object.keys(value)
      const items = keys.slice(0, 4).map(k => `${JSON.stringify(k.slice(0, 20))}:${describe((value as Record<string, unknown>)[k], false)}`)
      return `{${items.join(',')}${keys.length > 4 ? `,…(${keys.length} keys)` : ''}}`
    }
    default: return typeof value
  }
}

function clip (text: string): string {
  return text.length > SHOW_MAX + 20 ? `${text.slice(0, SHOW_MAX + 17)}...` : text
}
