// Parsing and validation of Finnhub WebSocket frames (the protocol: docs/guarantees.md, "Ingest: what it guarantees"), pure.
// A frame is classified (trades, ping, error, other type, or malformed with a
// reason); inside a trade frame each trade is checked on its own, so one bad trade
// drops only itself, with a counted reason, and the good ones around it go on.
// Each kept trade gets its ordinal among the identical trades (same s, p, t, v, c)
// of its frame: genuine identical fills stay distinct, while a trade re-sent in a
// later frame gets ordinal 0 again and so the same deterministic id.

import type { TradeRecord } from './trade-schema.js'
import { checkTrade, show, type TradeProblem } from './validate.js'

export { MIN_TRADE_TS } from './validate.js'

/** `internal`: handling the frame threw (a bug of ours); counted by the socket client, never produced by parseFrame. */
export const FRAME_REJECT_REASONS = ['binary', 'invalid_json', 'not_an_object', 'missing_type', 'bad_data', 'internal'] as const
export type FrameRejectReason = typeof FRAME_REJECT_REASONS[number]

export const TRADE_REJECT_REASONS = [
  'not_an_object', 'bad_symbol', 'bad_price', 'bad_volume', 'bad_timestamp', 'bad_conditions', 'zero_volume'
] as const
export type TradeRejectReason = typeof TRADE_REJECT_REASONS[number]

export interface TradeReject {
  reason: TradeRejectReason
  /** For the log: which trade and what was wrong, values shortened. */
  detail: string
}

export type ParsedFrame =
  | { kind: 'trades', trades: TradeRecord[], rejected: TradeReject[] }
  | { kind: 'ping' }
  | { kind: 'error', message: string }
  | { kind: 'other', type: string }
  | { kind: 'malformed', reason: FrameRejectReason, detail: string }

export interface FrameOptions {
  /** Keep `v = 0` price updates (true) or drop them with reason zero_volume. */
  keepZeroVolume: boolean
  /** How far past the receive time a trade time may lie before it is not sane. */
  maxFutureSkewMs: number
}

export function parseFrame (data: string | Buffer, isBinary: boolean, receivedAt: number, options: FrameOptions): ParsedFrame {
  if (isBinary) return { kind: 'malformed', reason: 'binary', detail: `binary frame of ${data.length} bytes; Finnhub sends text frames only` }
  let msg: unknown
  try {
    msg = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'))
  } catch (err) {
    // V8's message quotes the text around the error as it is, a newline or NUL included
    // (a frame "\u0000{…}" or "{\n…" gave a detail of two lines): escaped and bounded here.
    return { kind: 'malformed', reason: 'invalid_json', detail: `${oneLine((err as Error).message)}; frame starts ${show(String(data).slice(0, 60))}` }
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    return { kind: 'malformed', reason: 'not_an_object', detail: `frame is ${show(msg)}, expected a JSON object` }
  }
  const frame = msg as Record<string, unknown>
  const type = frame['type']
  if (typeof type !== 'string') {
    return { kind: 'malformed', reason: 'missing_type', detail: `frame has no string "type" (got ${show(type)})` }
  }
  switch (type) {
    case 'trade': return parseTrades(frame['data'], receivedAt, options)
    case 'ping': return { kind: 'ping' }
    case 'error': return { kind: 'error', message: typeof frame['msg'] === 'string' ? frame['msg'] : show(frame['msg']) }
    default: return { kind: 'other', type: type.slice(0, 40) }
  }
}

function parseTrades (data: unknown, receivedAt: number, options: FrameOptions): ParsedFrame {
  if (!Array.isArray(data)) {
    return { kind: 'malformed', reason: 'bad_data', detail: `trade frame "data" is ${show(data)}, expected an array of trades` }
  }
  const trades: TradeRecord[] = []
  const rejected: TradeReject[] = []
  const maxTs = receivedAt + options.maxFutureSkewMs
  for (let i = 0; i < data.length; i++) {
    const raw: unknown = data[i]
    const reject = (reason: TradeRejectReason, what: string): void => { rejected.push({ reason, detail: `trade ${i}: ${what}` }) }
    const rejectFor = (problem: TradeProblem, s: unknown): void => {
      reject(problem.reason as TradeRejectReason, problem.field === 's' ? problem.detail : `${problem.detail} (${show(s)})`)
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) { reject('not_an_object', `expected an object, got ${show(raw)}`); continue }
    const { s, p, t, v, c } = raw as Record<string, unknown>
    const checked = checkTrade({ s, p, t, v, c }, maxTs)
    if (!checked.ok) { rejectFor(checked.problem, s); continue }
    if (v === 0 && !options.keepZeroVolume) { reject('zero_volume', `v = 0 price update dropped by finnhub.keepZeroVolume=false (${s as string})`); continue }
    trades.push({ s: s as string, p: p as number, t: t as number, v: v as number, c: checked.conditions, ingest_ts: receivedAt, ordinal: 0 })
  }
  assignOrdinals(trades)
  return { kind: 'trades', trades, rejected }
}

/** Sets each trade's ordinal among the identical trades before it in the same frame. */
export function assignOrdinals (trades: TradeRecord[]): void {
  const n = trades.length
  if (n < 2) return
  if (n <= SMALL_FRAME) {
    // Most frames are small: comparing fields (cheapest first) beats building a key string per trade.
    for (let i = 1; i < n; i++) {
      const a = trades[i] as TradeRecord
      for (let j = i - 1; j >= 0; j--) {
        const b = trades[j] as TradeRecord
        if (b.t === a.t && b.p === a.p && b.v === a.v && b.s === a.s && sameConditions(b.c, a.c)) {
          a.ordinal = b.ordinal + 1 // the nearest identical trade already counts the ones before it
          break
        }
      }
    }
    return
  }
  const seen = new Map<string, number>()
  for (const trade of trades) {
    const key = identityKey(trade)
    const count = seen.get(key) ?? 0
    trade.ordinal = count
    seen.set(key, count + 1)
  }
}

const SMALL_FRAME = 64

// eslint-disable-next-line no-control-regex -- control characters are what would break the log line
const LINE_BREAKING = /[\u0000-\u001f\u0085\u2028\u2029]/g

/** A message on one line (control characters escaped) of at most 160 characters. */
function oneLine (message: string): string {
  const text = message.replace(LINE_BREAKING, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return text.length > 160 ? `${text.slice(0, 157)}...` : text
}

function sameConditions (a: string[] | null, b: string[] | null): boolean {
  if (a === null || b === null) return a === b
  // [] and [""] are the same trade id content (tradeIdName joins the codes) and the same
  // identityKey (frames of more than 64 trades): they must count as identical here too, or
  // two such trades in a small frame both got ordinal 0, hence one trade id, one row.
  if (a.length + b.length === 1) return (a[0] ?? b[0]) === ''
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The content that makes two trades identical: s, p, t, v and c, unambiguously joined. */
export function identityKey (trade: Pick<TradeRecord, 's' | 'p' | 't' | 'v' | 'c'>): string {
  return `${trade.s}\u0000${trade.p}\u0000${trade.t}\u0000${trade.v}\u0000${trade.c === null ? '\u0002' : trade.c.join('\u0001')}`
}
