// The ledger of gaps, pure: the stretches where trades may be missing from the store
// because Finnhub's WebSocket has no replay. Fed by the ingest role's events (socket
// down and up, trades admitted, trades dropped) with the time passed in, it keeps
// the open gaps and hands out every gap that changed, for a shell (gaps/ledger.ts)
// to write. Two kinds of gap:
//  - an outage (disconnected, stalled, unauthorized, rate_limited, daemon_down): at
//    most one at a time, for every subscribed symbol, dropped count unknown (null).
//    It opens at the latest trade time received before it (the watermark) and ends
//    at the earlier of the moment the socket was subscribed again and the first
//    trade time received after: so every trade Finnhub sent and the daemon never got
//    lies in [start, end], and no trade received lies strictly inside. Reconnects
//    that deliver no trade stay one gap (coalescing); a different cause on a later
//    attempt closes it and opens the next at that moment. A subscribed socket that
//    brings no trade for settleMs closes it at the subscription time.
//  - a drop span (dropped_queue_full, shed_overload): per reason, the trades the
//    daemon received and dropped itself, counted exactly, with their symbols; from
//    the first dropped trade time to the last; closed after coalesceMs without a
//    drop of that reason.
// daemon_down comes from the previous run's state (Resume): from the last trade time
// that run knew safely in Kafka to the first trade of this one.

export const OUTAGE_REASONS = ['disconnected', 'stalled', 'unauthorized', 'rate_limited', 'daemon_down'] as const
export const DROP_REASONS = ['dropped_queue_full', 'shed_overload'] as const
export const GAP_REASONS = [...OUTAGE_REASONS, ...DROP_REASONS] as const
export type OutageReason = typeof OUTAGE_REASONS[number]
export type DropReason = typeof DROP_REASONS[number]
export type GapReason = typeof GAP_REASONS[number]

export interface Gap {
  /** Stable over the gap's life: the opening moment and reason (rows are upserted by it). */
  id: string
  reason: GapReason
  /** Trade time (ms) from which trades may be missing. */
  start: number
  /** Trade time (ms) up to which trades may be missing; null while the gap is open. */
  end: number | null
  symbols: string[]
  /** Trades known dropped; null for an outage (Finnhub sent an unknown number). */
  dropped: number | null
  /** The daemon's clock when the gap opened. */
  openedAt: number
}

export interface GapSettings {
  /** Drops of one reason closer than this stay one span. */
  coalesceMs: number
  /** A re-subscribed socket with no trade for this long closes its outage at the subscription time. */
  settleMs: number
  /** Tells this run's gap ids from another's opened in the same millisecond. */
  runTag?: string
}

/** What the previous run left (the shell persists it in the state directory). */
export interface Resume {
  /** The last trade time known safely in Kafka (null: it had received none). */
  settledT: number | null
  /** The previous run's clock at its last heartbeat or its stop. */
  aliveAt: number
  /** The symbols it was subscribed to. */
  symbols: string[]
  /** Gaps it left open. */
  open: Gap[]
}

/** A trade as the ledger needs it. */
export interface TradeMark { s: string, t: number }

interface Outage { gap: Gap, upAt: number | null }
interface DropSpan { gap: Gap, lastAt: number, high: number }

export class GapTracker {
  readonly #settings: GapSettings
  #watermark: number | null = null
  #outage: Outage | null = null
  readonly #drops = new Map<DropReason, DropSpan>()
  #changed = new Map<string, Gap>()
  #seq = 0
  /** Gaps opened, by reason (the finnhubd_gaps_total counter). */
  readonly opened: Record<GapReason, number> = Object.fromEntries(GAP_REASONS.map(r => [r, 0])) as Record<GapReason, number>

  constructor (settings: GapSettings, now: number, resume: Resume | null) {
    this.#settings = settings
    if (resume === null) return
    // What the previous run left open ended when it did; its downtime is one daemon_down.
    for (const g of resume.open) this.#emit({ ...g, end: g.end ?? Math.max(g.start, resume.aliveAt) })
    const start = resume.settledT ?? resume.aliveAt
    this.#watermark = resume.settledT
    if (resume.symbols.length > 0) this.#outage = { gap: this.#open('daemon_down', Math.min(start, now), resume.symbols, null, now), upAt: null }
  }

