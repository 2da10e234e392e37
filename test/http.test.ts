// The daemon's HTTP endpoint on its own: routes, status codes, content types.
import t from 'tap'
import { createServer } from 'node:net'
import { Counter, Registry } from 'prom-client'
import { startHttp, type Readiness } from '../daemon/http.js'
import { createLogger } from '../daemon/log.js'
import { latencyBetween, StageLatency, STAGES } from '../daemon/metrics/latency.js'

t.test('/healthz, /readyz (200 and 503), /metrics, 404, 405, HEAD', async t => {
  const registry = new Registry()
  new Counter({ name: 'finnhubd_test_total', help: 'a test counter', registers: [registry] }).inc(3)
  const latency = new StageLatency()
  latency.record('end_to_end', 12, 99)
  latency.record('end_to_end', 80)
  let readiness: Readiness = { ready: true, checks: { daemon: { ok: true, detail: 'running' } } }
  const lines: string[] = []
  const http = await startHttp({ host: '127.0.0.1', port: 0, registry, latency, readiness: () => readiness, log: createLogger({ level: 'info', write: l => lines.push(l) }) })
  t.teardown(() => http.close())
  t.match(http.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(lines.join(), /serving HTTP/)

  const health = await fetch(`${http.url}/healthz`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'alive', uptimeSeconds: Number, eventLoopDelayP99Ms: Number })

  const ready = await fetch(`${http.url}/readyz`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready', checks: { daemon: { ok: true, detail: 'running' } } })
  readiness = { ready: false, checks: { daemon: { ok: true, detail: 'running' }, cassandra: { ok: false, detail: 'last request failed' } } }
  const notReady = await fetch(`${http.url}/readyz`)
  t.equal(notReady.status, 503)
  t.match(await notReady.json(), { status: 'not ready', checks: { cassandra: { ok: false } } })

  const metrics = await fetch(`${http.url}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.match(await metrics.text(), /^finnhubd_test_total 3$/m)

  const before = latency.snapshot()
  latency.record('end_to_end', 300, 10)
  const lat = await fetch(`${http.url}/latency`)
  t.equal(lat.status, 200)
  const body = await lat.json() as { unit: string, stages: Record<string, { count: number, ms: { p50: number, max: number } | null, histogram: string }> }
  t.equal(body.unit, 'microseconds')
  t.same(Object.keys(body.stages), [...STAGES], 'every stage is listed')
  t.equal(body.stages['frame_to_ack']?.ms, null, 'a stage without data has no percentiles')
  const e2e = body.stages['end_to_end']
  t.equal(e2e?.count, 110)
  t.ok(Math.abs((e2e?.ms?.p50 ?? 0) - 12) < 0.1, 'p50 of all since the start')
  t.ok(Math.abs((e2e?.ms?.max ?? 0) - 300) < 0.5, 'max')
  // The served histogram minus an earlier snapshot is exactly what came in between.
  const interval = latencyBetween(before.end_to_end, { count: e2e?.count ?? 0, histogram: e2e?.histogram ?? '' })
  t.equal(interval.count, 10)
  t.ok(Math.abs(interval.p50 - 300) < 0.5 && Math.abs(interval.max - 300) < 0.5, 'only the 10 recorded after the snapshot')

  const missing = await fetch(`${http.url}/nope`)
  t.equal(missing.status, 404)
  t.match(await missing.text(), /try \/healthz, \/readyz, \/metrics or \/latency/)
  const post = await fetch(`${http.url}/metrics`, { method: 'POST' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  const head = await fetch(`${http.url}/healthz`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(await head.text(), '')
})

t.test('a failing handler answers 500 and is logged', async t => {
  const registry = new Registry()
  const lines: string[] = []
  const http = await startHttp({ host: '127.0.0.1', port: 0, registry, latency: new StageLatency(), readiness: () => { throw new Error('boom') }, log: createLogger({ level: 'info', write: l => lines.push(l) }) })
  t.teardown(() => http.close())
  const res = await fetch(`${http.url}/readyz`)
  t.equal(res.status, 500)
  t.match(lines.join(), /an HTTP request failed/)
})

t.test('a taken port is a clear error naming http.port', async t => {
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>(resolve => blocker.close(() => resolve())))
  const port = (blocker.address() as { port: number }).port
  await t.rejects(startHttp({ host: '127.0.0.1', port, registry: new Registry(), latency: new StageLatency(), readiness: () => ({ ready: true, checks: {} }), log: createLogger({ level: 'fatal' }) }),
    { code: 'FINNHUBD_ERR_HTTP', message: new RegExp(`cannot serve HTTP on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\): the port is taken; set http\\.port`) })
})
