// Finnhub's REST API, as symbol discovery uses it. Every request waits for the one
// client-side rate limiter (finnhub.rest.requestsPerWindow per windowMs), so no burst
// of retries can exceed what the key allows. Answers:
//   200        the parsed JSON body;
//   401, 403   the token is bad: a FINNHUBD_ERR_FINNHUB_AUTH error at once, no retry;
//   429        wait for Retry-After (or back off when it is missing) and ask again;
//              it does not use up an attempt: the server said when to come back;
//   5xx, network errors, timeouts
//              back off (full jitter) and retry, up to rest.maxAttempts attempts;
//   3xx        a FINNHUBD_ERR_FINNHUB_REST error naming where it points: redirects
//              are never followed, so the token goes to finnhub.rest.url and nowhere else;
//   other 4xx  a FINNHUBD_ERR_FINNHUB_REST error naming the path and Finnhub's reason.
// The token travels in the X-Finnhub-Token header, never in a URL, so no log line or
// error can carry it.

import { setTimeout as delay } from 'node:timers/promises'
import type { Config } from '../config/schema.js'
import { SlidingWindowLimiter, parseRetryAfter } from '../core/rate-limit.js'
import { backoffDelay } from '../core/retry.js'
import { FinnhubdError } from '../core/errors.js'
import type { Logger } from '../log.js'

export { REST_RESULTS, type RestResult } from '../metrics/ingest.js'
import type { RestResult } from '../metrics/ingest.js'

export interface FinnhubRestOptions {
  rest: Config['finnhub']['rest']
  token: string
  log: Logger
  /** Requests by result, for finnhubd_rest_requests_total. */
  counts: Record<RestResult, number>
  now?: () => number
  random?: () => number
}

export class FinnhubRest {
  readonly #log: Logger
  readonly #counts: Record<RestResult, number>
  readonly #now: () => number
  readonly #random: () => number
  readonly #limiter: SlidingWindowLimiter
  #rest: Config['finnhub']['rest']
  #token: string
  /** Requests wait their turn one after another, so the limiter sees them in order. */
  #turn: Promise<void> = Promise.resolve()

  constructor (opts: FinnhubRestOptions) {
    this.#rest = opts.rest
    this.#token = opts.token
    this.#log = opts.log
    this.#counts = opts.counts
    this.#now = opts.now ?? Date.now
    this.#random = opts.random ?? Math.random
    this.#limiter = new SlidingWindowLimiter(opts.rest.requestsPerWindow, opts.rest.windowMs)
  }

  /** A reload: new settings or token; requests already sent still count against the limit. */
  configure (rest: Config['finnhub']['rest'], token: string): void {
    this.#rest = rest
    this.#token = token
    this.#limiter.configure(rest.requestsPerWindow, rest.windowMs)
  }

