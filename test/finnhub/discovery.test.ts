// Symbol discovery against the simulator's REST API (a real HTTP server): listing,
// patterns, quote check, cap; the rate limit under a 429 storm, counted on the
// server's side; 5xx backoff; a bad token; the saved result across restarts and
// while the API is down.
import t, { type Test } from 'tap'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { DISCOVERY_FILE, SymbolDiscovery, discoverySettingsKey } from '../../daemon/finnhub/discovery.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { FinnhubSimulator, type SimulatorOptions } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'
import { maxInWindow } from '../fixtures/windows.js'

t.setTimeout(120_000)

const TOKEN = 'rest-token'

async function simulator (t: Test, opts: Partial<SimulatorOptions> = {}): Promise<FinnhubSimulator> {
  const sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: 10, ...opts })
  await sim.start()
  t.teardown(() => sim.close())
  return sim
}

type FinnhubOverrides = Omit<Partial<Config['finnhub']>, 'discovery' | 'rest'> & {
  discovery?: Partial<Config['finnhub']['discovery']>
  rest?: Partial<Config['finnhub']['rest']>
}

function finnhubConfig (sim: FinnhubSimulator, o: FinnhubOverrides = {}): Config['finnhub'] {
  return validateConfig({
    finnhub: {
      url: sim.url,
      token: TOKEN,
      symbols: [],
      ...o,
      rest: { url: sim.restUrl, requestsPerWindow: 1000, windowMs: 1000, retryInitialDelayMs: 20, retryMaxDelayMs: 100, ...o.rest },
      discovery: { enabled: true, ...o.discovery }
    }
  }).finnhub
}

interface Harness {
  discovery: SymbolDiscovery
  counters: ReturnType<typeof createIngestCounters>['discovery']
  results: string[][]
  logs: Array<Record<string, unknown>>
  stateDir: string
}

function harness (t: Test, finnhub: Config['finnhub'], stateDir = t.testdir({})): Harness {
  const counters = createIngestCounters().discovery
  const results: string[][] = []
  const logs: Array<Record<string, unknown>> = []
  const log = createLogger({ level: 'debug', write: line => logs.push(JSON.parse(line) as Record<string, unknown>), limitIntervalMs: 0 })
  const discovery = new SymbolDiscovery({ finnhub, stateDir, log, counters, onResult: symbols => results.push([...symbols]) })
  t.teardown(() => discovery.stop())
  return { discovery, counters, results, logs, stateDir }
}

t.test('lists, filters, quote-checks and caps; the result is saved', async t => {
  const sim = await simulator(t)
  const finnhub = finnhubConfig(sim, {
    symbols: ['BINANCE:BTCUSDT'],
    discovery: { include: ['USDT$'], exclude: ['^BINANCE:DOGE'], maxSymbols: 6 }
  })
  const h = harness(t, finnhub)
  const report = await h.discovery.runNow()
  // USDT pairs but DOGE and the static BTCUSDT, sorted; BCCUSDT is dead; five fit beside BTCUSDT.
  t.same(report?.symbols, ['BINANCE:ADAUSDT', 'BINANCE:AVAXUSDT', 'BINANCE:BNBUSDT', 'BINANCE:DOTUSDT', 'BINANCE:ETHUSDT'])
  t.equal(report?.dead, 1)
  t.equal(report?.listed, 16)
  t.same(h.results, [report?.symbols])
  const paths = sim.restRequests().map(r => r.path)
  t.same(paths, [
    '/api/v1/crypto/symbol?exchange=BINANCE',
    ...['ADAUSDT', 'AVAXUSDT', 'BCCUSDT', 'BNBUSDT', 'DOTUSDT', 'ETHUSDT'].map(s => `/api/v1/quote?symbol=BINANCE%3A${s}`)
  ], 'one listing, then quotes only until the cap is reached')
  t.ok(sim.restRequests().every(r => r.status === 200))
  t.same(h.counters.restRequests, { ok: 7, unauthorized: 0, rate_limited: 0, server_error: 0, client_error: 0, network_error: 0 })
  t.equal(h.counters.runs.ok, 1)
  t.equal(h.counters.symbols, 5)
  t.ok(h.counters.lastSuccessSeconds > 0)
  const saved = JSON.parse(readFileSync(join(h.stateDir, DISCOVERY_FILE), 'utf8')) as { symbols: string[], settings: string, version: number }
  t.same(saved.symbols, report?.symbols)
  t.equal(saved.settings, discoverySettingsKey(finnhub))
  t.equal(saved.version, 1)
  t.ok(h.logs.some(l => l['msg'] === 'symbol discovery done' && l['symbols'] === 5))
})

