// The REST client's answers to what a wrong finnhub.rest.url or an odd server gives:
// the simulator's 404 and its WebSocket-only root, and a small scripted HTTP server
// for a 200 that is not JSON, a 429 without Retry-After and a timeout.
import t, { type Test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { FinnhubRest, REST_RESULTS, type RestResult } from '../../daemon/finnhub/rest.js'
import { isFinnhubdError } from '../../daemon/core/errors.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'

t.setTimeout(60_000)

function client (url: string, rest: Partial<Config['finnhub']['rest']> = {}, token = 'tok'): { rest: FinnhubRest, counts: Record<RestResult, number> } {
  const counts = Object.fromEntries(REST_RESULTS.map(r => [r, 0])) as Record<RestResult, number>
  const config = validateConfig({ finnhub: { rest: { url, retryInitialDelayMs: 10, retryMaxDelayMs: 50, ...rest } } }).finnhub.rest
  return { rest: new FinnhubRest({ rest: config, token, log: createLogger({ level: 'fatal' }), counts }), counts }
}

async function failure (p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the request to fail')
}

/** An HTTP server answering each request with the next of `answers` (the last one repeats). */
async function scripted (t: Test, answers: Array<(res: ServerResponse) => void>): Promise<{ url: string, hits: number[] }> {
  const hits: number[] = []
  const server = createServer((_req, res) => {
    hits.push(Date.now())
    const answer = answers[Math.min(hits.length - 1, answers.length - 1)] as (res: ServerResponse) => void
    answer(res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`, hits }
}

t.test('a wrong path and a wrong base URL: a 4xx is an error naming the path and what to check, at once', async t => {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 1 })
  await sim.start()
  t.teardown(() => sim.close())
  const { rest, counts } = client(sim.restUrl)
  const notFound = await failure(rest.get('/crypto/symbols', { exchange: 'BINANCE' }, new AbortController().signal))
  t.ok(isFinnhubdError(notFound, 'FINNHUBD_ERR_FINNHUB_REST'))
  t.match(notFound.message, /answered HTTP 404 for \/crypto\/symbols\?exchange=BINANCE: not found; check finnhub\.discovery \(exchanges\) and finnhub\.rest\.url/)
  const root = client(sim.url.replace('ws:', 'http:'))
  const upgrade = await failure(root.rest.get('/quote', { symbol: 'AAPL' }, new AbortController().signal))
  t.match(upgrade.message, /answered HTTP 426 for \/quote\?symbol=AAPL; check/, 'a body that is not JSON adds no reason')
  t.equal(counts.client_error, 1)
  t.equal(sim.restRequests().length, 1, 'no retry on a 4xx')
})

t.test('a 200 that is not JSON is an error; a 429 without Retry-After backs off; a timeout counts as a network error', async t => {
  const html = await scripted(t, [res => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>captive portal</html>')])
  const a = client(html.url)
  const notJson = await failure(a.rest.get('/quote', { symbol: 'AAPL' }, new AbortController().signal))
  t.match(notJson.message, /answered \/quote\?symbol=AAPL with a body that is not JSON \(<html>captive portal<\/html>\); check finnhub\.rest\.url/)
  t.equal(a.counts.ok, 1, 'the request itself was answered')

  const limited = await scripted(t, [res => res.writeHead(429).end(), res => res.writeHead(429).end(), res => res.writeHead(200).end('[]')])
  const b = client(limited.url)
  t.same(await b.rest.get('/crypto/symbol', { exchange: 'X' }, new AbortController().signal), [])
  t.equal(b.counts.rate_limited, 2)
  t.equal(limited.hits.length, 3)

  const slow = await scripted(t, [() => {}])
  const c = client(slow.url, { requestTimeoutMs: 200, maxAttempts: 2 })
  const timedOut = await failure(c.rest.get('/quote', { symbol: 'AAPL' }, new AbortController().signal))
  t.match(timedOut.message, /failed 2 time\(s\) in a row for \/quote\?symbol=AAPL \(last: no answer within finnhub\.rest\.requestTimeoutMs \(200 ms\)\)/)
  t.equal(c.counts.network_error, 2)
})

t.test('an abort stops a request waiting for its turn or for Retry-After', async t => {
  const limited = await scripted(t, [res => res.writeHead(429, { 'retry-after': '30' }).end()])
  const { rest } = client(limited.url, { requestsPerWindow: 1, windowMs: 60_000 })
  const controller = new AbortController()
  const first = failure(rest.get('/quote', { symbol: 'A' }, controller.signal))
  const second = failure(rest.get('/quote', { symbol: 'B' }, controller.signal))
  await new Promise(resolve => setTimeout(resolve, 300))
  controller.abort()
  t.equal((await first).name, 'AbortError', 'the first was waiting out Retry-After')
  t.equal((await second).name, 'AbortError', 'the second was waiting for the limiter')
  t.equal(limited.hits.length, 1, 'the limiter let one request through')
})

t.test('a redirect is never followed: an error naming where it points, and the token goes nowhere else', async t => {
  const TOKEN = 'sekrit-token-0123456789'
  const elsewhere = await scripted(t, [res => res.writeHead(200, { 'content-type': 'application/json' }).end('{"stolen":true}')])
  const target = new URL(elsewhere.url)
  for (const status of [301, 302, 303, 307, 308]) {
    const sent: Array<string | undefined> = []
    const redirecting = createServer((req, res) => {
      sent.push(req.headers['x-finnhub-token'] as string | undefined)
      res.writeHead(status, { location: `http://localhost:${target.port}/steal?token=${TOKEN}&x=1` }).end()
    })
    await new Promise<void>(resolve => redirecting.listen(0, '127.0.0.1', () => resolve()))
    t.teardown(() => new Promise<void>(resolve => { redirecting.closeAllConnections(); redirecting.close(() => resolve()) }))
    const { rest, counts } = client(`http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/api/v1`, {}, TOKEN)
    const err = await failure(rest.get('/stock/symbol', { exchange: 'US' }, new AbortController().signal))
    t.ok(isFinnhubdError(err, 'FINNHUBD_ERR_FINNHUB_REST'), `${status}: FINNHUBD_ERR_FINNHUB_REST`)
    t.match(err.message, new RegExp(`answered /stock/symbol\\?exchange=US with a redirect \\(HTTP ${status}\\) to http://localhost:${target.port}, which finnhubd does not follow`))
    t.notMatch(err.message, TOKEN, 'the message never carries the token, not even the one in the Location')
    t.notMatch(err.message, /\/steal/, 'nor the Location\'s path')
    t.same(sent, [TOKEN], 'one request, to the configured URL only, with the token')
    t.equal(counts.client_error, 1)
  }
  t.same(elsewhere.hits, [], 'the redirect target was never asked')

  const noLocation = await scripted(t, [res => res.writeHead(302).end()])
  const { rest } = client(noLocation.url)
  t.match((await failure(rest.get('/quote', { symbol: 'AAPL' }, new AbortController().signal))).message, /redirect \(HTTP 302\) to nowhere \(no Location header\)/)
})