  /** GET {rest.url}{path}?{params}: the parsed JSON body, or a FinnhubdError saying what to do. */
  async get (path: string, params: Readonly<Record<string, string>>, signal: AbortSignal): Promise<unknown> {
    const query = new URLSearchParams(params).toString()
    const where = `${path}${query === '' ? '' : `?${query}`}`
    let failures = 0
    let limited = 0
    for (;;) {
      await this.#slot(signal)
      const rest = this.#rest
      const url = `${rest.url.replace(/\/+$/, '')}${where}`
      let res: Response
      let body: string
      try {
        res = await fetch(url, {
          headers: { 'X-Finnhub-Token': this.#token, accept: 'application/json' },
          // A redirect would take the token header along to wherever it points.
          redirect: 'manual',
          signal: AbortSignal.any([signal, AbortSignal.timeout(rest.requestTimeoutMs)])
        })
        body = await res.text()
      } catch (err) {
        signal.throwIfAborted()
        this.#counts.network_error++
        failures++
        const reason = (err as Error).name === 'TimeoutError' ? `no answer within finnhub.rest.requestTimeoutMs (${rest.requestTimeoutMs} ms)` : causeText(err)
        await this.#retryOrThrow(failures, where, reason, signal)
        continue
      }
      if (res.status >= 200 && res.status < 300) {
        this.#counts.ok++
        try {
          return JSON.parse(body)
        } catch {
          throw new FinnhubdError('FINNHUBD_ERR_FINNHUB_REST',
            `Finnhub's REST API answered ${where} with a body that is not JSON (${body.slice(0, 80)}); check finnhub.rest.url (${rest.url})`)
        }
      }
      if (res.status >= 300 && res.status < 400) {
        this.#counts.client_error++
        throw new FinnhubdError('FINNHUBD_ERR_FINNHUB_REST',
          `Finnhub's REST API answered ${where} with a redirect (HTTP ${res.status}) to ${locationHost(res.headers.get('location'), url)}, which finnhubd does not follow ` +
          `(the token would go along); check finnhub.rest.url (${rest.url}), or set it to where the redirect points if you trust that host`)
      }
      if (res.status === 401 || res.status === 403) {
        this.#counts.unauthorized++
        throw new FinnhubdError('FINNHUBD_ERR_FINNHUB_AUTH',
          `Finnhub's REST API refused the API token (HTTP ${res.status} for ${path}${errorText(body)}); check FINNHUB_TOKEN or finnhub.token`)
      }
      if (res.status === 429) {
        this.#counts.rate_limited++
        const waitMs = parseRetryAfter(res.headers.get('retry-after'), this.#now()) ??
          backoffDelay(limited, rest.retryInitialDelayMs, rest.retryMaxDelayMs, this.#random)
        limited++
        this.#log.limited('warn', 'finnhub-rest-429', 'Finnhub REST API answered 429 Too Many Requests; waiting as it asks',
          { path, retryInMs: waitMs, requestsPerWindow: rest.requestsPerWindow, windowMs: rest.windowMs })
        await delay(waitMs, undefined, { signal })
        continue
      }
      if (res.status >= 500) {
        this.#counts.server_error++
        failures++
        await this.#retryOrThrow(failures, where, `HTTP ${res.status}${errorText(body)}`, signal)
        continue
      }
      this.#counts.client_error++
      throw new FinnhubdError('FINNHUBD_ERR_FINNHUB_REST',
        `Finnhub's REST API answered HTTP ${res.status} for ${where}${errorText(body)}; check finnhub.discovery (exchanges) and finnhub.rest.url`)
    }
  }

  async #retryOrThrow (failures: number, where: string, reason: string, signal: AbortSignal): Promise<void> {
    const rest = this.#rest
    if (failures >= rest.maxAttempts) {
      throw new FinnhubdError('FINNHUBD_ERR_FINNHUB_REST',
        `Finnhub's REST API failed ${failures} time(s) in a row for ${where} (last: ${reason}); ` +
        `is ${rest.url} reachable? (finnhub.rest.url, finnhub.rest.maxAttempts)`)
    }
    const waitMs = backoffDelay(failures - 1, rest.retryInitialDelayMs, rest.retryMaxDelayMs, this.#random)
    this.#log.limited('warn', 'finnhub-rest-retry', 'Finnhub REST request failed; retrying', { where, reason, attempt: failures, retryInMs: waitMs })
    await delay(waitMs, undefined, { signal })
  }

  /** Waits until the limiter lets one more request go, then counts it as sent. */
  async #slot (signal: AbortSignal): Promise<void> {
    const mine = this.#turn.then(async () => {
      for (;;) {
        signal.throwIfAborted()
        const waitMs = this.#limiter.delayMs(this.#now())
        if (waitMs === 0) break
        await delay(waitMs, undefined, { signal })
      }
      this.#limiter.record(this.#now())
    })
    // The next caller waits for this one, whether it was let through or aborted.
    this.#turn = mine.catch(() => {})
    await mine
  }
}

function errorText (body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown }
    if (typeof parsed.error === 'string' && parsed.error !== '') return `: ${parsed.error.slice(0, 200)}`
  } catch {}
  return ''
}

/** Where a redirect points, as its host only: a Location's path or query may carry anything. */
function locationHost (location: string | null, base: string): string {
  if (location === null) return 'nowhere (no Location header)'
  try {
    const to = new URL(location, base)
    return `${to.protocol}//${to.host}`
  } catch {
    return 'an address that is not a URL'
  }
}

function causeText (err: unknown): string {
  const e = err as Error & { cause?: { code?: string, message?: string } }
  return e.cause?.code ?? e.cause?.message ?? e.message
}
