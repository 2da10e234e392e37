// The console API's request parsing against arbitrary targets, property-based (fast-check,
// fixed seed, bounded runs): paths and query strings of unicode, lone surrogates,
// malformed percent-encodings, reserved characters, repeated and unknown names, long
// strings. Every input gives a request whose values are in range, or an ApiError with
// a 4xx status and a short one-line message; nothing else is ever thrown.
import t from 'tap'
import fc from 'fast-check'
import { ApiError, apiRequest, MAX_GAP_RANGE_MS, MAX_RANGE_MS, maxCandleRangeMs, quote, requestUrl, type ApiRequest } from '../../daemon/console/params.js'
import { RESOLUTION_NAMES } from '../../daemon/core/candle-periods.js'
import { SYMBOL_PATTERN } from '../../daemon/config/schema.js'
import { ENDPOINTS, NOW, paramName, paramValue, target, text } from '../fixtures/hostile-http.js'

const SEED = 16
const RUNS = 2_000
const name = paramName
const value = paramValue

type Outcome = 'ok' | 'bad_target' | 'not_found' | 'bad_parameter'

/** The request's values are the ones the console can read with. */
function inRange (req: ApiRequest): boolean {
  switch (req.endpoint) {
    case '/api/topic':
      return (req.topic === 'trades' || req.topic === 'dlq') && Number.isInteger(req.limit) && req.limit >= 1 && req.limit <= 200
    case '/api/trades':
      return Number.isInteger(req.limit) && req.limit >= 1 && req.limit <= 1000 && SYMBOL_PATTERN.test(req.symbol) && rangeOk(req, MAX_RANGE_MS)
    case '/api/candles':
      return RESOLUTION_NAMES.includes(req.interval) && SYMBOL_PATTERN.test(req.symbol) && rangeOk(req, maxCandleRangeMs(req.interval))
    case '/api/gaps':
      return (req.symbol === null || SYMBOL_PATTERN.test(req.symbol)) && rangeOk(req, MAX_GAP_RANGE_MS)
    default:
      return true
  }
}

const rangeOk = (req: { from: number, to: number }, max: number): boolean => Number.isFinite(req.from) && Number.isFinite(req.to) && req.from < req.to && req.to - req.from <= max

/** An ApiError the API may answer with: 4xx, a message of one short line. */
function apiRefusal (err: unknown): err is ApiError {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.message.length > 0 && err.message.length <= 400 && !/[\r\n]/.test(err.message)
}

t.test(`any request target is parsed to values in range or refused with a 4xx (${RUNS} runs)`, async t => {
  const seen: Record<Outcome, number> = { ok: 0, bad_target: 0, not_found: 0, bad_parameter: 0 }
  const unexpected: string[] = []
  fc.assert(fc.property(target, raw => {
    let url: URL
    try {
      url = requestUrl(raw)
    } catch (err) {
      if (!apiRefusal(err) || err.status !== 400) unexpected.push(`${JSON.stringify(raw.slice(0, 200))}: ${String(err)}`)
      seen.bad_target++
      return apiRefusal(err)
    }
    try {
      const req = apiRequest(url.pathname, url.searchParams, NOW)
      seen.ok++
      return inRange(req)
    } catch (err) {
      if (!apiRefusal(err)) unexpected.push(`${JSON.stringify(raw.slice(0, 200))}: ${String(err)}`)
      if (err instanceof ApiError && err.status === 404) seen.not_found++
      else seen.bad_parameter++
      return apiRefusal(err)
    }
  }), { seed: SEED, numRuns: RUNS })
  t.same(unexpected, [], 'nothing but a 4xx ApiError is thrown')
  t.comment(`outcomes: ${JSON.stringify(seen)}`)
  // The inputs reach every branch, not only the first refusal.
  t.ok(seen.ok >= RUNS / 20, `${seen.ok} parsed`)
  t.ok(seen.bad_parameter >= RUNS / 20, `${seen.bad_parameter} bad parameters`)
  t.ok(seen.not_found >= RUNS / 50, `${seen.not_found} not found`)
  t.ok(seen.bad_target >= RUNS / 100, `${seen.bad_target} bad targets`)
})

t.test(`query strings straight into each endpoint, without a URL's normalisation (${RUNS} runs)`, async t => {
  let parsed = 0
  fc.assert(fc.property(fc.constantFrom(...ENDPOINTS), fc.array(fc.tuple(name, value), { maxLength: 7 }), (endpoint, pairs) => {
    try {
      const req = apiRequest(endpoint, new URLSearchParams(pairs), NOW)
      parsed++
      return inRange(req)
    } catch (err) {
      return apiRefusal(err)
    }
  }), { seed: SEED + 1, numRuns: RUNS })
  t.ok(parsed > 0, `${parsed} parsed`)
})

