// The simulator's Finnhub REST API (/api/v1/…), so symbol discovery can be tested and
// demoed without a Finnhub account: symbol listings per market and exchange, quotes
// (all zeros for a dead or unknown symbol, as Finnhub answers), the token check, and
// Finnhub's sliding-window rate limit. Fault switches force 401/429/500 for the next
// requests or for a while, and every request is logged (without its token) so a test
// can prove the client kept within the limit and backed off when told to.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { SlidingWindowLimiter } from '../../daemon/core/rate-limit.js'

export type RestMarket = 'crypto' | 'forex' | 'stock'
export type RestFaultStatus = 401 | 429 | 500

export interface ListedSymbol {
  symbol: string
  /** 0 = dead: still listed, but its quote is all zeros. */
  price: number
}

/** market → exchange → listed symbols. A market left out has no exchanges. */
export type RestListings = Partial<Record<RestMarket, Record<string, ReadonlyArray<ListedSymbol>>>>

export interface RestRateLimit { requests: number, perMs: number }

export interface RestOptions {
  listings?: RestListings
  rateLimit?: RestRateLimit
}

export interface RestRequest {
  /** Date.now() on arrival. */
  at: number
  /** Pathname and query, with any token parameter taken out. */
  path: string
  status: number
}

export interface RestCounters { restRequests: number, rest429: number }

export const REST_BASE_PATH = '/api/v1'

// Finnhub's free tier allows 30 calls a minute (its documented limit, at the time of writing).
export const DEFAULT_RATE_LIMIT: Readonly<RestRateLimit> = Object.freeze({ requests: 30, perMs: 60_000 })

const live = (symbol: string, price: number): ListedSymbol => ({ symbol, price })
const dead = (symbol: string): ListedSymbol => ({ symbol, price: 0 })

/**
 * Enough for discovery to have something to choose among and something to reject: live
 * USDT pairs, BTC-quoted pairs (a filter on the quote currency), and delisted pairs whose
 * quotes are zeros (a liveness check).
 */
export const DEFAULT_LISTINGS: {
  readonly crypto: { readonly BINANCE: readonly ListedSymbol[] }
  readonly forex: { readonly OANDA: readonly ListedSymbol[] }
  readonly stock: { readonly US: readonly ListedSymbol[] }
} = deepFreeze({
  crypto: {
    BINANCE: [
      live('BINANCE:BTCUSDT', 43000.5),
      live('BINANCE:ETHUSDT', 2300.25),
      live('BINANCE:BNBUSDT', 310.4),
      live('BINANCE:SOLUSDT', 98.7),
      live('BINANCE:XRPUSDT', 0.62),
      live('BINANCE:ADAUSDT', 0.55),
      live('BINANCE:DOGEUSDT', 0.085),
      live('BINANCE:LTCUSDT', 72.3),
      live('BINANCE:DOTUSDT', 7.15),
      live('BINANCE:AVAXUSDT', 36.9),
      live('BINANCE:ETHBTC', 0.0535),
      live('BINANCE:BNBBTC', 0.00722),
      dead('BINANCE:LUNAUSDT'),
      dead('BINANCE:FTTUSDT'),
      dead('BINANCE:BCCUSDT'),
      dead('BINANCE:VENUSDT')
    ]
  },
  forex: {
    OANDA: [
      live('OANDA:EUR_USD', 1.0876),
      live('OANDA:GBP_USD', 1.2712),
      live('OANDA:USD_JPY', 148.12)
    ]
  },
  stock: {
    US: [
      live('AAPL', 189.95),
      live('MSFT', 374.5),
      live('NVDA', 495.2),
      dead('LEHMQ')
    ]
  }
})

// Descriptions and venues for the default stocks; any other stock gets its symbol and XNAS.
const STOCK_NAMES: Readonly<Record<string, { description: string, mic: string }>> = {
  AAPL: { description: 'APPLE INC', mic: 'XNAS' },
  MSFT: { description: 'MICROSOFT CORP', mic: 'XNAS' },
  NVDA: { description: 'NVIDIA CORP', mic: 'XNAS' },
  LEHMQ: { description: 'LEHMAN BROTHERS HOLDINGS INC', mic: 'OOTC' }
}