t.test('several exchanges and markets; without the quote check no quote is asked', async t => {
  const sim = await simulator(t)
  const finnhub = finnhubConfig(sim, {
    discovery: {
      exchanges: [{ market: 'forex', exchange: 'OANDA' }, { market: 'stock', exchange: 'US' }, { market: 'crypto', exchange: 'NOWHERE' }],
      quoteCheck: false,
      maxSymbols: 50
    }
  })
  const h = harness(t, finnhub)
  const report = await h.discovery.runNow()
  t.same(report?.symbols, ['AAPL', 'LEHMQ', 'MSFT', 'NVDA', 'OANDA:EUR_USD', 'OANDA:GBP_USD', 'OANDA:USD_JPY'], 'a dead symbol stays without the quote check')
  t.equal(sim.restRequests().length, 3)
  t.notOk(sim.restRequests().some(r => r.path.includes('/quote')))
})

t.test('a re-run keeps what it had first, then fills the cap from the sorted rest', async t => {
  const sim = await simulator(t)
  const h = harness(t, finnhubConfig(sim, { discovery: { include: ['USDT$'], maxSymbols: 2 } }))
  t.same((await h.discovery.runNow())?.symbols, ['BINANCE:ADAUSDT', 'BINANCE:AVAXUSDT'])
  // ADA is delisted and a new pair appears; AVAX stays, the free slot goes to the first in order.
  sim.setListing('crypto', 'BINANCE', [{ symbol: 'BINANCE:AVAXUSDT', price: 36 }, { symbol: 'BINANCE:AAAUSDT', price: 1 }, { symbol: 'BINANCE:ZZZUSDT', price: 2 }])
  t.same((await h.discovery.runNow())?.symbols, ['BINANCE:AVAXUSDT', 'BINANCE:AAAUSDT'])
  sim.setQuote('BINANCE:AVAXUSDT', 0)
  t.same((await h.discovery.runNow())?.symbols, ['BINANCE:AAAUSDT', 'BINANCE:ZZZUSDT'], 'a symbol whose price went to 0 is dropped')
  t.equal(h.results.length, 3)
})

t.test('a 429 storm: the client never exceeds its rate, waits as told, and finishes when the storm ends', async t => {
  const sim = await simulator(t)
  const perWindow = 4
  const windowMs = 1000
  const h = harness(t, finnhubConfig(sim, { rest: { requestsPerWindow: perWindow, windowMs }, discovery: { include: ['USDT$'], maxSymbols: 8 } }))
  const stormMs = 3000
  const stormEnds = Date.now() + stormMs
  sim.failRestFor(429, stormMs, 1)
  const report = await h.discovery.runNow()
  t.same(report?.symbols, ['BINANCE:ADAUSDT', 'BINANCE:AVAXUSDT', 'BINANCE:BNBUSDT', 'BINANCE:BTCUSDT', 'BINANCE:DOGEUSDT', 'BINANCE:DOTUSDT', 'BINANCE:ETHUSDT', 'BINANCE:LTCUSDT'])
  const log = sim.restRequests()
  const limited = log.filter(r => r.status === 429)
  t.ok(limited.length >= 2, `${limited.length} answers were 429`)
  t.ok(log.filter(r => r.status === 200).every(r => r.at >= stormEnds - 5), 'nothing succeeded during the storm')
  t.ok(maxInWindow(log.map(r => r.at), windowMs) <= perWindow, `at most ${perWindow} requests in any ${windowMs} ms on the server's clock (saw ${maxInWindow(log.map(r => r.at), windowMs)})`)
  // Retry-After: 1 s: after a 429 the next request comes no sooner than that.
  for (const r of limited) {
    const next = log.find(x => x.at > r.at)
    if (next !== undefined) t.ok(next.at - r.at >= 950, `the request after a 429 waited ${next.at - r.at} ms`)
  }
  t.equal(h.counters.restRequests.rate_limited, limited.length)
  t.ok(h.logs.some(l => l['msg'] === 'Finnhub REST API answered 429 Too Many Requests; waiting as it asks'))
})

