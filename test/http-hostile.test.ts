// The HTTP server and the console against hostile clients, over real sockets: huge
// URLs and headers, malformed percent-encoding, bad Host and targets, other methods
// (CONNECT too), bodies on GET, slowloris, clients leaving mid-stream; then arbitrary
// requests, property-based (fast-check, fixed seed): every answer is one well-formed
// HTTP/1.1 response, never a 5xx but the 503s the console gives for what it cannot
// read, and the server answers /healthz afterwards. A handler that throws answers a
// JSON 500, counted and logged without the token; a stream timer that throws skips an
// event and the daemon goes on.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { connect } from 'node:net'
import { Registry } from 'prom-client'
import type { Config } from '../daemon/config/schema.js'
import { WebConsole } from '../daemon/console/console.js'
import { HTTP_LIMITS, startHttp, type DaemonHttp, type HttpLimits, type Readiness } from '../daemon/http.js'
import { createLogger } from '../daemon/log.js'
import { createIngestCounters } from '../daemon/metrics/ingest.js'
import { StageLatency } from '../daemon/metrics/latency.js'
import { pipelineConfig } from './fixtures/pipeline.js'
import { parseResponse, rawRequest, requestBytes, sendRaw, type RawResponse } from './fixtures/hostile-http.js'

t.setTimeout(240_000)

const FUZZ_SEED = 1616
const FUZZ_RUNS = 200

interface Served { http: DaemonHttp, port: number, registry: Registry, console: WebConsole, lines: string[] }

async function serve (t: Test, config: Config, opts: { readiness?: () => Readiness, limits?: Partial<HttpLimits>, token?: string | null } = {}): Promise<Served> {
  const registry = new Registry()
  const latency = new StageLatency()
  const lines: string[] = []
  const log = createLogger({ level: 'warn', write: l => lines.push(l), limitIntervalMs: 60_000 })
  const readiness = opts.readiness ?? (() => ({ ready: true, checks: { daemon: { ok: true, detail: 'running' } } }))
  const webConsole = new WebConsole({
    config: () => config,
    token: opts.token ?? null,
    startedAt: Date.now(),
    roles: ['ingest'],
    ingest: { counters: createIngestCounters(), symbols: () => ['AAPL'] },
    process: null,
    latency,
    readiness,
    log
  })
  const http = await startHttp({ host: '127.0.0.1', port: 0, registry, latency, readiness, log, console: webConsole, ...(opts.limits !== undefined ? { limits: opts.limits } : {}) })
  t.teardown(() => http.close())
  return { http, port: Number(new URL(http.url).port), registry, console: webConsole, lines }
}

const send = async (port: number, text: string, head = false): Promise<RawResponse> => await sendRaw(port, Buffer.from(text, 'latin1'), { head })
const get = (target: string, headers = ''): string => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`
const json = (r: RawResponse): Record<string, unknown> => JSON.parse(r.body.toString('utf8')) as Record<string, unknown>

async function metric (registry: Registry, name: string, labels: string): Promise<number> {
  const text = await registry.metrics()
  const line = text.split('\n').find(l => l.startsWith(`${name}${labels} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

t.test('the server\'s limits are set and sane', async t => {
  t.ok(HTTP_LIMITS.headersTimeoutMs > 0 && HTTP_LIMITS.headersTimeoutMs <= 30_000, 'headers within seconds, not Node\'s 60 s')
  t.ok(HTTP_LIMITS.requestTimeoutMs >= HTTP_LIMITS.headersTimeoutMs && HTTP_LIMITS.requestTimeoutMs <= 120_000, 'the whole request within a bound, not Node\'s 300 s')
  t.ok(HTTP_LIMITS.keepAliveTimeoutMs > 0 && HTTP_LIMITS.keepAliveTimeoutMs < HTTP_LIMITS.headersTimeoutMs)
  t.ok(HTTP_LIMITS.timeoutCheckMs <= HTTP_LIMITS.headersTimeoutMs / 2, 'checked often enough to matter')
  t.ok(HTTP_LIMITS.maxHeaderBytes >= 8_192 && HTTP_LIMITS.maxHeaderBytes <= 65_536)
})

