// Client-side rate limiting for Finnhub's REST API, pure (the caller owns the clock
// and the timers). A sliding-window log, not a token bucket: a bucket of N tokens
// refilled at N per window lets 2N requests into one window (a full bucket, then the
// refill), and Finnhub counts requests per window. The window is kept a little
// longer than the server's (marginMs), because the server stamps a request when it
// arrives and we stamp it when we send: a request that travels slowly must not make
// the server see one too many.

export class SlidingWindowLimiter {
  #requests: number
  #windowMs: number
  readonly #marginMs: number
  /** Send times of the requests still inside the window, oldest first. */
  readonly #sent: number[] = []

  constructor (requests: number, windowMs: number, marginMs = 100) {
    checkLimit(requests, windowMs)
    this.#requests = requests
    this.#windowMs = windowMs
    this.#marginMs = Math.max(0, marginMs)
  }

  get requests (): number { return this.#requests }
  get windowMs (): number { return this.#windowMs }

  /** Changes the limit (a reload); the requests already sent still count. */
  configure (requests: number, windowMs: number): void {
    checkLimit(requests, windowMs)
    this.#requests = requests
    this.#windowMs = windowMs
  }

  /** How long from `now` until one more request may be sent: 0 when it may go at once. */
  delayMs (now: number): number {
    this.#expire(now)
    if (this.#sent.length < this.#requests) return 0
    // The request that must leave the window first is the one `requests` places back.
    const oldest = this.#sent[this.#sent.length - this.#requests] as number
    return Math.max(1, oldest + this.#windowMs + this.#marginMs - now)
  }

  /** Records a request sent at `now`; call it only when delayMs(now) was 0. */
  record (now: number): void {
    this.#sent.push(now)
  }

  /** Requests inside the window at `now`. */
  inWindow (now: number): number {
    this.#expire(now)
    return this.#sent.length
  }

  #expire (now: number): void {
    const horizon = now - this.#windowMs - this.#marginMs
    let drop = 0
    while (drop < this.#sent.length && (this.#sent[drop] as number) <= horizon) drop++
    if (drop > 0) this.#sent.splice(0, drop)
    // Only the newest `requests` entries ever matter (after a lowered limit, too).
    if (this.#sent.length > this.#requests) this.#sent.splice(0, this.#sent.length - this.#requests)
  }
}

function checkLimit (requests: number, windowMs: number): void {
  if (!Number.isInteger(requests) || requests < 1) throw new RangeError(`requests must be a whole number ≥ 1, got ${requests}`)
  if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`)
}

/**
 * An HTTP Retry-After value (RFC 9110: delay-seconds or an HTTP-date) as milliseconds
 * from `now`, or null when it is absent or unreadable. A date in the past means 0.
 */
export function parseRetryAfter (value: string | null | undefined, now: number): number | null {
  if (value === null || value === undefined) return null
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  // An HTTP-date names its day and month; Date.parse alone would take "-5" for a year.
  if (!/^[A-Za-z]{3}, /.test(text)) return null
  const at = Date.parse(text)
  if (Number.isNaN(at)) return null
  return Math.max(0, at - now)
}
