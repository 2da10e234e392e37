// The simulator's Finnhub REST API over real HTTP (Node's fetch): the shapes symbol
// discovery parses, the token check, the sliding-window rate limit as Finnhub applies
// it, the fault switches, the request log, and the CLI's REST URL.
import t, { type Test } from 'tap'
import { runSimulateCli } from '../../tools/simulator/cli.js'
import { DEFAULT_LISTINGS, FinnhubSimulator, type SimulatorOptions } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'

t.setTimeout(60_000)

const TOKEN = 'rest-token'
const AUTH = { 'X-Finnhub-Token': TOKEN }

interface Reply { status: number, body: unknown, type: string | null, retryAfter: string | null }

async function simulator (t: Test, opts: Partial<SimulatorOptions> = {}): Promise<FinnhubSimulator> {
  // A high limit by default, so tests that are not about the limit never meet it.
  const sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: 1, rest: { rateLimit: { requests: 1000, perMs: 60_000 } }, ...opts })
  await sim.start()
  t.teardown(() => sim.close())
  return sim
}

async function get (sim: FinnhubSimulator, path: string, init: RequestInit = { headers: AUTH }): Promise<Reply> {
  const res = await fetch(`${sim.restUrl}${path}`, init)
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, body, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after') }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

t.test('restUrl is on the WebSocket port; other paths still get 426', async t => {
  const sim = await simulator(t)
  const port = new URL(sim.url).port
  t.equal(sim.restUrl, `http://127.0.0.1:${port}/api/v1`)
  t.equal((await fetch(sim.url.replace('ws:', 'http:'))).status, 426, '/ is still told to upgrade')
  t.equal((await fetch(`${sim.url.replace('ws:', 'http:')}/api/v2/quote?symbol=AAPL`, { headers: AUTH })).status, 426, 'not under /api/v1/')
  t.equal(sim.restRequests().length, 0, 'non-REST requests are not logged as REST')
  t.equal(sim.stats().restRequests, 0)
})

t.test('symbol listings: crypto, forex, stock, in Finnhub\'s shapes', async t => {
  const sim = await simulator(t)
  const crypto = await get(sim, '/crypto/symbol?exchange=BINANCE')
  t.equal(crypto.status, 200)
  t.equal(crypto.type, 'application/json')
  const list = crypto.body as Array<Record<string, unknown>>
  t.equal(list.length, 16, '10 USDT + 2 BTC-quoted + 4 dead')
  t.same(list[0], { description: 'Binance BTCUSDT', displaySymbol: 'BTC/USDT', symbol: 'BINANCE:BTCUSDT' })
  t.same(list.map(s => s['symbol']), DEFAULT_LISTINGS.crypto.BINANCE.map(s => s.symbol), 'every listed symbol, in order')
  t.ok(list.every(s => Object.keys(s).sort().join() === 'description,displaySymbol,symbol'), 'exactly the three fields')
  t.same(list.find(s => s['symbol'] === 'BINANCE:ETHBTC'), { description: 'Binance ETHBTC', displaySymbol: 'ETH/BTC', symbol: 'BINANCE:ETHBTC' })
  t.ok(list.some(s => s['symbol'] === 'BINANCE:LUNAUSDT'), 'dead symbols are still listed')
  t.equal(DEFAULT_LISTINGS.crypto.BINANCE.filter(s => s.price > 0 && s.symbol.endsWith('USDT')).length, 10)
  t.equal(DEFAULT_LISTINGS.crypto.BINANCE.filter(s => s.price === 0).length, 4)

  const forex = await get(sim, '/forex/symbol?exchange=OANDA')
  t.equal(forex.status, 200)
  t.same((forex.body as Array<Record<string, unknown>>)[0], { description: 'Oanda EUR/USD', displaySymbol: 'EUR/USD', symbol: 'OANDA:EUR_USD' })
  t.same((forex.body as Array<Record<string, unknown>>).map(s => s['displaySymbol']), ['EUR/USD', 'GBP/USD', 'USD/JPY'])

  const stock = await get(sim, '/stock/symbol?exchange=US')
  t.equal(stock.status, 200)
  const stocks = stock.body as Array<Record<string, unknown>>
  t.same(stocks[0], { currency: 'USD', description: 'APPLE INC', displaySymbol: 'AAPL', figi: '', mic: 'XNAS', symbol: 'AAPL', type: 'Common Stock' })
  t.same(stocks.map(s => s['symbol']), ['AAPL', 'MSFT', 'NVDA', 'LEHMQ'])

  const unknown = await get(sim, '/crypto/symbol?exchange=NOWHERE')
  t.equal(unknown.status, 200)
  t.same(unknown.body, [], 'an unknown exchange lists nothing')
  t.same(await get(sim, '/stock/symbol?exchange=BINANCE'), { status: 200, body: [], type: 'application/json', retryAfter: null }, 'exchanges are per market')
  t.equal(((await get(sim, '/crypto/symbol?exchange=binance')).body as unknown[]).length, 16, 'the exchange code in any case')

  const missing = await get(sim, '/crypto/symbol')
  t.same([missing.status, missing.body], [400, { error: 'exchange is required' }])
  t.same((await get(sim, '/forex/symbol?exchange=')).body, { error: 'exchange is required' }, 'an empty exchange is missing')
})

t.test('quotes: live symbols have a plausible day; dead and unknown symbols are all zeros', async t => {
  const sim = await simulator(t)
  const before = Math.floor(Date.now() / 1000)
  const btc = await get(sim, '/quote?symbol=BINANCE:BTCUSDT')
  t.equal(btc.status, 200)
  t.equal(btc.type, 'application/json')
  const q = btc.body as Record<string, number>
  t.same(Object.keys(q).sort(), ['c', 'd', 'dp', 'h', 'l', 'o', 'pc', 't'])
  t.equal(q['c'], DEFAULT_LISTINGS.crypto.BINANCE[0]?.price)
  t.ok(Object.values(q).every(v => typeof v === 'number' && v > 0), 'every field a positive number')
  t.ok((q['h'] as number) >= (q['c'] as number) && (q['l'] as number) <= (q['c'] as number), 'l ≤ c ≤ h')
  t.ok(Math.abs((q['c'] as number) - (q['pc'] as number) - (q['d'] as number)) < 1e-3, 'd = c − pc')
  t.ok((q['t'] as number) >= before && (q['t'] as number) <= Math.ceil(Date.now() / 1000), 't is now, in unix seconds')

  const zeros = { c: 0, d: 0, dp: 0, h: 0, l: 0, o: 0, pc: 0, t: 0 }
  for (const dead of ['BINANCE:LUNAUSDT', 'BINANCE:FTTUSDT', 'BINANCE:BCCUSDT', 'BINANCE:VENUSDT', 'LEHMQ']) {
    t.same((await get(sim, `/quote?symbol=${dead}`)).body, zeros, `${dead} is dead`)
  }
  t.same((await get(sim, '/quote?symbol=NOPE:NOTHING')).body, zeros, 'an unknown symbol is all zeros too')
  t.equal(((await get(sim, '/quote?symbol=OANDA:EUR_USD')).body as Record<string, number>)['c'], 1.0876)
  t.ok(((await get(sim, '/quote?symbol=AAPL')).body as Record<string, number>)['c'] as number > 0)

  const missing = await get(sim, '/quote')
  t.same([missing.status, missing.body], [400, { error: 'symbol is required' }])
})

t.test('404 for other paths, 405 for other methods', async t => {
  const sim = await simulator(t)
  t.same(await get(sim, '/stock/candle?symbol=AAPL'), { status: 404, body: { error: 'not found' }, type: 'application/json', retryAfter: null })
  t.equal((await get(sim, '')).status, 404, '/api/v1 itself')
  t.equal((await get(sim, '/crypto/symbol/extra?exchange=BINANCE')).status, 404)
  const post = await fetch(`${sim.restUrl}/quote?symbol=AAPL`, { method: 'POST', headers: AUTH, body: '{}' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET')
  t.equal((await fetch(`${sim.restUrl}/crypto/symbol?exchange=BINANCE`, { method: 'DELETE', headers: AUTH })).status, 405)
})

t.test('the token: header or ?token=, else 401 Invalid API key', async t => {
  const sim = await simulator(t)
  const invalid = { error: 'Invalid API key' }
  const none = await get(sim, '/quote?symbol=AAPL', {})
  t.same([none.status, none.body], [401, invalid], 'no token')
  t.equal(none.type, 'application/json')
  t.same((await get(sim, '/quote?symbol=AAPL', { headers: { 'X-Finnhub-Token': 'wrong' } })).body, invalid, 'a wrong header')
  t.equal((await get(sim, '/quote?symbol=AAPL&token=wrong', {})).status, 401, 'a wrong query token')
  t.equal((await get(sim, '/crypto/symbol?exchange=BINANCE&token=', {})).status, 401, 'an empty query token')
  t.equal((await get(sim, '/quote?symbol=AAPL')).status, 200, 'the header')
  t.equal((await get(sim, '/quote?symbol=AAPL', { headers: { 'x-finnhub-token': TOKEN } })).status, 200, 'the header in any case')
  t.equal((await get(sim, `/quote?symbol=AAPL&token=${TOKEN}`, {})).status, 200, '?token=')
  t.equal((await get(sim, `/crypto/symbol?token=${TOKEN}&exchange=BINANCE`, {})).status, 200, '?token= first')
  t.equal((await get(sim, '/nowhere', {})).status, 401, 'the token is checked before the route')
  t.same(sim.restRequests().map(r => r.status), [401, 401, 401, 401, 200, 200, 200, 200, 401])
  t.equal(sim.stats().restRequests, 9)
})

t.test('the request log records path and query without the token', async t => {
  const sim = await simulator(t)
  const start = Date.now()
  await get(sim, `/quote?symbol=BINANCE:BTCUSDT&token=${TOKEN}`, {})
  await get(sim, `/crypto/symbol?token=${TOKEN}&exchange=BINANCE`, {})
  await get(sim, `/forex/symbol?%74oken=${TOKEN}&exchange=OANDA`, { headers: AUTH })
  await get(sim, '/quote?symbol=AAPL')
  await get(sim, `/quote?token=${TOKEN}`, {})
  await get(sim, '/quote?symbol=AAPL&token=nottheone', {})
  await get(sim, '/stock/symbol?exchange=US')
  const log = sim.restRequests()
  t.same(log.map(r => [r.path, r.status]), [
    ['/api/v1/quote?symbol=BINANCE:BTCUSDT', 200],
    ['/api/v1/crypto/symbol?exchange=BINANCE', 200],
    ['/api/v1/forex/symbol?exchange=OANDA', 200],
    ['/api/v1/quote?symbol=AAPL', 200],
    ['/api/v1/quote', 400],
    ['/api/v1/quote?symbol=AAPL', 401],
    ['/api/v1/stock/symbol?exchange=US', 200]
  ])
  t.ok(log.every(r => !r.path.includes(TOKEN) && !r.path.includes('nottheone') && !/token/i.test(r.path)), 'no token, right or wrong, in the log')
  t.ok(log.every((r, i) => r.at >= start && r.at <= Date.now() && (i === 0 || r.at >= (log[i - 1] as { at: number }).at)), 'arrival times, in order')
})

t.test('the rate limit is a sliding window of served requests; 429s carry Retry-After and spend no quota', async t => {
  const perMs = 1000
  const sim = await simulator(t, { rest: { rateLimit: { requests: 5, perMs } } })
  const first = Date.now()
  for (let i = 0; i < 5; i++) t.equal((await get(sim, '/quote?symbol=AAPL')).status, 200, `request ${i + 1} is served`)
  const sixth = await get(sim, '/quote?symbol=AAPL')
  t.equal(sixth.status, 429, 'the 6th inside the window is refused')
  t.same(sixth.body, { error: 'API limit reached. Please try again later.' })
  t.equal(sixth.type, 'application/json')
  t.equal(sixth.retryAfter, '1', 'Retry-After: whole seconds until the oldest leaves the window, at least 1')
  t.equal((await get(sim, '/crypto/symbol?exchange=BINANCE', {})).status, 429, 'refused before the token is looked at')
  // Hammer on through the rest of the window: all refused, and (429s not counting) none
  // of this pushes the end of the window back.
  let hammered = 0
  while (Date.now() - first < perMs - 150) {
    t.equal((await get(sim, '/quote?symbol=AAPL')).status, 429)
    hammered++
    await sleep(20)
  }
  t.ok(hammered > 5)
  await sleep(Math.max(0, first + perMs + 50 - Date.now()))
  t.equal((await get(sim, '/quote?symbol=AAPL')).status, 200, 'served again once the window has passed')

  // Spread requests over time: the window slides rather than resetting, so it admits a
  // request as soon as the oldest served one is perMs old, never a 6th within perMs.
  await sleep(perMs + 50)
  const until = Date.now() + 2500
  while (Date.now() < until) {
    await get(sim, '/quote?symbol=AAPL')
    await sleep(40)
  }
  const log = sim.restRequests()
  const served = log.filter(r => r.status !== 429).map(r => r.at)
  let most = 0
  for (let i = 0; i < served.length; i++) {
    const inWindow = served.filter(at => at >= (served[i] as number) && at < (served[i] as number) + perMs).length
    most = Math.max(most, inWindow)
  }
  t.equal(most, 5, 'no window of perMs ever holds more than 5 served requests, and the limit is reached')
  t.ok(log.filter(r => r.at >= until - 2500 && r.status === 200).length >= 10, 'about 5 a second are served while requests keep coming')
  const s = sim.stats()
  t.equal(s.restRequests, log.length)
  t.equal(s.rest429, log.filter(r => r.status === 429).length)
  t.ok(s.rest429 > hammered)
})

t.test('Retry-After counts whole seconds to the oldest served request\'s exit', async t => {
  const sim = await simulator(t, { rest: { rateLimit: { requests: 2, perMs: 3500 } } })
  await get(sim, '/quote?symbol=AAPL')
  await get(sim, '/quote?symbol=AAPL')
  const refused = await get(sim, '/quote?symbol=AAPL')
  t.equal(refused.status, 429)
  t.equal(refused.retryAfter, '4', 'ceil(3.5 s less a few ms)')
  t.throws(() => new FinnhubSimulator({ token: TOKEN, ratePerSec: 1, rest: { rateLimit: { requests: 0, perMs: 1000 } } }), /whole number of requests/)
  t.throws(() => new FinnhubSimulator({ token: TOKEN, ratePerSec: 1, rest: { rateLimit: { requests: 5, perMs: 0 } } }), RangeError)
})

t.test('failRest: the next N requests fail, whatever their token, and spend no quota', async t => {
  const sim = await simulator(t, { rest: { rateLimit: { requests: 3, perMs: 60_000 } } })
  sim.failRest(429, 2, 7)
  const storm = await get(sim, '/quote?symbol=AAPL')
  t.same([storm.status, storm.body, storm.retryAfter], [429, { error: 'API limit reached. Please try again later.' }, '7'])
  t.equal((await get(sim, '/quote?symbol=AAPL', {})).status, 429, 'forced even without a token')
  sim.failRest(500, 1)
  const broken = await get(sim, '/crypto/symbol?exchange=BINANCE')
  t.same([broken.status, broken.body, broken.type], [500, { error: 'internal error' }, 'application/json'])
  sim.failRest(401, 1)
  t.same(await get(sim, '/quote?symbol=AAPL'), { status: 401, body: { error: 'Invalid API key' }, type: 'application/json', retryAfter: null }, 'a forced 401 with the right token')
  sim.failRest(429, 1)
  t.equal((await get(sim, '/quote?symbol=AAPL')).retryAfter, '1', 'Retry-After defaults to 1 s')
  // Five forced failures so far, yet the whole quota of 3 is still there.
  for (let i = 0; i < 3; i++) t.equal((await get(sim, '/quote?symbol=AAPL')).status, 200)
  t.equal((await get(sim, '/quote?symbol=AAPL')).status, 429, 'then the real limit')
  t.same(sim.restRequests().map(r => r.status), [429, 429, 500, 401, 429, 200, 200, 200, 429], 'forced answers are logged')
  t.equal(sim.stats().rest429, 4)
  t.equal(sim.stats().restRequests, 9)
})

t.test('failRestFor: every request for a while fails, then service resumes', async t => {
  const sim = await simulator(t)
  sim.failRestFor(429, 400, 2)
  const started = Date.now()
  const during: Reply[] = []
  while (Date.now() - started < 300) {
    during.push(await get(sim, '/quote?symbol=AAPL'))
    await sleep(20)
  }
  t.ok(during.length >= 5)
  t.ok(during.every(r => r.status === 429 && r.retryAfter === '2'), 'a 429 storm with Retry-After: 2')
  await sleep(Math.max(0, started + 450 - Date.now()))
  t.equal((await get(sim, '/quote?symbol=AAPL')).status, 200, 'served once the storm is over')
  sim.failRestFor(500, 200)
  t.equal((await get(sim, '/stock/symbol?exchange=US')).status, 500)
  t.equal((await get(sim, '/stock/symbol?exchange=US', {})).status, 500, 'whatever the token')
  await sleep(250)
  t.equal((await get(sim, '/stock/symbol?exchange=US')).status, 200)
  sim.failRestFor(401, 200)
  t.equal((await get(sim, '/stock/symbol?exchange=US')).status, 401)
  t.equal(sim.stats().rest429, during.length)
})

t.test('setListing and setQuote change answers live; custom listings replace the defaults', async t => {
  const sim = await simulator(t)
  sim.setListing('crypto', 'BINANCE', [{ symbol: 'BINANCE:NEWUSDT', price: 1.5 }, { symbol: 'BINANCE:OLDUSDT', price: 0 }])
  t.same((await get(sim, '/crypto/symbol?exchange=BINANCE')).body, [
    { description: 'Binance NEWUSDT', displaySymbol: 'NEW/USDT', symbol: 'BINANCE:NEWUSDT' },
    { description: 'Binance OLDUSDT', displaySymbol: 'OLD/USDT', symbol: 'BINANCE:OLDUSDT' }
  ], 'the listing is replaced')
  t.equal(((await get(sim, '/quote?symbol=BINANCE:NEWUSDT')).body as Record<string, number>)['c'], 1.5, 'and its prices quoted')
  sim.setListing('crypto', 'COINBASE', [{ symbol: 'COINBASE:BTC-USD', price: 43_000 }])
  t.equal(((await get(sim, '/crypto/symbol?exchange=COINBASE')).body as unknown[]).length, 1, 'a new exchange')
  sim.setListing('stock', 'US', [])
  t.same((await get(sim, '/stock/symbol?exchange=US')).body, [], 'an emptied listing')

  sim.setQuote('BINANCE:BTCUSDT', 0)
  t.equal(((await get(sim, '/quote?symbol=BINANCE:BTCUSDT')).body as Record<string, number>)['t'], 0, 'a symbol killed')
  sim.setQuote('BINANCE:LUNAUSDT', 0.5)
  t.equal(((await get(sim, '/quote?symbol=BINANCE:LUNAUSDT')).body as Record<string, number>)['c'], 0.5, 'a dead one revived')
  sim.setQuote('NEVER:LISTED', 2)
  t.equal(((await get(sim, '/quote?symbol=NEVER:LISTED')).body as Record<string, number>)['c'], 2, 'an unlisted one quoted')
  t.equal(DEFAULT_LISTINGS.crypto.BINANCE.length, 16, 'the defaults are untouched')

  const custom = await simulator(t, { rest: { listings: { forex: { FXCM: [{ symbol: 'FXCM:EUR/USD', price: 1.1 }] } } } })
  t.same((await get(custom, '/crypto/symbol?exchange=BINANCE')).body, [], 'a market left out has no exchanges')
  t.same((await get(custom, '/forex/symbol?exchange=FXCM')).body, [{ description: 'Fxcm EUR/USD', displaySymbol: 'EUR/USD', symbol: 'FXCM:EUR/USD' }])
  t.equal(((await get(custom, '/quote?symbol=FXCM:EUR/USD')).body as Record<string, number>)['c'], 1.1)
})

t.test('the CLI prints the REST URL and applies --rest-requests-per-minute', async t => {
  const out: string[] = []
  const controller = new AbortController()
  const running = runSimulateCli(['--port', '0', '--token', 'x', '--rest-requests-per-minute', '2'], { env: {}, out: l => out.push(l), err: l => out.push(l), signal: controller.signal, statsEveryMs: 20 })
  t.teardown(() => { controller.abort() })
  t.ok(await waitFor(() => out.length > 0))
  const match = /^finnhubd simulate: listening on ws:\/\/127\.0\.0\.1:(\d+) .*REST on (http:\/\/127\.0\.0\.1:(\d+)\/api\/v1) /.exec(out[0] ?? '')
  t.ok(match, `the listening line names the REST URL: ${out[0]}`)
  t.equal(match?.[1], match?.[3], 'on the WebSocket port')
  const restUrl = match?.[2] as string
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${restUrl}/quote?symbol=AAPL&token=x`)).status)
  t.same(statuses, [200, 200, 429], '2 a minute')
  t.ok(await waitFor(() => out.some(l => / REST requests 3 \(429s 1\)$/.test(l))), 'the stats line counts REST requests')
  controller.abort()
  t.equal(await running, 0)
  const noop = { env: {}, out: () => {}, err: () => {} }
  await t.rejects(runSimulateCli(['--rest-requests-per-minute', '0'], noop), { code: 'FINNHUBD_ERR_USAGE', message: /--rest-requests-per-minute takes a number ≥ 1/ })
  await t.rejects(runSimulateCli(['--rest-requests-per-minute', '2.5'], noop), { code: 'FINNHUBD_ERR_USAGE', message: /whole number/ })
})