// Longest first, so BINANCE:ETHBUSD splits as ETH/BUSD and not ETHB/USD.
const QUOTE_CURRENCIES = ['FDUSD', 'USDT', 'USDC', 'BUSD', 'TUSD', 'USD', 'EUR', 'GBP', 'TRY', 'BTC', 'ETH', 'BNB']

const RATE_LIMITED = '{"error":"API limit reached. Please try again later."}'
const INVALID_KEY = '{"error":"Invalid API key"}'

interface Fault { status: RestFaultStatus, retryAfterSec: number }

export class RestApi {
  readonly #token: string
  readonly #counters: RestCounters
  readonly #listings: Record<RestMarket, Map<string, ListedSymbol[]>>
  readonly #prices = new Map<string, number>()
  readonly #log: RestRequest[] = []
  /** The requests that count toward the rate window (served ones), by arrival time. */
  readonly #window: SlidingWindowLimiter
  readonly #faultQueue: Fault[] = []
  #faultUntil = 0
  #timedFault: Fault | null = null

  /** `counters` is updated in place: the simulator's stats object. */
  constructor (token: string, options: RestOptions, counters: RestCounters) {
    this.#token = token
    this.#counters = counters
    const limit = options.rateLimit ?? DEFAULT_RATE_LIMIT
    // The client's limiter, judged on arrival, with no margin: the server is the clock that counts.
    try {
      this.#window = new SlidingWindowLimiter(limit.requests, limit.perMs, 0)
    } catch (err) {
      throw new RangeError(`rest.rateLimit needs a whole number of requests ≥ 1 and perMs > 0, got ${JSON.stringify(limit)}`, { cause: err })
    }
    const listings = options.listings ?? DEFAULT_LISTINGS
    this.#listings = { crypto: new Map(), forex: new Map(), stock: new Map() }
    for (const market of ['crypto', 'forex', 'stock'] as const) {
      for (const [exchange, symbols] of Object.entries(listings[market] ?? {})) this.setListing(market, exchange, symbols)
    }
  }

  /** Answers a request under /api/v1 and returns true; returns false for any other path. */
  handle (req: IncomingMessage, res: ServerResponse): boolean {
    const raw = req.url ?? '/'
    const queryAt = raw.indexOf('?')
    const pathname = queryAt === -1 ? raw : raw.slice(0, queryAt)
    if (pathname !== REST_BASE_PATH && !pathname.startsWith(`${REST_BASE_PATH}/`)) return false
    const now = Date.now()
    const query = queryAt === -1 ? '' : raw.slice(queryAt + 1)
    const params = new URLSearchParams(query)
    const answer = (status: number, body: string, headers: Record<string, string> = {}): void => {
      this.#counters.restRequests++
      if (status === 429) this.#counters.rest429++
      const kept = withoutToken(query)
      this.#log.push({ at: now, path: kept === '' ? pathname : `${pathname}?${kept}`, status })
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body)
    }

    const fault = this.#nextFault(now)
    if (fault !== null) {
      if (fault.status === 429) answer(429, RATE_LIMITED, { 'retry-after': String(fault.retryAfterSec) })
      else if (fault.status === 401) answer(401, INVALID_KEY)
      else answer(500, '{"error":"internal error"}')
      return true
    }

