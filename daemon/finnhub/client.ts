// The Finnhub WebSocket client (main thread). It keeps one connection per API key
// alive: subscribes to the configured symbols after every (re)connect, applies
// symbol changes as subscribe/unsubscribe diffs on the live socket, and reconnects
// with capped exponential backoff and full jitter. A 401 on the handshake means a
// bad token: logged as such and retried only after finnhub.unauthorizedBackoffMs,
// never in a hot loop; a 429 waits the maximum backoff. A watchdog reconnects when
// no frame at all (not even a ping) arrived for finnhub.staleAfterMs. Frames are
// parsed by the pure core/frame.ts; valid trades go to `onTrades`, everything
// else is counted and logged (rate-limited). The token never appears in a log line.

import WebSocket from 'ws'
import type { Config } from '../config/schema.js'
import { parseFrame, type FrameOptions } from '../core/frame.js'
import { backoffDelay } from '../core/retry.js'
import { MAX_FUTURE_SKEW_MS, show } from '../core/validate.js'
import type { TradeRecord } from '../core/trade-schema.js'
import type { Logger } from '../log.js'
import type { IngestCounters, ReconnectCause } from '../metrics/ingest.js'

/** How long a socket closed for a reload may take to finish its close handshake before it is cut. */
const RELOAD_CLOSE_GRACE_MS = 2_000

export interface FinnhubClientOptions {
  finnhub: Config['finnhub']
  log: Logger
  counters: IngestCounters
  onTrades: (trades: TradeRecord[]) => void
  /** The socket ended or a connection attempt failed, and why (the ledger of gaps). */
  onDown?: (cause: ReconnectCause) => void
  /** The socket opened and the symbols were subscribed. */
  onUp?: (symbols: string[]) => void
  /** Seconds of clock skew tolerated in trade timestamps. */
  maxFutureSkewMs?: number
  random?: () => number
  now?: () => number
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'waiting' | 'closed'

export class FinnhubClient {
  readonly #opts: FinnhubClientOptions
  readonly #frameOptions: FrameOptions
  readonly #random: () => number
  readonly #now: () => number
  #symbols: Set<string>
  #endpoint: { url: string, token: string }
  #ws: WebSocket | null = null
  #state: ClientState = 'idle'
  #attempt = 0
  #lastFrameAt = 0
  #retryTimer: NodeJS.Timeout | null = null
  #watchdog: NodeJS.Timeout | null = null
  #endCause: ReconnectCause | null = null
  #nextDelayMs: number | null = null

  constructor (opts: FinnhubClientOptions) {
    this.#opts = opts
    this.#symbols = new Set(opts.finnhub.symbols)
    opts.counters.subscribedSymbols = this.#symbols.size
    this.#endpoint = { url: opts.finnhub.url, token: opts.finnhub.token }
    this.#frameOptions = { keepZeroVolume: opts.finnhub.keepZeroVolume, maxFutureSkewMs: opts.maxFutureSkewMs ?? MAX_FUTURE_SKEW_MS }
    this.#random = opts.random ?? Math.random
    this.#now = opts.now ?? Date.now
  }