  /** The latest trade time received (null: none yet). */
  get watermark (): number | null { return this.#watermark }

  /** The gaps open now. */
  get open (): Gap[] {
    const out = [...this.#drops.values()].map(d => d.gap)
    if (this.#outage !== null) out.unshift(this.#outage.gap)
    return out.map(g => ({ ...g, symbols: [...g.symbols] }))
  }

  /** Every gap that opened, changed or closed since the last call, once each, in its latest state. */
  takeChanges (): Gap[] {
    const out = [...this.#changed.values()]
    this.#changed = new Map()
    return out
  }

  /** Trades admitted from one frame (after shedding): they close a healing outage and move the watermark. */
  received (now: number, trades: readonly TradeMark[]): void {
    if (trades.length === 0) return
    let min = Infinity
    let max = -Infinity
    for (const tr of trades) { if (tr.t < min) min = tr.t; if (tr.t > max) max = tr.t }
    const o = this.#outage
    if (o !== null && o.upAt !== null) this.#closeOutage(Math.max(o.gap.start, Math.min(o.upAt, min)))
    if (this.#watermark === null || max > this.#watermark) this.#watermark = max
  }

  /** The socket ended or a connection attempt failed, for `reason`. */
  down (now: number, reason: Exclude<OutageReason, 'daemon_down'>, symbols: readonly string[]): void {
    const o = this.#outage
    if (o !== null && o.gap.reason === reason) {
      o.upAt = null
      return
    }
    let start = this.#watermark ?? now
    if (o !== null) {
      // Another cause: the open outage ends here and the next begins.
      start = Math.max(o.gap.start, now)
      this.#closeOutage(start)
    }
    if (symbols.length === 0) return
    this.#outage = { gap: this.#open(reason, start, symbols, null, now), upAt: null }
  }

  /** The socket is open and subscribed to `symbols`. */
  up (now: number, symbols: readonly string[]): void {
    const o = this.#outage
    if (o === null) return
    if (o.upAt === null) o.upAt = now
    const merged = union(o.gap.symbols, symbols)
    if (merged.length !== o.gap.symbols.length) { o.gap.symbols = merged; this.#emit(o.gap) }
  }

  /** Trades received and dropped by the daemon itself. */
  dropped (now: number, reason: DropReason, trades: readonly TradeMark[]): void {
    if (trades.length === 0) return
    let span = this.#drops.get(reason)
    if (span !== undefined && now - span.lastAt > this.#settings.coalesceMs) {
      this.#closeDrop(reason)
      span = undefined
    }
    const symbols = [...new Set(trades.map(tr => tr.s))]
    let min = Infinity
    let max = -Infinity
    for (const tr of trades) { if (tr.t < min) min = tr.t; if (tr.t > max) max = tr.t }
    if (span === undefined) {
      span = { gap: this.#open(reason, min, symbols, 0, now), lastAt: now, high: max }
      this.#drops.set(reason, span)
    }
    const g = span.gap
    g.start = Math.min(g.start, min)
    span.high = Math.max(span.high, max)
    g.symbols = union(g.symbols, symbols)
    g.dropped = (g.dropped ?? 0) + trades.length
    span.lastAt = now
    this.#emit(g)
  }

  /** Time passes: drop spans quiet for coalesceMs close; a subscribed socket quiet for settleMs closes its outage. */
  tick (now: number): void {
    for (const [reason, span] of this.#drops) if (now - span.lastAt > this.#settings.coalesceMs) this.#closeDrop(reason)
    const o = this.#outage
    if (o !== null && o.upAt !== null && now - o.upAt >= this.#settings.settleMs) this.#closeOutage(Math.max(o.gap.start, o.upAt))
  }

  /** A clean stop: every drop span closes; an open outage ends now (the next run's daemon_down follows it). */
  stop (now: number): void {
    for (const reason of [...this.#drops.keys()]) this.#closeDrop(reason)
    const o = this.#outage
    if (o !== null) this.#closeOutage(Math.max(o.gap.start, o.upAt ?? now))
  }

  #open (reason: GapReason, start: number, symbols: readonly string[], dropped: number | null, now: number): Gap {
    const gap: Gap = { id: `${new Date(now).toISOString()}/${reason}/${this.#settings.runTag ?? '0'}.${this.#seq++}`, reason, start, end: null, symbols: [...new Set(symbols)].sort(), dropped, openedAt: now }
    this.opened[reason]++
    this.#emit(gap)
    return gap
  }

  #closeOutage (end: number): void {
    const o = this.#outage as Outage
    this.#outage = null
    o.gap.end = Math.max(o.gap.start, end)
    this.#emit(o.gap)
  }

  #closeDrop (reason: DropReason): void {
    const span = this.#drops.get(reason) as DropSpan
    this.#drops.delete(reason)
    span.gap.end = Math.max(span.gap.start, span.high)
    this.#emit(span.gap)
  }

  #emit (gap: Gap): void {
    this.#changed.set(gap.id, { ...gap, symbols: [...gap.symbols] })
  }
}

function union (a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort()
}

interface Tracked { at: number, pending: number, maxT: number, ats: number[] }

/** Frames awaiting acknowledgements tracked one by one, at most. */
export const MAX_TRACKED_FRAMES = 100_000

/**
 * The last trade time safely in Kafka: frames are queued in arrival order with how many
 * of their records await an acknowledgement; the watermark moves past a frame once it
 * and every frame before it is settled (acknowledged or failed). Records are matched
 * by their frame's receive time (the Kafka record timestamp).
 */
export class SettledWatermark {
  readonly #frames: Tracked[] = []
  readonly #byAt = new Map<number, Tracked>()
  #settled: number | null = null
  #received: number | null = null

  /** The last trade time known in Kafka, or received when nothing awaits an acknowledgement. */
  get settled (): number | null { return this.#frames.length === 0 ? this.#received : this.#settled }

  /** A frame received at `at` whose `produced` records await an acknowledgement; `maxT` its latest trade time. */
  frame (at: number, produced: number, maxT: number): void {
    if (this.#received === null || maxT > this.#received) this.#received = maxT
    const mark = this.#received
    const last = this.#frames[this.#frames.length - 1]
    if (last !== undefined && last.at === at) {
      last.pending += produced
      last.maxT = mark
    } else if (produced > 0 && last !== undefined && this.#frames.length >= MAX_TRACKED_FRAMES) {
      // Acknowledgements stalled (Kafka away): later frames share the last entry, so memory
      // stays bounded and the watermark only ever lags.
      last.pending += produced
      last.maxT = mark
      last.ats.push(at)
      this.#byAt.set(at, last)
    } else if (produced > 0) {
      const f = { at, pending: produced, maxT: mark, ats: [at] }
      this.#frames.push(f)
      this.#byAt.set(at, f)
    }
    this.#advance()
  }

  /** One record of the frame received at `at` was acknowledged or failed. */
  settle (at: number): void {
    const f = this.#byAt.get(at)
    if (f === undefined) return
    f.pending--
    this.#advance()
  }

  #advance (): void {
    while (this.#frames.length > 0 && (this.#frames[0] as { pending: number }).pending <= 0) {
      const f = this.#frames.shift() as Tracked
      for (const a of f.ats) this.#byAt.delete(a)
      this.#settled = f.maxT
    }
    // A frame with nothing to acknowledge settles as soon as those before it have.
    if (this.#frames.length === 0 && this.#received !== null) this.#settled = this.#received
  }
}

/** The UTC months ('YYYY-MM') from the one holding `from` to the one holding `to`: a gap's row goes into each. */
export function monthsBetween (from: number, to: number): string[] {
  const out: string[] = []
  const a = new Date(Math.min(from, to))
  let y = a.getUTCFullYear()
  let m = a.getUTCMonth()
  const b = new Date(Math.max(from, to))
  while (y < b.getUTCFullYear() || (y === b.getUTCFullYear() && m <= b.getUTCMonth())) {
    out.push(`${String(y).padStart(4, '0')}-${String(m + 1).padStart(2, '0')}`)
    if (++m === 12) { m = 0; y++ }
  }
  return out
}