t.test('hostile requests get 4xx answers that say why; the server goes on', async t => {
  const config = await pipelineConfig()
  const { port, registry } = await serve(t, config)

  const huge = await send(port, get(`/api/trades?symbol=${'A'.repeat(HTTP_LIMITS.maxHeaderBytes + 100)}`))
  t.equal(huge.status, 431, 'a URL past the header limit')
  const longHeader = await send(port, get('/healthz', `X-Long: ${'v'.repeat(HTTP_LIMITS.maxHeaderBytes + 100)}\r\n`))
  t.equal(longHeader.status, 431, 'a header value past the limit')

  const encoding = await send(port, get('/api/trades?symbol=%E0%A4%A'))
  t.equal(encoding.status, 400)
  t.match(json(encoding)['error'], /^symbol "\uFFFD%A" is not a Finnhub symbol/, 'malformed percent-encoding is a bad symbol, not a crash')
  t.match(json(await send(port, get('/api/topic?limit=5&limit=6')))['error'], /^limit is given more than once$/)
  t.match(json(await send(port, get(`/api/topic?${Array.from({ length: 50 }, (_, i) => `n${i}=${'x'.repeat(200)}`).join('&')}`)))['error'], /^unknown parameters n0, n1, n2, n3, n4 and 45 more; this endpoint takes topic, limit$/)

  for (const host of ['a b', '[::1', 'evil.example:99999999', 'x'.repeat(300)]) {
    const r = await send(port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    t.equal(r.status, 400, `Host ${host.slice(0, 20)}`)
    t.match(json(r)['error'], /the Host header is neither a host name nor an address/)
  }
  const noHost = await send(port, 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n')
  t.equal(noHost.status, 400, 'HTTP/1.1 without Host')
  t.match(json(noHost)['error'], /^an HTTP\/1\.1 request needs a Host header$/)
  t.equal((await send(port, 'GET /healthz HTTP/1.0\r\n\r\n')).status, 200, 'HTTP/1.0 may leave it out')

  t.match(json(await send(port, get('http://evil.example/healthz')))['error'], /^the request target "http:\/\/evil\.example\/healthz" is not a path/)
  t.equal((await send(port, get('//evil.example/api/topic'))).status, 404, '//host is a path here, never another host')
  t.equal((await send(port, 'OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')).status, 405)
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await send(port, `${method} /api/topic HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`)
    t.equal(r.status, 405, method)
    t.equal(r.headers['allow'], 'GET, HEAD')
  }
  const connect = await send(port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  t.equal(connect.status, 405, 'CONNECT is answered, not dropped')
  t.equal((await send(port, 'BREW /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')).status, 400, 'a method Node does not know')

  const body = await send(port, 'GET /api/symbols HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\n{"a":"b"}\r\n')
  t.equal(body.status, 400)
  t.equal(body.headers['connection'], 'close', 'the body is not drained: the connection closes')
  t.match(json(body)['error'], /a GET or HEAD request carries no body/)
  const chunked = await send(port, 'GET /api/symbols HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
  t.equal(chunked.status, 400, 'a chunked body too')
  t.equal((await send(port, 'GET /api/symbols HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')).status, 200, 'an empty one is no body')

  const headStream = await send(port, 'HEAD /api/stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', true)
  t.equal(headStream.status, 200, 'HEAD on the stream answers its headers and ends (it has no body to stream into)')

  t.equal((await send(port, get('/healthz'))).status, 200, 'and the server still answers')
  t.equal(await metric(registry, 'finnhubd_http_requests_rejected_total', '{reason="headers_too_large"}'), 2)
  t.equal(await metric(registry, 'finnhubd_http_requests_rejected_total', '{reason="method_not_allowed"}'), 6)
  t.equal(await metric(registry, 'finnhubd_http_requests_rejected_total', '{reason="bad_request"}'), 12, 'every 400 above')
  t.equal(await metric(registry, 'finnhubd_http_requests_rejected_total', '{reason="not_found"}'), 1)
  t.equal(await metric(registry, 'finnhubd_http_errors_total', '{route="/healthz"}'), 0)
})

t.test('slow clients are ended by the server\'s timeouts; a stream outlives the request timeout', async t => {
  const config = await pipelineConfig()
  const { port, registry, console: webConsole } = await serve(t, config, { limits: { headersTimeoutMs: 600, requestTimeoutMs: 900, keepAliveTimeoutMs: 300, timeoutCheckMs: 100 } })
  // Slowloris: the request line, then a header line now and then, never the end.
  const socket = connect(port, '127.0.0.1')
  let got = Buffer.alloc(0)
  socket.on('data', chunk => { got = Buffer.concat([got, chunk]) })
  socket.on('error', () => {})
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n')
  const drip = setInterval(() => { if (socket.writable) socket.write('X-Drip: 1\r\n') }, 100)
  t.teardown(() => { clearInterval(drip); socket.destroy() })
  await closed
  clearInterval(drip)
  const answer = parseResponse(got, false, true)
  t.equal(answer?.status, 408, 'headers not done in time: 408 and the connection closed')
  t.equal(await metric(registry, 'finnhubd_http_requests_rejected_total', '{reason="timeout"}'), 1)

  // The request timeout bounds receiving the request, not the answer: a stream lives on.
  const controller = new AbortController()
  const res = await fetch(`http://127.0.0.1:${port}/api/stream`, { signal: controller.signal })
  let events = 0
  const decoder = new TextDecoder()
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    events += (decoder.decode(chunk).match(/^event: pipeline$/gm) ?? []).length
    if (events >= 3) break
  }
  controller.abort()
  t.equal(events, 3, 'three events, past the 0.9 s request timeout')
  t.equal((await send(port, get('/healthz'))).status, 200)
  await waitUntil(() => webConsole.streams === 0)
  t.equal(webConsole.streams, 0, 'the stream is dropped when its client leaves')
})

t.test('clients that leave mid-stream are dropped; the stream timer goes on for the others', async t => {
  const config = await pipelineConfig()
  const { port, console: webConsole } = await serve(t, config)
  const stay = await sendRaw(port, Buffer.from(get('/api/stream')), { timeoutMs: 5_000 })
  t.equal(stay.status, 200)
  t.match(stay.headers['content-type'], /^text\/event-stream/)
  // sendRaw left after the headers; ten more leave at once, some before reading anything.
  await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    const r = await sendRaw(port, Buffer.from(i % 2 === 0 ? get('/api/stream') : get('/api/stream').slice(0, 20)), { timeoutMs: 500 }).catch(() => null)
    if (r !== null) t.equal(r.status, 200)
  }))
  await waitUntil(() => webConsole.streams === 0)
  t.equal(webConsole.streams, 0, 'every stream whose client left is dropped')
  await new Promise(resolve => setTimeout(resolve, 1_500))
  t.equal((await send(port, get('/healthz'))).status, 200, 'the timer ticked with them gone; the server answers')
})

