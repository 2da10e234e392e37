// The bounds on what the console's readers can make the daemon do, with no stack
// (fakes for Kafka and Cassandra): Cassandra reads at most maxConcurrentReads at once
// and maxQueuedReads waiting, then a 503 with Retry-After counted as busy; event
// streams at most maxEventStreams; a Topic view answers at most topicReadMaxBytes of
// records, the newest, saying truncated. The gate and the byte fit on their own.
import t from 'tap'
import { ClientGone, ReadGate } from '../../daemon/console/read-gate.js'
import { fit, recordBytes } from '../../daemon/console/topic-budget.js'
import { ApiError } from '../../daemon/console/params.js'
import type { ShownRecord } from '../../daemon/kafka/topic-reader.js'
import { waitUntil } from '../../daemon/wait.js'
import { localServer, metricValue } from '../fixtures/hostile-http.js'

t.setTimeout(60_000)

const BUSY = ['finnhubd_http_requests_rejected_total', '{reason="busy"}'] as const

t.test('Cassandra reads: at most maxConcurrentReads at once, maxQueuedReads waiting, then 503 Retry-After: 1', async t => {
  let inFlight = 0
  let most = 0
  const releases: Array<() => void> = []
  const s = await localServer(t, {
    http: { console: { maxConcurrentReads: 2, maxQueuedReads: 1 } },
    cassandraRead: async () => {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise<void>(resolve => releases.push(resolve))
      inFlight--
    }
  })
  const read = (path: string): Promise<Response> => fetch(`${s.http.url}${path}?symbol=AAPL&minutes=1`)
  const first = [read('/api/trades'), read('/api/candles'), read('/api/trades')]
  await waitUntil(() => releases.length === 2, Date.now() + 5_000)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(releases.length, 2, 'two run, the third waits')
  const refused = await read('/api/candles')
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '1')
  t.match(((await refused.json()) as { error: string }).error, /too many Cassandra reads at once \(2 running, 1 waiting\); retry in a second \(http\.console\.maxConcurrentReads, maxQueuedReads\)/)
  t.equal(await metricValue(s.registry, ...BUSY), 1, 'counted as busy')
  while ((await Promise.race([Promise.all(first).then(() => true), new Promise(resolve => setTimeout(() => resolve(false), 50))])) === false) {
    releases.splice(0).forEach(r => r())
  }
  t.same((await Promise.all(first)).map(r => r.status), [200, 200, 200], 'the queued one ran when a turn was free')
  t.equal(most, 2, 'never more than two at once')
})

t.test('over HTTP: a request whose client hangs up while queued never reaches Cassandra', async t => {
  let reads = 0
  const releases: Array<() => void> = []
  const s = await localServer(t, {
    http: { console: { maxConcurrentReads: 1, maxQueuedReads: 2 } },
    cassandraRead: async () => {
      reads++
      await new Promise<void>(resolve => releases.push(resolve))
    }
  })
  const url = `${s.http.url}/api/trades?symbol=AAPL&minutes=1`
  const running = fetch(url)
  await waitUntil(() => releases.length === 1, Date.now() + 5_000)
  const hangUp = new AbortController()
  const leaving = fetch(url, { signal: hangUp.signal }).catch((err: unknown) => err)
  const staying = fetch(url)
  await new Promise(resolve => setTimeout(resolve, 200))
  hangUp.abort()
  t.match(await leaving, { name: 'AbortError' }, 'the client hung up')
  await new Promise(resolve => setTimeout(resolve, 200))
  const both = Promise.all([running, staying])
  while ((await Promise.race([both.then(() => true), new Promise(resolve => setTimeout(() => resolve(false), 20))])) === false) {
    releases.splice(0).forEach(r => r())
  }
  t.same((await both).map(r => r.status), [200, 200], 'the others answered')
  t.equal(reads, 2, 'two reads ran: the one whose client left did not')
  t.equal(await metricValue(s.registry, ...BUSY), 0, 'and it is not counted as busy')
})

