// The console's JSON API against the daemon on the real stack, with the simulator
// sending: each endpoint's shape, the pushed stream, the topic and dead-letter views
// (poison written straight into the topic), trades, candles and the ledger of gaps from
// Cassandra, the 400s for bad parameters (hostile ones too), and the access token off loopback.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { writeGap } from '../../daemon/cassandra/gaps.js'
import { loadConfig, validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { WebConsole } from '../../daemon/console/console.js'
import { startDaemon, type RunningDaemon } from '../../daemon/daemon.js'
import { startHttp } from '../../daemon/http.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { StageLatency } from '../../daemon/metrics/latency.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'
import { cassandraClient, encodeTrades, pipelineConfig, produceValues, syntheticTrades } from '../fixtures/pipeline.js'

t.setTimeout(240_000)

const SYMBOLS = ['AAPL', 'BINANCE:BTCUSDT']

interface Running { daemon: RunningDaemon, url: string, config: Config, sim: FinnhubSimulator }

async function running (t: Test, roles: Array<'ingest' | 'process'> = ['ingest', 'process']): Promise<Running> {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 300, seed: 21 })
  await sim.start()
  const config = await pipelineConfig({
    finnhub: { url: sim.url, token: 'tok', symbols: SYMBOLS },
    http: { port: 0 },
    candles: { flushIntervalMs: 50 }
  })
  let stop!: (why: string) => void
  const daemon = await startDaemon({
    config, roles, http: true, log: createLogger({ level: 'error' }), stopSignal: new Promise(resolve => { stop = resolve })
  })
  t.teardown(async () => {
    stop('test over')
    await daemon.stopped
    await sim.close()
  })
  return { daemon, url: daemon.http?.url ?? '', config, sim }
}

async function get (url: string, init: RequestInit = {}): Promise<{ status: number, body: Record<string, unknown>, headers: Headers }> {
  const res = await fetch(url, init)
  const text = await res.text()
  let body: Record<string, unknown>
  try { body = JSON.parse(text) as Record<string, unknown> } catch { body = { text } }
  return { status: res.status, body, headers: res.headers }
}

/** The first `n` events of the SSE stream, parsed. */
async function streamEvents (url: string, n: number): Promise<Array<Record<string, unknown>>> {
  const controller = new AbortController()
  const res = await fetch(`${url}/api/stream`, { signal: controller.signal })
  const events: Array<Record<string, unknown>> = []
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true })
    let end
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, end)
      buf = buf.slice(end + 2)
      const data = /^event: pipeline\ndata: (.*)$/m.exec(block)
      if (data?.[1] !== undefined) events.push(JSON.parse(data[1]) as Record<string, unknown>)
    }
    if (events.length >= n) break
  }
  controller.abort()
  return events
}