t.test('a client set faster than the server allows is slowed by the server\'s 429s and still finishes', async t => {
  const sim = await simulator(t, { rest: { rateLimit: { requests: 3, perMs: 1000 } } })
  const h = harness(t, finnhubConfig(sim, { rest: { requestsPerWindow: 100, windowMs: 1000 }, discovery: { include: ['USDT$'], maxSymbols: 5 } }))
  const report = await h.discovery.runNow()
  t.equal(report?.symbols.length, 5)
  const served = sim.restRequests().filter(r => r.status === 200)
  t.equal(served.length, 7, 'one listing and six quotes (one dead)')
  t.ok(maxInWindow(served.map(r => r.at), 1000) <= 3)
  t.ok(h.counters.restRequests.rate_limited > 0)
})

t.test('5xx answers back off and retry; too many in a row fail the run and change nothing', async t => {
  const sim = await simulator(t)
  const h = harness(t, finnhubConfig(sim, { rest: { maxAttempts: 3 }, discovery: { include: ['^BINANCE:BTC'], maxSymbols: 3, failureRetryMs: 60_000 } }))
  sim.failRest(500, 2)
  t.same((await h.discovery.runNow())?.symbols, ['BINANCE:BTCUSDT'])
  t.equal(h.counters.restRequests.server_error, 2)
  sim.failRest(500, 3)
  t.equal(await h.discovery.runNow(), null, 'three failures in a row: the run fails')
  t.same(h.discovery.symbols, ['BINANCE:BTCUSDT'], 'the last good result stays')
  t.equal(h.results.length, 1, 'and no subscription changed')
  t.equal(h.counters.runs.failed, 1)
  const warn = h.logs.find(l => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('symbol discovery failed; keeping the last good result (1 symbols'))
  t.match(warn?.['reason'], /failed 3 time\(s\) in a row for \/crypto\/symbol\?exchange=BINANCE \(last: HTTP 500: internal error\); is http:\/\/127\.0\.0\.1:\d+\/api\/v1 reachable\?/)
  t.equal(warn?.['retryInMs'], 60_000)
})