t.test('the gate on its own: turns handed over in order, a failed read frees its turn, no queue means refuse at once', async t => {
  const gate = new ReadGate({ maxConcurrent: 1, maxQueued: 2, what: 'reads', setting: 's' })
  const order: number[] = []
  let open!: () => void
  const blocker = new Promise<void>(resolve => { open = resolve })
  const runs = [gate.run(async () => { await blocker; order.push(0) }), gate.run(async () => { order.push(1); throw new Error('x') }), gate.run(async () => { order.push(2) })]
  await new Promise(resolve => setImmediate(resolve))
  t.equal(gate.running, 1)
  t.equal(gate.queued, 2)
  const busy = await gate.run(async () => {}).catch((err: unknown) => err)
  t.ok(busy instanceof ApiError && busy.status === 503 && busy.headers['retry-after'] === '1', 'past the queue: a 503 with Retry-After')
  open()
  const settled = await Promise.allSettled(runs)
  t.same(settled.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.same(order, [0, 1, 2])
  t.equal(gate.running, 0)
  t.equal(gate.refused, 1)
  const none = new ReadGate({ maxConcurrent: 1, maxQueued: 0, what: 'reads', setting: 's' })
  const hold = none.run(async () => await new Promise(resolve => setTimeout(resolve, 50)))
  t.equal(((await none.run(async () => {}).catch((err: unknown) => err)) as ApiError).status, 503, 'no queue: refused at once')
  await hold
  t.throws(() => new ReadGate({ maxConcurrent: 0, maxQueued: 0, what: '', setting: '' }), RangeError)
})

t.test('a queued read whose client went away leaves the queue and never runs; the turns go on in order', async t => {
  const gate = new ReadGate({ maxConcurrent: 1, maxQueued: 3, what: 'reads', setting: 's' })
  const ran: string[] = []
  let open!: () => void
  const blocker = new Promise<void>(resolve => { open = resolve })
  const first = gate.run(async () => { await blocker; ran.push('first') })
  const leaving = new AbortController()
  const gone = gate.run(async () => { ran.push('gone') }, leaving.signal)
  const third = gate.run(async () => { ran.push('third') }, new AbortController().signal)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(gate.queued, 2)
  leaving.abort()
  await t.rejects(gone, ClientGone, 'rejected with ClientGone')
  t.equal(gate.queued, 1, 'out of the queue at once')
  open()
  await Promise.all([first, third])
  t.same(ran, ['first', 'third'], 'it never ran; the next one did')
  t.equal(gate.running, 0, 'every turn handed back')
  t.equal(gate.refused, 0, 'not counted as refused')
  const already = new AbortController()
  already.abort()
  await t.rejects(gate.run(async () => { ran.push('late') }, already.signal), ClientGone, 'a client already gone does not run either')
  t.same(ran, ['first', 'third'])
  // Aborting after the turn came changes nothing: the read runs to its end.
  const late = new AbortController()
  const runs = gate.run(async () => { late.abort(); await new Promise(resolve => setImmediate(resolve)); ran.push('ran') }, late.signal)
  await runs
  t.same(ran, ['first', 'third', 'ran'])
  t.equal(gate.running, 0)
})

t.test('event streams: at most maxEventStreams at once, then 503 with Retry-After', async t => {
  const s = await localServer(t, { http: { console: { maxEventStreams: 2 } } })
  const open = async (): Promise<{ res: Response, stop: AbortController }> => {
    const stop = new AbortController()
    return { res: await fetch(`${s.http.url}/api/stream`, { signal: stop.signal }), stop }
  }
  const a = await open()
  const b = await open()
  t.same([a.res.status, b.res.status], [200, 200])
  const c = await open()
  t.equal(c.res.status, 503)
  t.ok(Number(c.res.headers.get('retry-after')) >= 1)
  t.match(((await c.res.json()) as { error: string }).error, /http\.console\.maxEventStreams/)
  t.equal(s.console.streams, 2)
  t.equal(await metricValue(s.registry, ...BUSY), 1)
  a.stop.abort()
  await waitUntil(() => s.console.streams === 1, Date.now() + 5_000)
  const d = await open()
  t.equal(d.res.status, 200, 'a closed page frees its place')
  b.stop.abort()
  d.stop.abort()
})

t.test('the Topic view: at most topicReadMaxBytes of records, newest first, truncated when some were left out', async t => {
  const big = await localServer(t, { http: { console: { topicReadMaxBytes: 1_000 } } })
  big.kafka.write('finnhub.trades', 0, 10, o => Buffer.alloc(300, o))
  const res = await fetch(`${big.http.url}/api/topic?limit=10`)
  t.equal(res.status, 200)
  const view = await res.json() as { records: Array<{ offset: number, size: number, undecodable: { detail: string } | null }>, truncated: boolean }
  t.equal(view.truncated, true)
  t.same(view.records.map(r => r.offset), [9, 8, 7], 'the newest three of 300 bytes (and a 4-byte key) fit in 1,000')

  const all = await localServer(t)
  all.kafka.write('finnhub.trades', 0, 10, o => Buffer.alloc(300, o))
  const whole = await (await fetch(`${all.http.url}/api/topic?limit=10`)).json() as { records: unknown[], truncated: boolean }
  t.equal(whole.truncated, false)
  t.equal(whole.records.length, 10)
})

t.test('the fit on its own', async t => {
  const rec = (offset: number, size: number): ShownRecord => ({
    topic: 't', partition: 0, offset, timestamp: offset, key: 'k', size, trade: null, undecodable: { reason: 'empty', detail: '' }, headers: { h: 'vv' }
  })
  t.equal(recordBytes(rec(0, 10)), 10 + 1 + 3, 'value, key and headers')
  t.same(fit([rec(3, 10), rec(2, 10), rec(1, 10)], 100), { records: [rec(3, 10), rec(2, 10), rec(1, 10)], truncated: false })
  t.same(fit([rec(3, 10), rec(2, 10), rec(1, 10)], 30).records.map(r => r.offset), [3, 2])
  t.same(fit([rec(3, 10), rec(2, 500), rec(1, 10)], 100), { records: [rec(3, 10)], truncated: true }, 'stops at the first that does not fit: the newest, without gaps')
  t.same(fit([rec(3, 500)], 100), { records: [], truncated: true })
})