t.test('the endpoints, their JSON shapes, and the stream that moves', async t => {
  const { daemon, url, config } = await running(t)
  t.ok(await waitFor(() => (daemon.process?.counters.rowsWritten ?? 0) > 300, 60_000), 'trades are stored')

  const index = await get(`${url}/api`)
  t.equal(index.status, 200)
  t.same(Object.keys(index.body['endpoints'] as object).map(k => k.split('?')[0]), ['/api/pipeline', '/api/stream', '/api/symbols', '/api/topic', '/api/trades', '/api/candles', '/api/gaps'])

  const page = await fetch(`${url}/`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /<title>finnhubd console<\/title>[\s\S]*\/static\/lightweight-charts\.js/)
  const lib = await fetch(`${url}/static/lightweight-charts.js`)
  t.match(await lib.text(), /TradingView Lightweight Charts/, 'the charting library is served from this machine')
  t.equal((await fetch(`${url}/static/app.js`)).status, 200)

  const snap = await get(`${url}/api/pipeline`)
  t.equal(snap.status, 200)
  t.match(snap.body, {
    roles: ['ingest', 'process'],
    totals: { received: Number, delivered: Number, consumed: Number, written: Number },
    rates: Object,
    latency: { end_to_end: { p50: Number, p99: Number } },
    lag: Number,
    producerQueue: Number,
    subscribedSymbols: 2,
    errors: { malformed_frames: Object, kafka_dropped: { queue_full: 0 }, poison_records: Object },
    reconnects: { stale: 0 },
    connections: { finnhub: { ok: true }, kafka_producer: { ok: true }, kafka_consumer: { ok: true }, cassandra: { ok: true } },
    ready: true
  })

  const events = await streamEvents(url, 3)
  t.equal(events.length, 3)
  const first = events[0] as { at: number, totals: { received: number, written: number } }
  const last = events[2] as { at: number, totals: { received: number, written: number }, rates: { received: number } }
  t.ok(last.at - first.at >= 1500, `one event a second (${last.at - first.at} ms for two)`)
  t.ok(last.totals.received > first.totals.received, 'received grows between events')
  t.ok(last.totals.written > first.totals.written, 'stored grows between events')
  t.ok(last.rates.received > 0, 'and the rate is shown')

  t.same((await get(`${url}/api/symbols`)).body, { symbols: [...SYMBOLS].sort() })

  const topic = await get(`${url}/api/topic?topic=trades&limit=7`)
  t.equal(topic.status, 200)
  t.equal(topic.body['topic'], config.kafka.topic)
  const records = topic.body['records'] as Array<{ partition: number, offset: number, key: string, trade: { s: string, p: number } | null, timestamp: number }>
  t.equal(records.length, 7)
  for (const r of records) {
    t.ok(SYMBOLS.includes(r.key), `key ${r.key} is a symbol sent`)
    t.equal(r.trade?.s, r.key, 'decoded, keyed by its symbol')
    t.ok(Number.isInteger(r.partition) && Number.isInteger(r.offset) && r.timestamp > 0)
  }
  t.ok(records.every((r, i) => i === 0 || (records[i - 1] as { timestamp: number }).timestamp >= r.timestamp), 'newest first')

  const trades = await get(`${url}/api/trades?symbol=AAPL&limit=5`)
  t.equal(trades.status, 200)
  const rows = trades.body['trades'] as Array<{ symbol: string, trade_ts: number, price: number, trade_id: string, process_ts: number }>
  t.equal(rows.length, 5)
  t.ok(rows.every(r => r.symbol === 'AAPL' && r.price > 0 && /^[0-9a-f-]{36}$/.test(r.trade_id) && r.process_ts >= r.trade_ts))
  const candles = await get(`${url}/api/candles?symbol=AAPL&minutes=30`)
  const bars = candles.body['candles'] as Array<{ minute: number, open: number, high: number, low: number, close: number, trade_count: number }>
  t.ok(bars.length >= 1, `${bars.length} candles`)
  t.ok(bars.every(b => b.low <= b.open && b.open <= b.high && b.low <= b.close && b.close <= b.high && b.trade_count > 0), 'OHLC in order')
  t.ok(bars.every((b, i) => i === 0 || (bars[i - 1] as { minute: number }).minute < b.minute), 'oldest first')
  // The longer intervals: the same trades, in periods aligned to UTC.
  for (const [interval, ms] of [['5m', 300_000], ['1h', 3_600_000], ['1d', 86_400_000]] as const) {
    let long: Array<{ minute: number, open: number, high: number, low: number, close: number, trade_count: number }> = []
    for (const until = Date.now() + 10_000; Date.now() < until;) {
      const r = await get(`${url}/api/candles?symbol=AAPL&interval=${interval}`)
      long = r.status === 200 && r.body['interval'] === interval ? r.body['candles'] as typeof long : []
      if (long.length > 0) break
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.ok(long.length > 0, `${long.length} ${interval} candles`)
    t.ok(long.every(b => b.minute % ms === 0 && b.low <= b.open && b.open <= b.high && b.low <= b.close && b.close <= b.high && b.trade_count > 0), `${interval}: aligned to UTC, OHLC in order`)
  }

  // The ledger of gaps: two written as the ingest role writes them, one closed of AAPL, one open of both.
  const store = cassandraClient(config)
  t.teardown(() => store.shutdown())
  const now = Date.now()
  const closed = { id: `${new Date(now - 50 * 60_000).toISOString()}/dropped_queue_full/api.0`, reason: 'dropped_queue_full' as const, start: now - 50 * 60_000, end: now - 49 * 60_000, symbols: ['AAPL'], dropped: 12, openedAt: now - 50 * 60_000 }
  const open = { id: `${new Date(now - 20 * 60_000).toISOString()}/disconnected/api.1`, reason: 'disconnected' as const, start: now - 20 * 60_000, end: null, symbols: [...SYMBOLS].sort(), dropped: null, openedAt: now - 20 * 60_000 }
  for (const g of [closed, open]) await writeGap(store, config.cassandra.keyspace, g, 'api-test', now)
  // The daemon's own ledger may have rows too (a previous run's daemon_down): only these two are looked at.
  const mine = (body: Record<string, unknown>): Array<Record<string, unknown>> => (body['gaps'] as Array<Record<string, unknown>>).filter(g => /\/api\.[01]$/.test(String(g['id'])))
  const gaps = await get(`${url}/api/gaps`)
  t.equal(gaps.status, 200)
  t.match(gaps.body, { symbol: null, from: String, to: String, gaps: Array })
  t.same(mine(gaps.body), [{ ...closed, source: 'api-test', covered: false }, { ...open, source: 'api-test', covered: false }], 'every field, oldest first; the open one with end null; no redundancy group, so nothing covered')
  t.same(mine((await get(`${url}/api/gaps?symbol=BINANCE:BTCUSDT&minutes=120`)).body).map(g => g['reason']), ['disconnected'], 'of a symbol: not the AAPL-only one')
  t.same(mine((await get(`${url}/api/gaps?minutes=30`)).body).map(g => g['reason']), ['disconnected'], 'the last 30 minutes: the open one, which reaches to now')
  const before = await get(`${url}/api/gaps?from=${new Date(now - 3 * 3_600_000).toISOString()}&to=${new Date(now - 2 * 3_600_000).toISOString()}`)
  t.same(mine(before.body), [], 'a range before both')
  t.equal(before.body['from'], new Date(now - 3 * 3_600_000).toISOString(), 'the range is said back')
  const far = await get(`${url}/api/gaps?symbol=AAPL&from=1&to=86400000`)
  t.same([far.status, far.body['gaps']], [200, []], 'a day of 1970: nothing, no error')
})

t.test('poison written straight into the topic shows in the dead-letter view with its reasons', async t => {
  const { daemon, url, config } = await running(t)
  const good = encodeTrades(syntheticTrades(3, ['AAPL'], Date.now()))
  await produceValues(config.kafka.bootstrapServers.join(','), config.kafka.topic, [
    { key: 'AAPL', value: Buffer.from('not avro at all') },
    ...good,
    { key: 'MSFT', value: (good[0] as { value: Buffer }).value.subarray(0, 12) }
  ])
  t.ok(await waitFor(() => (daemon.process?.counters.deadLettered ?? 0) >= 2, 60_000), 'both dead-lettered')
  const dlq = await get(`${url}/api/topic?topic=dlq&limit=10`)
  t.equal(dlq.body['topic'], config.kafka.deadLetterTopic)
  const records = dlq.body['records'] as Array<{ key: string, headers: Record<string, string>, undecodable: { reason: string } | null }>
  t.same(records.map(r => r.headers['finnhubd-reason']).sort(), ['invalid_body', 'unknown_framing'])
  t.ok(records.every(r => r.headers['finnhubd-source-topic'] === config.kafka.topic && /^\d+$/.test(r.headers['finnhubd-source-offset'] ?? '')))
  t.ok(records.every(r => r.undecodable !== null), 'and why they do not decode')
})

t.test('bad parameters are 400s that say what is wrong; unknown paths 404; only GET', async t => {
  const { url } = await running(t)
  const cases: Array<[string, RegExp]> = [
    ['/api/trades', /symbol is required/],
    ['/api/trades?symbol=not%20a%20symbol!', /symbol "not a symbol!" is not a Finnhub symbol/],
    ['/api/trades?symbol=AAPL&limit=0', /limit must be a whole number from 1 to 1000, got "0"/],
    ['/api/trades?symbol=AAPL&limit=ten', /limit must be a whole number from 1 to 1000, got "ten"/],
    ['/api/candles?symbol=AAPL&minutes=0', /minutes must be a whole number from 1 to 2880/],
    ['/api/candles?symbol=AAPL&from=2026-12-01T12:00:00Z&to=2026-12-01T11:00:00Z', /from \(2026-12-01T12:00:00\.000Z\) must be before to/],
    ['/api/candles?symbol=AAPL&from=2026-12-01T12:00:00Z', /to is missing: a range needs both from and to/],
    ['/api/candles?symbol=AAPL&from=2026-11-01T00:00:00Z&to=2026-11-05T00:00:00Z', /the range is 96 h; at most 48 h at a time/],
    ['/api/candles?symbol=AAPL&from=yesterday&to=today', /from "yesterday" is neither an ISO time/],
    ['/api/candles?symbol=AAPL&minutes=5&from=1&to=2', /give either minutes, or from and to, not both/],
    ['/api/trades?symbol=AAPL&sybmol=X', /unknown parameter sybmol; this endpoint takes symbol, limit, minutes, from, to/],
    ['/api/trades?symbol=AAPL&symbol=MSFT', /symbol is given more than once/],
    ['/api/topic?topic=orders', /topic must be one of trades, dlq, got "orders"/],
    ['/api/topic?limit=500', /limit must be a whole number from 1 to 200/],
    ['/api/pipeline?x=1', /unknown parameter x; this endpoint takes none/],
    ['/api/gaps?symbol=', /symbol is required/],
    ['/api/gaps?symbol=not%20a%20symbol!', /symbol "not a symbol!" is not a Finnhub symbol/],
    ['/api/gaps?symbol=%00%0a%E2%80%AE', /is not a Finnhub symbol/],
    ['/api/gaps?symbol=AAPL&symbol=MSFT', /symbol is given more than once/],
    ['/api/gaps?limit=5', /unknown parameter limit; this endpoint takes symbol, minutes, from, to/],
    ['/api/gaps?from=2026-12-01T12:00:00Z&to=2026-12-01T11:00:00Z', /from \(2026-12-01T12:00:00\.000Z\) must be before to/],
    ['/api/gaps?from=2026-12-01T12:00:00Z&to=2026-12-01T12:00:00Z', /must be before to/],
    ['/api/gaps?from=0&to=999999999999999', /the range is \d+ h; at most 72000 h at a time/],
    ['/api/gaps?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', /the range is 227928 h; at most 72000 h at a time/],
    ['/api/gaps?from=-8640000000000001&to=1', /from "-8640000000000001" is neither an ISO time/],
    ['/api/gaps?from=1&to=9999999999999999', /to "9999999999999999" is neither an ISO time/],
    ['/api/gaps?from=%2B275760-09-13T00:00:00.001Z&to=1', /is neither an ISO time/],
    ['/api/gaps?from=1e3&to=2e3', /from "1e3" is neither an ISO time/],
    ['/api/gaps?from=1', /to is missing: a range needs both from and to/],
    ['/api/gaps?minutes=0', /minutes must be a whole number from 1 to 4320000, got "0"/],
    ['/api/gaps?minutes=99999999999999999999', /minutes must be a whole number from 1 to 4320000/],
    ['/api/gaps?minutes=-5', /minutes must be a whole number/],
    ['/api/gaps?minutes=5&from=1&to=2', /give either minutes, or from and to, not both/]
  ]
  for (const [path, message] of cases) {
    const r = await get(`${url}${path}`)
    t.equal(r.status, 400, path)
    t.match(r.body['error'], message, path)
  }
  // A huge symbol: named shortened in the answer, never echoed whole; past the header limit, a 431.
  const long = await get(`${url}/api/gaps?symbol=${'A'.repeat(2_000)}`)
  t.equal(long.status, 400, 'a 2,000-character symbol')
  t.ok(/^symbol "A{80}"… is not a Finnhub symbol/.test(String(long.body['error'])) && String(long.body['error']).length < 200, 'named shortened', { length: String(long.body['error']).length })
  t.equal((await fetch(`${url}/api/gaps?symbol=${'A'.repeat(20_000)}`)).status, 431, 'a 20,000-character one')
  const missing = await get(`${url}/api/orders`)
  t.equal(missing.status, 404)
  t.match(missing.body['error'], /no such endpoint \/api\/orders; GET \/api lists them/)
  t.equal((await fetch(`${url}/api/pipeline`, { method: 'POST' })).status, 405, 'read-only')
  const range = await get(`${url}/api/candles?symbol=AAPL&from=${Date.now() - 3_600_000}&to=${Date.now()}`)
  t.equal(range.status, 200, 'epoch milliseconds are a range too')
})

t.test('an ingest-only daemon says trades and candles need the process role', async t => {
  const { url } = await running(t, ['ingest'])
  const r = await get(`${url}/api/trades?symbol=AAPL`)
  t.equal(r.status, 503)
  t.match(r.body['error'], /trades and candles are read from Cassandra, which this daemon does not use \(its roles: ingest\)/)
  t.match((await get(`${url}/api/pipeline`)).body, { roles: ['ingest'], connections: { finnhub: Object } })
})

t.test('off loopback the console needs its token: 401 without it, a cookie from ?token=, Bearer works', async t => {
  // Off loopback the token must not travel in clear text (native TLS or a TLS proxy), and
  // there must be one (test/config/secrets.test.ts has the token's sources).
  t.throws(() => validateConfig({ http: { host: '0.0.0.0' } }),
    /http\.tls: the console on 0\.0\.0\.0 would send its token in clear text: set http\.tls\.certificateFile and keyFile, or put it behind a TLS reverse proxy and set http\.behindTlsProxy: true/)
  const file = join(t.testdir({ 'c.json': JSON.stringify({ http: { host: '0.0.0.0', behindTlsProxy: true } }) }), 'c.json')
  t.throws(() => loadConfig({ file, env: {} }),
    /http\.console\.token: the web console would be served through a reverse proxy, beyond this machine: set an access token \(tokenFile, FINNHUBD_CONSOLE_TOKEN or the systemd credential console-token\), or turn the console off/)
  t.doesNotThrow(() => validateConfig({ http: { host: '0.0.0.0', console: { enabled: false } } }), 'without the console, metrics alone may be served anywhere')
  t.doesNotThrow(() => validateConfig({ http: { host: '127.0.0.2' } }), '127/8 is loopback')
  const token = 'a-long-console-token-123'
  // A Kafka that is not there: the Topic view must say so, not fail. Plain HTTP here stands
  // for the hop behind a TLS proxy.
  const config = validateConfig({ http: { host: '0.0.0.0', port: 0, behindTlsProxy: true, console: { token } }, kafka: { bootstrapServers: ['127.0.0.1:1'], connectTimeoutMs: 1000 } })
  t.equal(config.http.console.token, token)
  const registry = new Registry()
  const latency = new StageLatency()
  const counters = createIngestCounters()
  const webConsole = new WebConsole({
    config: () => config,
    token: config.http.console.token,
    startedAt: Date.now(),
    roles: ['ingest'],
    ingest: { counters, symbols: () => ['AAPL'] },
    process: null,
    latency,
    readiness: () => ({ ready: false, checks: { finnhub: { ok: false, detail: 'connecting' } } }),
    log: createLogger({ level: 'fatal' })
  })
  const http = await startHttp({ host: '0.0.0.0', port: 0, registry, latency, readiness: () => ({ ready: false, checks: {} }), log: createLogger({ level: 'fatal' }), console: webConsole })
  t.teardown(() => http.close())
  // Bound to every address; asked on loopback (tests never leave this machine).
  const base = http.url.replace('0.0.0.0', '127.0.0.1')
  const none = await get(`${base}/api/pipeline`)
  t.equal(none.status, 401)
  t.match(none.body['error'], /this console needs its access token \(http\.console\.token\)/)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="finnhubd console"')
  t.equal((await fetch(`${base}/`)).status, 401, 'the page too')
  t.equal((await fetch(`${base}/static/app.js`)).status, 401, 'and its files')
  t.equal((await get(`${base}/api/pipeline`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401)
  const bearer = await get(`${base}/api/symbols`, { headers: { authorization: `Bearer ${token}` } })
  t.same(bearer.body, { symbols: ['AAPL'] })
  const login = await fetch(`${base}/?token=${token}`, { redirect: 'manual' })
  t.equal(login.status, 303)
  t.equal(login.headers.get('location'), '/', 'the token leaves the address bar')
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
  t.match(login.headers.get('set-cookie'), /HttpOnly; SameSite=Strict/)
  t.equal((await fetch(`${base}/`, { headers: { cookie } })).status, 200, 'the cookie opens the page')
  t.equal((await fetch(`${base}/api/pipeline`, { headers: { cookie } })).status, 200, 'and the API')
  t.equal((await fetch(`${base}/metrics`)).status, 200, '/metrics stays as it was (Prometheus scrapes it)')
  const keep = await fetch(`${base}/?token=${token}&symbol=AAPL`, { redirect: 'manual' })
  t.equal(keep.headers.get('location'), '/?symbol=AAPL', 'the page\'s other parameters survive the redirect')
  const topic = await get(`${base}/api/topic`, { headers: { cookie } })
  t.equal(topic.status, 503)
  t.match(topic.body['error'], /^Kafka did not answer: cannot reach Kafka at 127\.0\.0\.1:1 .*; the pipeline's own connections show on \/api\/pipeline$/)
})