    // The window is judged before anything else, so every answer but a 429 (a bad
    // token, a bad request, a 404) spends quota, and the request log alone shows
    // whether a client kept within the limit.
    const wait = this.#window.delayMs(now)
    if (wait > 0) {
      answer(429, RATE_LIMITED, { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) })
      return true
    }
    this.#window.record(now)

    const header = req.headers['x-finnhub-token']
    const headerToken = Array.isArray(header) ? header[0] : header
    if (headerToken !== this.#token && params.get('token') !== this.#token) {
      answer(401, INVALID_KEY)
      return true
    }
    if (req.method !== 'GET') {
      answer(405, '{"error":"method not allowed"}', { allow: 'GET' })
      return true
    }

    const route = pathname.slice(REST_BASE_PATH.length)
    const market = /^\/(crypto|forex|stock)\/symbol$/.exec(route)?.[1] as RestMarket | undefined
    if (market !== undefined) {
      const exchange = params.get('exchange') ?? ''
      if (exchange === '') answer(400, '{"error":"exchange is required"}')
      else answer(200, JSON.stringify(this.#listing(market, exchange)))
    } else if (route === '/quote') {
      const symbol = params.get('symbol') ?? ''
      if (symbol === '') answer(400, '{"error":"symbol is required"}')
      else answer(200, JSON.stringify(quote(this.#prices.get(symbol) ?? 0, now)))
    } else {
      answer(404, '{"error":"not found"}')
    }
    return true
  }

  /** The next `count` requests get `status`, whatever their token; they spend no quota. */
  failRest (status: RestFaultStatus, count: number, retryAfterSec = 1): void {
    for (let i = 0; i < count; i++) this.#faultQueue.push({ status, retryAfterSec })
  }

  /** Every request arriving in the next `ms` gets `status` (a 429 storm, an outage). */
  failRestFor (status: RestFaultStatus, ms: number, retryAfterSec = 1): void {
    this.#timedFault = { status, retryAfterSec }
    this.#faultUntil = Date.now() + ms
  }

  requests (): readonly RestRequest[] { return this.#log }

  /** Replaces one exchange's listing; its symbols' quotes take the prices given. */
  setListing (market: RestMarket, exchange: string, symbols: ReadonlyArray<ListedSymbol>): void {
    this.#listings[market].set(exchange, symbols.map(s => ({ symbol: s.symbol, price: s.price })))
    for (const s of symbols) this.#prices.set(s.symbol, s.price)
  }

  setQuote (symbol: string, price: number): void { this.#prices.set(symbol, price) }

  #nextFault (now: number): Fault | null {
    const queued = this.#faultQueue.shift()
    if (queued !== undefined) return queued
    return now < this.#faultUntil ? this.#timedFault : null
  }

  #listing (market: RestMarket, exchange: string): object[] {
    const listings = this.#listings[market]
    // Finnhub takes the exchange code in any case.
    const key = listings.has(exchange) ? exchange : [...listings.keys()].find(k => k.toUpperCase() === exchange.toUpperCase())
    const symbols = key === undefined ? [] : listings.get(key) ?? []
    return symbols.map(({ symbol }) => describe(market, key as string, symbol))
  }
}

function describe (market: RestMarket, exchange: string, symbol: string): object {
  if (market === 'stock') {
    const known = STOCK_NAMES[symbol]
    return { currency: 'USD', description: known?.description ?? symbol, displaySymbol: symbol, figi: '', mic: known?.mic ?? 'XNAS', symbol, type: 'Common Stock' }
  }
  const ticker = symbol.includes(':') ? symbol.slice(symbol.indexOf(':') + 1) : symbol
  const displaySymbol = market === 'forex' ? ticker.replace('_', '/') : cryptoPair(ticker)
  const venue = exchange.charAt(0).toUpperCase() + exchange.slice(1).toLowerCase()
  return { description: `${venue} ${market === 'forex' ? displaySymbol : ticker}`, displaySymbol, symbol }
}

function cryptoPair (ticker: string): string {
  const quoteCurrency = QUOTE_CURRENCIES.find(q => ticker.endsWith(q) && ticker.length > q.length)
  return quoteCurrency === undefined ? ticker : `${ticker.slice(0, -quoteCurrency.length)}/${quoteCurrency}`
}

// A plausible day around the price: up 1% from the previous close, opened at the close.
function quote (price: number, now: number): Record<'c' | 'd' | 'dp' | 'h' | 'l' | 'o' | 'pc' | 't', number> {
  if (price === 0) return { c: 0, d: 0, dp: 0, h: 0, l: 0, o: 0, pc: 0, t: 0 }
  const pc = round(price / 1.01)
  return {
    c: price,
    d: round(price - pc),
    dp: round((price - pc) / pc * 100),
    h: round(Math.max(price, pc) * 1.005),
    l: round(Math.min(price, pc) * 0.995),
    o: pc,
    pc,
    t: Math.floor(now / 1000)
  }
}

function round (x: number): number { return Math.round(x * 1e6) / 1e6 }

// Keeps the query as the client spelled it (no re-encoding), minus any token.
function withoutToken (query: string): string {
  return query.split('&').filter(part => {
    if (part === '') return false
    const name = part.split('=', 1)[0] as string
    try {
      return decodeURIComponent(name.replace(/\+/g, ' ')) !== 'token'
    } catch {
      return name !== 'token'
    }
  }).join('&')
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