t.test('a bad token is said plainly, once, without retries', async t => {
  const sim = await simulator(t)
  const h = harness(t, finnhubConfig(sim, { token: 'wrong-token' }))
  t.equal(await h.discovery.runNow(), null)
  t.equal(sim.restRequests().length, 1, 'no retry on 401')
  t.equal(sim.restRequests()[0]?.status, 401)
  t.notMatch(JSON.stringify(sim.restRequests()), /wrong-token/, 'the token is in a header, not the URL')
  const err = h.logs.find(l => l['level'] === 'error')
  t.match(err?.['msg'], /symbol discovery: Finnhub's REST API refused the API token \(HTTP 401 for \/crypto\/symbol: Invalid API key\); check FINNHUB_TOKEN or finnhub\.token/)
  t.notMatch(JSON.stringify(h.logs), /wrong-token/, 'the token is never logged')
  t.equal(h.counters.restRequests.unauthorized, 1)
})

t.test('a saved result: used at once after a restart, no request while it is fresh, and while the API is down', async t => {
  const sim = await simulator(t)
  const stateDir = t.testdir({})
  const settings = { discovery: { include: ['^BINANCE:(BTC|ETH)USDT$'], maxSymbols: 5, intervalMs: 3_600_000, failureRetryMs: 60_000 }, rest: { maxAttempts: 2 } }
  const first = harness(t, finnhubConfig(sim, settings), stateDir)
  first.discovery.start()
  t.ok(await waitFor(() => first.results.length === 1, 10_000), 'the first start asks the API')
  t.same(first.results[0], ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT'])
  await first.discovery.stop()
  const asked = sim.restRequests().length

  // A restart within the interval: the saved result, and not one request.
  const second = harness(t, finnhubConfig(sim, settings), stateDir)
  second.discovery.start()
  t.same(second.results, [['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT']], 'applied at once, before any request')
  t.equal(second.counters.runs.cached, 1)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(sim.restRequests().length, asked, 'no request: the rate budget is not spent again')
  t.ok(second.logs.some(l => l['msg'] === 'symbol discovery: using the saved result' && (l['nextRunInMs'] as number) > 3_500_000))
  await second.discovery.stop()

  // Other settings: the saved result is not theirs.
  const other = harness(t, finnhubConfig(sim, { ...settings, discovery: { ...settings.discovery, include: ['^OANDA:'] } }), stateDir)
  other.discovery.start()
  t.same(other.results, [], 'a result saved under other settings is not applied')
  await other.discovery.stop()

  // The API down at start, the saved result stale (interval 1 s): used, and said once.
  await sim.close()
  const down = harness(t, finnhubConfig(sim, { ...settings, discovery: { ...settings.discovery, intervalMs: 1000, failureRetryMs: 1000 } }), stateDir)
  writeFileSync(join(stateDir, DISCOVERY_FILE), readFileSync(join(stateDir, DISCOVERY_FILE), 'utf8').replace(/"savedAt": \d+/, `"savedAt": ${Date.now() - 10_000}`))
  down.discovery.start()
  t.same(down.results, [['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT']], 'the stale result is applied at once')
  t.ok(await waitFor(() => down.counters.runs.failed >= 2, 15_000), 'the runs fail while the API is down, and are retried')
  t.same(down.discovery.symbols, ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT'], 'and the saved result stays in use')
  const warnings = down.logs.filter(l => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('symbol discovery failed; keeping the last good result (2 symbols, from '))
  t.equal(warnings.length, 1, 'logged once for the outage')
  t.ok(down.counters.restRequests.network_error >= 4)
})

t.test('an unreadable saved result is ignored and counted; an unwritable state directory does not stop discovery', async t => {
  const sim = await simulator(t)
  const stateDir = t.testdir({ [DISCOVERY_FILE]: '{"version":1,"savedAt":"yesterday"' })
  const h = harness(t, finnhubConfig(sim, { discovery: { include: ['^BINANCE:BTCUSDT$'] } }), stateDir)
  h.discovery.start()
  t.equal(h.counters.cacheErrors, 1)
  t.ok(h.logs.some(l => l['msg'] === 'symbol discovery: the saved result is unreadable and is ignored; it is rewritten after the next good run'))
  t.ok(await waitFor(() => h.results.length === 1, 10_000))
  t.same(JSON.parse(readFileSync(join(stateDir, DISCOVERY_FILE), 'utf8')).symbols, ['BINANCE:BTCUSDT'], 'rewritten')

  const blocked = join(t.testdir({}), 'ro')
  mkdirSync(blocked)
  writeFileSync(join(blocked, 'placeholder'), '')
  chmodSync(blocked, 0o500)
  t.teardown(() => chmodSync(blocked, 0o700))
  // As root a read-only mode does not stop writes: a file where the directory should be does.
  const stateFile = join(blocked, 'placeholder')
  const u = harness(t, finnhubConfig(sim, { discovery: { include: ['^BINANCE:ETHUSDT$'] } }), stateFile)
  t.same((await u.discovery.runNow())?.symbols, ['BINANCE:ETHUSDT'], 'the result is used')
  t.equal(u.counters.cacheErrors, 1)
  t.ok(u.logs.some(l => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('symbol discovery: cannot save the result')))
})

t.test('reconfigure: same settings let a run finish, other settings abandon it; stop abandons a run', async t => {
  const sim = await simulator(t)
  // One request a second: a run of a listing and three quotes takes about three seconds.
  const finnhub = finnhubConfig(sim, { rest: { requestsPerWindow: 1, windowMs: 1000 }, discovery: { include: ['USDT$'], maxSymbols: 3 } })
  const h = harness(t, finnhub)
  h.discovery.start()
  t.ok(await waitFor(() => sim.restRequests().length >= 1, 5_000))
  h.discovery.reconfigure(finnhub)
  t.ok(await waitFor(() => h.results.length === 1, 15_000))
  t.equal(sim.restRequests().filter(r => r.path.startsWith('/api/v1/crypto/symbol')).length, 1, 'the same settings: the run under way finished, no second listing')
  t.equal(h.counters.runs.ok, 1)

  const narrower = { ...finnhub, discovery: { ...finnhub.discovery, include: ['^BINANCE:ETH'] } }
  h.discovery.reconfigure(finnhub)
  t.ok(await waitFor(() => sim.restRequests().filter(r => r.path.startsWith('/api/v1/crypto/symbol')).length === 2, 5_000))
  h.discovery.reconfigure(narrower)
  t.ok(await waitFor(() => h.results.length === 2, 15_000))
  t.same(h.results[1], ['BINANCE:ETHBTC', 'BINANCE:ETHUSDT'], 'the run with the old settings was abandoned, the new one applied')
  t.equal(h.counters.runs.ok, 2)

  const before = sim.restRequests().length
  h.discovery.reconfigure({ ...narrower, discovery: { ...narrower.discovery, include: ['USDT$'] } })
  t.ok(await waitFor(() => sim.restRequests().length > before, 5_000))
  await h.discovery.stop()
  const settled = sim.restRequests().length
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.equal(sim.restRequests().length, settled, 'nothing is asked after stop')
  t.equal(h.results.length, 2, 'and the abandoned run applied nothing')
  h.discovery.reconfigure(finnhub)
  t.equal(h.results.length, 2, 'a stopped discovery stays stopped')
})
