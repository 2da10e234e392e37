// The console's Topic view under concurrent requests, against the daemon on the real
// stack with the simulator sending: ten requests for one view are answered by one
// read (or two, if one finished just before) in about one read's time, not ten reads'
// in a queue; ten distinct views at once get a 503 with Retry-After past the bound,
// counted in finnhubd_http_requests_rejected_total{reason="busy"}.
import t from 'tap'
import { TOPIC_VIEW_MAX_PENDING, TOPIC_VIEW_TTL_MS } from '../../daemon/console/console.js'
import { startDaemon } from '../../daemon/daemon.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'
import { pipelineConfig } from '../fixtures/pipeline.js'

t.setTimeout(240_000)

interface Answer { status: number, body: Record<string, unknown>, retryAfter: string | null, ms: number }

async function get (url: string): Promise<Answer> {
  const started = performance.now()
  const res = await fetch(url)
  const body = await res.json() as Record<string, unknown>
  return { status: res.status, body, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started }
}

async function metric (url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

t.test('concurrent requests share one read; past the bound, 503 with Retry-After', async t => {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 300, seed: 16 })
  await sim.start()
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: ['AAPL', 'BINANCE:BTCUSDT'] }, http: { port: 0 } })
  let stop!: (why: string) => void
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], http: true, log: createLogger({ level: 'error' }), stopSignal: new Promise(resolve => { stop = resolve }) })
  t.teardown(async () => {
    stop('test over')
    await daemon.stopped
    await sim.close()
  })
  const url = daemon.http?.url ?? ''
  t.ok(await waitFor(() => (daemon.ingest?.counters.delivered ?? 0) > 300, 60_000), 'trades are in the topic')
  const view = `${url}/api/topic?topic=trades&limit=50`
  const reads = 'finnhubd_console_topic_reads_total'
  const busy = 'finnhubd_http_requests_rejected_total{reason="busy"}'

  // One read at a time, its time measured here: the first also connects the reader.
  const warm = await get(view)
  t.equal(warm.status, 200, JSON.stringify(warm.body).slice(0, 300))
  const single: number[] = []
  for (let i = 0; i < 3; i++) {
    await pause(TOPIC_VIEW_TTL_MS + 100)
    const before = await metric(url, reads)
    const one = await get(view)
    t.equal(one.status, 200)
    t.equal((one.body['records'] as unknown[]).length, 50)
    t.equal(await metric(url, reads) - before, 1, 'a request past the TTL reads')
    single.push(one.ms)
  }
  const oneRead = median(single)

  await pause(TOPIC_VIEW_TTL_MS + 100)
  const readsBefore = await metric(url, reads)
  const started = performance.now()
  const ten = await Promise.all(Array.from({ length: 10 }, async () => await get(view)))
  const wall = performance.now() - started
  t.ok(ten.every(a => a.status === 200), 'all ten answered')
  const readAts = new Set(ten.map(a => a.body['readAt']))
  const readsUsed = await metric(url, reads) - readsBefore
  t.ok(readsUsed >= 1 && readsUsed <= 2, `ten requests, ${readsUsed} read(s)`)
  t.ok(readAts.size <= readsUsed, `${readAts.size} distinct readAt`)
  t.ok(ten.every(a => (a.body['records'] as unknown[]).length === 50))
  // Queued one behind another they would take about ten reads; shared, about one.
  t.ok(wall < oneRead * 3, `ten at once took ${Math.round(wall)} ms, one read ${Math.round(oneRead)} ms`)

  // Ten distinct views at once: the first TOPIC_VIEW_MAX_PENDING are read, the rest refused.
  await pause(TOPIC_VIEW_TTL_MS + 100)
  const distinctBefore = await metric(url, reads)
  const busyBefore = await metric(url, busy)
  const views = await Promise.all(Array.from({ length: 10 }, async (_, i) => await get(`${url}/api/topic?topic=${i % 2 === 0 ? 'trades' : 'dlq'}&limit=${i + 1}`)))
  const ok = views.filter(a => a.status === 200)
  const refused = views.filter(a => a.status === 503)
  t.equal(ok.length + refused.length, 10, 'each is answered or refused')
  t.ok(ok.length >= TOPIC_VIEW_MAX_PENDING, `${ok.length} read`)
  t.ok(refused.length >= 1, `${refused.length} refused`)
  for (const r of refused) {
    t.match(r.retryAfter, /^[1-9]\d*$/, 'Retry-After in whole seconds')
    t.match(r.body['error'], new RegExp(`^the topic view is busy: ${TOPIC_VIEW_MAX_PENDING} other reads are under way \\(at most ${TOPIC_VIEW_MAX_PENDING} at a time\\); retry in ${r.retryAfter ?? ''} s`))
  }
  t.equal(await metric(url, reads) - distinctBefore, ok.length, 'one read per view answered')
  t.equal(await metric(url, busy) - busyBefore, refused.length, 'every refusal counted')

  const first = refused[0]
  if (first !== undefined) {
    await pause(Number(first.retryAfter) * 1000)
    const index = views.indexOf(first)
    t.equal((await get(`${url}/api/topic?topic=${index % 2 === 0 ? 'trades' : 'dlq'}&limit=${index + 1}`)).status, 200, 'after Retry-After it is read')
  }
})