  get state (): ClientState { return this.#state }
  get connected (): boolean { return this.#state === 'open' }
  get symbols (): string[] { return [...this.#symbols] }

  start (): void {
    if (this.#state !== 'idle') return
    this.#connect()
  }

  /** Replaces the symbol set; on a live socket only the difference is (un)subscribed. */
  setSymbols (symbols: readonly string[]): { added: string[], removed: string[] } {
    const next = new Set(symbols)
    const added = [...next].filter(s => !this.#symbols.has(s))
    const removed = [...this.#symbols].filter(s => !next.has(s))
    this.#symbols = next
    this.#opts.counters.subscribedSymbols = next.size
    if (this.#state === 'open') {
      for (const s of removed) this.#send({ type: 'unsubscribe', symbol: s })
      for (const s of added) this.#send({ type: 'subscribe', symbol: s })
    }
    return { added, removed }
  }

  /**
   * Switches to another URL or token (a reload): a live or pending connection is
   * replaced at once, so a corrected token does not wait out the 401 backoff.
   * Returns whether anything changed.
   */
  setEndpoint (url: string, token: string): boolean {
    if (url === this.#endpoint.url && token === this.#endpoint.token) return false
    this.#endpoint = { url, token }
    if (this.#state === 'idle' || this.#state === 'closed') return true
    this.#attempt = 0
    if (this.#state === 'waiting') {
      this.#clearTimers()
      this.#connect()
    } else {
      this.#endCause = 'reload'
      this.#nextDelayMs = 0
      const ws = this.#ws
      if (ws !== null && ws.readyState === WebSocket.OPEN) {
        // Closed, not terminated: the frames the server sent before it reads the close
        // frame are still read and produced (terminate() threw away what waited in the
        // socket: the fault suite lost 20 trades at 4,000/s on a token reload). The
        // reconnect follows the close; a server that never answers it is cut off.
        ws.close(1000, 'finnhubd reconnecting: new endpoint or token')
        setTimeout(() => { ws.terminate() }, RELOAD_CLOSE_GRACE_MS).unref()
      } else {
        ws?.terminate()
      }
    }
    return true
  }

  /** Stops reading and reconnecting, and closes the socket. */
  async close (): Promise<void> {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#clearTimers()
    const ws = this.#ws
    this.#ws = null
    if (ws === null || ws.readyState === WebSocket.CLOSED) return
    await new Promise<void>(resolve => {
      ws.once('close', () => resolve())
      ws.removeAllListeners('message')
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate()
      else ws.close(1000, 'finnhubd stopping')
      setTimeout(() => { ws.terminate(); resolve() }, 2_000).unref()
    })
  }

  #connect (): void {
    const { finnhub, log } = this.#opts
    const endpoint = this.#endpoint
    this.#state = 'connecting'
    this.#endCause = null
    this.#nextDelayMs = null
    const url = new URL(endpoint.url)
    url.searchParams.set('token', endpoint.token)
    const ws = new WebSocket(url, { maxPayload: finnhub.maxPayloadBytes, handshakeTimeout: 15_000, perMessageDeflate: false })
    this.#ws = ws
    log.debug('connecting to Finnhub', { url: endpoint.url })

    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0
      res.resume()
      if (status === 401 || status === 403) {
        this.#endCause = 'unauthorized'
        this.#nextDelayMs = this.#jittered(finnhub.unauthorizedBackoffMs)
        log.error('Finnhub refused the API token (HTTP ' + String(status) + '): check FINNHUB_TOKEN or finnhub.token; not retrying for a while',
          { url: endpoint.url, retryInMs: this.#nextDelayMs })
      } else if (status === 429) {
        this.#endCause = 'rate_limited'
        this.#nextDelayMs = this.#jittered(finnhub.reconnectMaxDelayMs)
        log.warn('Finnhub answered 429 Too Many Requests: too many connections or requests for this API key; backing off',
          { url: endpoint.url, retryInMs: this.#nextDelayMs })
      } else {
        this.#endCause = 'handshake_failed'
        log.limited('warn', 'finnhub-handshake', `Finnhub handshake failed with HTTP ${status}`, { url: endpoint.url })
      }
      ws.terminate()
    })
    ws.on('open', () => {
      this.#state = 'open'
      this.#opts.counters.connected = 1
      this.#lastFrameAt = this.#now()
      for (const symbol of this.#symbols) this.#send({ type: 'subscribe', symbol })
      log.info('connected to Finnhub', { url: endpoint.url, symbols: this.#symbols.size })
      this.#opts.onUp?.([...this.#symbols])
      this.#armWatchdog()
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // Nothing about one frame may reach the socket's emitter: an exception there
      // would kill the daemon and every trade still queued for Kafka with it.
      try {
        this.#onMessage(data, isBinary)
      } catch (err) {
        this.#opts.counters.malformed.internal++
        log.limited('error', 'frame-internal', 'a frame could not be handled and was dropped (a finnhubd bug: please report it with this line)',
          { reason: 'internal', err, frameBytes: data.length, frameStarts: show(data.subarray(0, 60).toString('utf8')) })
      }
    })
    ws.on('error', err => {
      if (/max payload size exceeded/i.test(err.message)) {
        this.#endCause ??= 'oversized'
        this.#opts.counters.malformed.oversized++
        log.limited('warn', 'finnhub-oversized', `a frame larger than finnhub.maxPayloadBytes (${finnhub.maxPayloadBytes}) was refused; reconnecting`)
      } else {
        this.#endCause ??= 'error'
        log.limited('warn', 'finnhub-socket-error', 'Finnhub socket error', { err: err.message, url: endpoint.url })
      }
    })
    ws.on('close', (code, reason) => {
      if (this.#ws !== ws) return
      this.#opts.counters.connected = 0
      this.#clearTimers()
      if (this.#state === 'closed') return
      const cause = this.#endCause ?? 'closed'
      this.#opts.counters.reconnects[cause]++
      this.#opts.onDown?.(cause)
      const delay = this.#nextDelayMs ?? backoffDelay(this.#attempt, finnhub.reconnectInitialDelayMs, finnhub.reconnectMaxDelayMs, this.#random)
      this.#attempt++
      if (cause === 'closed' || cause === 'error' || cause === 'stale') {
        log.limited('warn', 'finnhub-reconnect', 'Finnhub connection ended; reconnecting',
          { cause, code, reason: reason.toString('utf8').slice(0, 120), retryInMs: delay, attempt: this.#attempt })
      }
      this.#state = 'waiting'
      this.#retryTimer = setTimeout(() => { this.#retryTimer = null; this.#connect() }, delay)
    })
  }

  #onMessage (data: Buffer, isBinary: boolean): void {
    const receivedAt = this.#now()
    this.#lastFrameAt = receivedAt
    const { counters, log } = this.#opts
    const frame = parseFrame(data, isBinary, receivedAt, this.#frameOptions)
    switch (frame.kind) {
      case 'trades': {
        counters.framesTrade++
        // A working stream proves the connection is healthy: the next failure starts the backoff afresh.
        this.#attempt = 0
        for (const reject of frame.rejected) {
          counters.tradesRejected[reject.reason]++
          if (reject.reason !== 'zero_volume') log.limited('warn', `trade-${reject.reason}`, 'invalid trade dropped', { reason: reject.reason, detail: reject.detail })
        }
        if (frame.trades.length > 0) {
          counters.tradesReceived += frame.trades.length
          this.#opts.onTrades(frame.trades)
        }
        return
      }
      case 'ping':
        counters.framesPing++
        return
      case 'error':
        counters.framesError++
        log.limited('error', `finnhub-error-${frame.message.slice(0, 40)}`, 'Finnhub sent an error', { finnhubMessage: frame.message.slice(0, 300) })
        return
      case 'other':
        counters.framesOther++
        log.limited('info', `finnhub-type-${frame.type}`, 'ignored a frame of a type finnhubd does not use', { type: frame.type })
        return
      case 'malformed':
        counters.malformed[frame.reason]++
        log.limited('warn', `frame-${frame.reason}`, 'malformed frame dropped', { reason: frame.reason, detail: frame.detail })
    }
  }

  #armWatchdog (): void {
    const staleAfter = this.#opts.finnhub.staleAfterMs
    let deferred = false
    const check = (): void => {
      const silentFor = this.#now() - this.#lastFrameAt
      if (this.#state !== 'open') return
      if (silentFor >= staleAfter && !deferred) {
        // Before calling the socket stale, let the event loop read it once: after the
        // main thread was blocked (a long GC, a blocking call), frames that came
        // meanwhile still wait in it, unread, and terminating it now would throw them
        // away uncounted (the fault suite lost 1,613 trades that way). A timer set from
        // a timer runs only after the loop's next poll for I/O.
        deferred = true
        this.#watchdog = setTimeout(check, 1)
        return
      }
      if (silentFor >= staleAfter) {
        this.#endCause = 'stale'
        this.#opts.log.warn('no frame from Finnhub for too long; the connection looks stalled, reconnecting',
          { silentForMs: silentFor, staleAfterMs: staleAfter })
        this.#ws?.terminate()
        return
      }
      deferred = false
      this.#watchdog = setTimeout(check, Math.max(50, staleAfter - silentFor))
    }
    this.#watchdog = setTimeout(check, staleAfter)
  }

  #send (msg: { type: 'subscribe' | 'unsubscribe', symbol: string }): void {
    this.#ws?.send(JSON.stringify(msg))
  }

  #jittered (ms: number): number {
    return Math.round(ms * (0.9 + 0.2 * this.#random()))
  }

  #clearTimers (): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    if (this.#watchdog !== null) clearTimeout(this.#watchdog)
    this.#retryTimer = null
    this.#watchdog = null
  }
}