t.test('quote cuts long values without splitting a surrogate pair and keeps them one line', async t => {
  fc.assert(fc.property(text, fc.integer({ min: 1, max: 100 }), (raw, max) => {
    const q = quote(raw, max)
    const inner = JSON.parse(q.endsWith('…') ? q.slice(0, -1) : q) as string
    const splitsPair = inner.length < raw.length && /[\uD800-\uDBFF]$/.test(inner) && /^[\uDC00-\uDFFF]/.test(raw.slice(inner.length))
    return !/[\r\n]/.test(q) && inner.length <= max && raw.startsWith(inner) && !splitsPair
  }), { seed: SEED + 2, numRuns: RUNS })
  t.equal(quote('😀😀', 3), '"😀"…', 'the pair is kept whole')
  t.equal(quote('abc'), '"abc"')
})

t.test('the refusals name what was wrong', async t => {
  const refusal = (raw: string): string => {
    try {
      const url = requestUrl(raw)
      apiRequest(url.pathname, url.searchParams, NOW)
      return 'accepted'
    } catch (err) {
      return `${(err as ApiError).status} ${(err as Error).message}`
    }
  }
  t.match(refusal('/api/trades?symbol=%E0%A4%A'), /^400 symbol "\uFFFD%A" is not a Finnhub symbol/, 'malformed percent-encoding is decoded leniently, then refused')
  t.match(refusal('*'), /^400 the request target "\*" is not a path/)
  t.match(refusal('http://example.com/api'), /^400 the request target "http:\/\/example\.com\/api" is not a path/)
  t.match(refusal('//evil.example/api'), /^404 no such endpoint \/\/evil\.example\/api;/, 'a path here, never another host')
  t.match(refusal('/\\evil.example/api/topic'), /^404 no such endpoint \/\/evil\.example\/api\/topic;/)
  t.match(refusal('//'), /^404 no such endpoint \/\/;/)
  t.match(refusal(`/api/topic?${'x'.repeat(10_000)}=1`), /^400 unknown parameter "x{40}"…; this endpoint takes topic, limit$/)
  t.match(refusal(`/api/topic?${Array.from({ length: 9 }, (_, i) => `p${i}=1`).join('&')}`), /^400 unknown parameters p0, p1, p2, p3, p4 and 4 more;/)
  t.match(refusal('/api/topic?token=a&token=b'), /^400 token is given more than once/)
  t.match(refusal(`/api/${'a'.repeat(500)}`), /^404 no such endpoint \/api\/a{75}…; GET \/api lists them$/)
  t.match(refusal('/api/candles?symbol=AAPL&from=0&to=99999999999999999999'), /^400 to "9{20}" is neither an ISO time/)
  t.equal(refusal('/api/topic?topic=dlq&limit=200'), 'accepted')
  t.match(refusal('/api/candles?symbol=AAPL&interval=1w'), /^400 interval must be one of 1m, 5m, 15m, 1h, 1d, got "1w"/)
  t.match(refusal('/api/candles?symbol=AAPL&interval=1h&interval=1d'), /^400 interval is given more than once/)
  t.match(refusal('/api/candles?symbol=AAPL&from=2026-11-01T00:00:00Z&to=2026-11-05T00:00:00Z'), /^400 the range is 96 h; at most 48 h at a time \(a longer interval, e\.g\. interval=1h, reads a longer range\)/)
  t.equal(refusal('/api/candles?symbol=AAPL&interval=1h&from=2026-09-01T00:00:00Z&to=2026-12-01T00:00:00Z'), 'accepted', 'three months of 1 h candles')
  t.match(refusal('/api/candles?symbol=AAPL&interval=1h&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z'), /^400 the range is 8016 h; at most 2880 h at a time/)
  t.match(refusal('/api/candles?symbol=AAPL&interval=1d&minutes=99999999'), /^400 minutes must be a whole number from 1 to 4147200/)
  t.equal(refusal('/api/trades?symbol=AAPL&interval=1h'), '400 unknown parameter interval; this endpoint takes symbol, limit, minutes, from, to')
})

t.test('candles default to the last 120 of their interval', async t => {
  for (const [interval, minutes] of [['1m', 120], ['5m', 600], ['1h', 7200], ['1d', 172_800]] as const) {
    const req = apiRequest('/api/candles', new URLSearchParams({ symbol: 'AAPL', interval }), NOW)
    t.equal(req.endpoint === '/api/candles' && req.to - req.from, minutes * 60_000 + 60_000, `${interval}: ${minutes} minutes back, to a minute ahead`)
  }
  const plain = apiRequest('/api/candles', new URLSearchParams({ symbol: 'AAPL' }), NOW)
  t.equal(plain.endpoint === '/api/candles' && plain.interval, '1m', 'interval 1m when none is given')
})