t.test('a handler that throws answers a JSON 500, counted and logged without the query; a stream timer that throws skips an event', async t => {
  const config = await pipelineConfig()
  let calls = 0
  const { port, registry, lines } = await serve(t, config, {
    readiness: () => {
      calls++
      if (calls > 1) throw new Error('readiness exploded')
      return { ready: true, checks: {} }
    }
  })
  // A page stays open: its first event takes the one snapshot that works, then the timer's throw.
  const page = connect(port, '127.0.0.1')
  page.on('error', () => {})
  t.teardown(() => { page.destroy() })
  const first = new Promise<void>(resolve => page.once('data', () => resolve()))
  page.write(get('/api/stream'))
  await first
  t.ok(await waitUntil(() => lines.some(l => l.includes('the console\'s pipeline snapshot failed')), 5_000), 'the timer\'s failure is logged, not thrown')

  const r = await send(port, get('/api/pipeline?token=do-not-log-this-token'))
  t.equal(r.status, 500)
  t.match(r.headers['content-type'], /^application\/json/)
  t.match(json(r)['error'], /^finnhubd failed to answer \/api\/pipeline, and logged why/)
  t.equal(await metric(registry, 'finnhubd_http_errors_total', '{route="/api/pipeline"}'), 1)
  const logged = lines.join('\n')
  t.match(logged, /"msg":"an HTTP request failed".*"path":"\/api\/pipeline"/)
  t.match(logged, /readiness exploded/)
  t.notMatch(logged, /do-not-log-this-token/, 'never the token')
  t.equal((await send(port, get('/readyz'))).status, 500, '/readyz too')
  t.equal(await metric(registry, 'finnhubd_http_errors_total', '{route="/readyz"}'), 1)
  page.destroy()
  t.equal((await send(port, get('/healthz'))).status, 200, 'and the server goes on')
})

t.test(`arbitrary requests over a socket: one well-formed answer each, never a 5xx but 503 (${FUZZ_RUNS} runs)`, async t => {
  const config = await pipelineConfig()
  const { port, registry, console: webConsole } = await serve(t, config)
  const statuses: Record<number, number> = {}
  const reasons: Record<string, number> = {}
  await fc.assert(fc.asyncProperty(rawRequest(port), async r => {
    const answer = await sendRaw(port, requestBytes(r), { head: r.method === 'HEAD', timeoutMs: 15_000 })
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
    const why = `${answer.status} ${answer.body.toString('utf8').split('\n')[0]?.slice(0, 60) ?? ''}`
    reasons[why] = (reasons[why] ?? 0) + 1
    if (answer.status >= 500 && answer.status !== 503) throw new Error(`${answer.status} for ${JSON.stringify(requestBytes(r).toString('latin1').slice(0, 300))}: ${answer.body.toString().slice(0, 300)}`)
    if (answer.status === 503) {
      const body = JSON.parse(answer.body.toString('utf8')) as { error?: unknown }
      if (typeof body.error !== 'string' || body.error === '') throw new Error('a 503 without a message')
    }
  }), { seed: FUZZ_SEED, numRuns: FUZZ_RUNS, endOnFailure: true })
  t.comment(`statuses: ${JSON.stringify(statuses)}`)
  t.comment(Object.entries(reasons).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, n]) => `${n} × ${k}`).join('\n'))
  t.ok(Object.keys(statuses).length >= 4, 'the requests reach several answers, not one refusal')
  t.ok((statuses[200] ?? 0) > 0 && (statuses[400] ?? 0) > 0 && (statuses[404] ?? 0) > 0)
  t.equal((await send(port, get('/healthz'))).status, 200, 'the server answers afterwards')
  t.equal(await metric(registry, 'finnhubd_http_errors_total', '{route="other"}'), 0)
  await waitUntil(() => webConsole.streams === 0)
  t.equal(webConsole.streams, 0, 'no stream is left behind')
})

async function waitUntil (ok: () => boolean, ms = 5_000): Promise<boolean> {
  const until = Date.now() + ms
  while (!ok() && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
  return ok()
}
