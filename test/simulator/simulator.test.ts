// The simulator against the real `ws` client: handshake checks, subscriptions,
// exact counts, faults, record and replay, and the CLI.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { parseFrame } from '../../daemon/core/frame.js'
import type { TradeRecord } from '../../daemon/core/trade-schema.js'
import { mulberry32, regenerate, TradeGenerator, tradeFrameText, type GeneratedTrade } from '../../tools/simulator/generator.js'
import { FinnhubSimulator, loadRecording, replayedTrades, type SimulatorOptions } from '../../tools/simulator/server.js'
import { recordSession } from '../../tools/simulator/record.js'
import { runSimulateCli } from '../../tools/simulator/cli.js'
import { BAD_FRAMES } from '../fixtures/frame-corpus.js'
import { waitFor } from '../fixtures/kafka.js'

t.setTimeout(60_000)

const TOKEN = 'sim-token'
const frameOpts = { keepZeroVolume: true, maxFutureSkewMs: 86_400_000 }

interface Client { ws: WebSocket, trades: TradeRecord[], frames: string[], rejects: number, kinds: string[] }

async function simulator (t: Test, opts: Partial<SimulatorOptions> = {}): Promise<FinnhubSimulator> {
  const sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: 1000, seed: 3, ...opts })
  await sim.start()
  t.teardown(() => sim.close())
  return sim
}

async function connect (t: Test, sim: FinnhubSimulator, symbols: string[], token = TOKEN): Promise<Client> {
  const ws = new WebSocket(`${sim.url}?token=${token}`)
  const client: Client = { ws, trades: [], frames: [], rejects: 0, kinds: [] }
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const text = data.toString('utf8')
    client.frames.push(text)
    const parsed = parseFrame(data, isBinary, Date.now(), frameOpts)
    client.kinds.push(parsed.kind === 'malformed' ? `malformed:${parsed.reason}` : parsed.kind)
    if (parsed.kind === 'trades') {
      client.trades.push(...parsed.trades)
      client.rejects += parsed.rejected.length
    }
  })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  for (const symbol of symbols) ws.send(JSON.stringify({ type: 'subscribe', symbol }))
  t.teardown(() => { ws.terminate() })
  return client
}

async function handshakeStatus (sim: FinnhubSimulator, token: string): Promise<number> {
  const ws = new WebSocket(`${sim.url}?token=${token}`)
  return await new Promise(resolve => {
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.once('open', () => { resolve(101); ws.terminate() })
    ws.once('error', () => {})
  })
}

t.test('the handshake: 401 for a wrong or missing token, 429 on demand, 101 otherwise', async t => {
  const sim = await simulator(t)
  t.equal(await handshakeStatus(sim, 'wrong'), 401)
  t.equal(await handshakeStatus(sim, ''), 401)
  sim.rejectNextHandshakes(429, 1)
  t.equal(await handshakeStatus(sim, TOKEN), 429)
  sim.rejectNextHandshakes(401, 1)
  t.equal(await handshakeStatus(sim, TOKEN), 401, 'a forced 401 even with the right token')
  t.equal(await handshakeStatus(sim, TOKEN), 101)
  const s = sim.stats()
  t.equal(s.unauthorized, 3)
  t.equal(s.rejected429, 1)
  const res = await fetch(sim.url.replace('ws:', 'http:'))
  t.equal(res.status, 426, 'plain HTTP is told to upgrade')
})

t.test('exactly maxTotalTrades trades, only for subscribed symbols, all valid', async t => {
  const sim = await simulator(t, { ratePerSec: 20_000, maxTotalTrades: 3000, keepSent: true, duplicateFillRatio: 0.1, zeroVolumeRatio: 0.05, nullConditionsRatio: 0.3 })
  const client = await connect(t, sim, ['AAPL', 'MSFT'])
  t.ok(await waitFor(() => client.trades.length >= 3000, 20_000))
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(client.trades.length, 3000, 'the client got exactly N')
  t.equal(sim.stats().tradesSent, 3000, 'and the simulator counted exactly N')
  t.equal(client.rejects, 0, 'every generated trade is valid')
  t.same(new Set(client.trades.map(tr => tr.s)), new Set(['AAPL', 'MSFT']))
  t.same(client.trades.map(tr => [tr.s, tr.p, tr.t, tr.v, tr.c]), sim.sent().map(tr => [tr.s, tr.p, tr.t, tr.v, tr.c]), 'sent() is what was sent')
  t.ok(client.trades.some(tr => tr.ordinal > 0), 'identical duplicate fills inside a frame')
  t.ok(client.trades.some(tr => tr.v === 0), 'v = 0 updates')
  t.ok(client.frames.some(f => f.includes('"c":null')), 'c: null')
  t.ok(client.frames.some(f => /"v":[0-9.]+\}/.test(f)), 'c absent')
  t.ok(client.frames.some(f => (f.match(/"s":/g) ?? []).length > 1), 'frames of several trades')
  const s = sim.stats()
  t.equal((s.bySymbol['AAPL'] ?? 0) + (s.bySymbol['MSFT'] ?? 0), 3000)
  t.equal(s.subscribeCount, 2)
})

t.test('the generation log rebuilds every frame sent, exactly; setRate changes the rate open loop from now', async t => {
  const sim = await simulator(t, { ratePerSec: 2000, logGeneration: true, duplicateFillRatio: 0.2, tickMs: 1 })
  const client = await connect(t, sim, ['AAPL', 'MSFT', 'NVDA'])
  t.ok(await waitFor(() => client.trades.length >= 400))
  t.throws(() => { sim.setRate(0) }, /rate must be > 0/)
  const slow = sim.stats().tradesSent
  sim.setRate(200)
  const slowStart = Date.now()
  await new Promise(resolve => setTimeout(resolve, 500))
  const slowRate = (sim.stats().tradesSent - slow) / ((Date.now() - slowStart) / 1000)
  t.ok(slowRate > 100 && slowRate < 300, `about 200 trades/s after setRate(200), got ${Math.round(slowRate)}`)
  sim.setRate(5000)
  const fast = sim.stats().tradesSent
  const fastStart = Date.now()
  await new Promise(resolve => setTimeout(resolve, 500))
  const fastRate = (sim.stats().tradesSent - fast) / ((Date.now() - fastStart) / 1000)
  t.ok(fastRate > 3000 && fastRate < 6500, `about 5000 trades/s after setRate(5000), no catch-up burst; got ${Math.round(fastRate)}`)
  sim.pause()
  const sent = sim.stats().tradesSent
  t.ok(await waitFor(() => client.trades.length >= sent))
  await new Promise(resolve => setTimeout(resolve, 100))
  const frames: GeneratedTrade[][] = []
  regenerate(sim.generatorOptions(), sim.generation(), frame => frames.push(frame))
  t.equal(frames.length, client.frames.filter(f => f.startsWith('{"type":"trade"')).length, 'as many frames as the client got')
  t.same(frames.map(f => tradeFrameText(f)), client.frames.filter(f => f.startsWith('{"type":"trade"')), 'frame for frame, byte for byte')
  t.equal(frames.reduce((n, f) => n + f.length, 0), sent)
  t.ok(frames.some(f => f.length > 1 && f.some((tr, i) => i > 0 && tradeFrameText([tr]) === tradeFrameText([f[i - 1] as GeneratedTrade]))), 'identical fills are rebuilt too')
})

t.test('nothing is sent without subscriptions; unsubscribe stops a symbol; bad messages get error frames', async t => {
  const sim = await simulator(t, { ratePerSec: 2000, maxSymbolsPerConnection: 2 })
  const client = await connect(t, sim, [])
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(client.trades.length, 0, 'no subscription, no trades')
  client.ws.send(JSON.stringify({ type: 'subscribe', symbol: 'AAPL' }))
  client.ws.send(JSON.stringify({ type: 'subscribe', symbol: 'MSFT' }))
  client.ws.send(JSON.stringify({ type: 'subscribe', symbol: 'NVDA' }))
  t.ok(await waitFor(() => client.frames.some(f => f.includes('too many symbols'))), 'a third symbol is refused')
  t.ok(await waitFor(() => client.trades.some(tr => tr.s === 'MSFT')))
  client.ws.send(JSON.stringify({ type: 'unsubscribe', symbol: 'MSFT' }))
  t.ok(await waitFor(() => sim.stats().unsubscribeCount === 1))
  await new Promise(resolve => setTimeout(resolve, 50))
  const msftBefore = client.trades.filter(tr => tr.s === 'MSFT').length
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(client.trades.filter(tr => tr.s === 'MSFT').length, msftBefore, 'no MSFT after unsubscribe')
  t.notOk(client.trades.some(tr => tr.s === 'NVDA'))
  client.ws.send('not json')
  client.ws.send(JSON.stringify({ type: 'subscribe' }))
  client.ws.send(Buffer.from([1, 2]), { binary: true })
  t.ok(await waitFor(() => client.frames.filter(f => f.includes('"type":"error"')).length >= 4), 'each bad message is answered with an error frame')
})

t.test('pings, stalls, pause/resume and dropped connections', async t => {
  const sim = await simulator(t, { ratePerSec: 1000, pingIntervalMs: 100 })
  const client = await connect(t, sim, ['AAPL'])
  t.ok(await waitFor(() => client.kinds.includes('ping')), 'pings arrive')
  sim.stall(600)
  await new Promise(resolve => setTimeout(resolve, 50))
  const during = client.frames.length
  await new Promise(resolve => setTimeout(resolve, 400))
  t.equal(client.frames.length, during, 'nothing at all during a stall')
  t.ok(await waitFor(() => client.frames.length > during + 5), 'frames resume after it')
  sim.pause()
  await new Promise(resolve => setTimeout(resolve, 50))
  const paused = client.trades.length
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(client.trades.length, paused, 'no trades while paused')
  sim.resume()
  sim.resume()
  t.ok(await waitFor(() => client.trades.length > paused))
  const closed = new Promise<number>(resolve => client.ws.once('close', code => resolve(code)))
  sim.dropConnections()
  t.equal(await closed, 1006, 'an abrupt close')
  t.ok(await waitFor(() => sim.stats().connections.current === 0))
  t.equal(sim.stats().connections.total, 1)
})

t.test('error, malformed and raw frames arrive as sent; recent trades can be re-sent', async t => {
  const sim = await simulator(t, { ratePerSec: 500, keepSent: true })
  const client = await connect(t, sim, ['AAPL'])
  t.ok(await waitFor(() => client.trades.length > 10))
  sim.pause()
  await new Promise(resolve => setTimeout(resolve, 50))
  sim.sendError('Invalid symbol BINANCE:FOO')
  sim.sendMalformed(BAD_FRAMES.map(f => f.data))
  sim.sendRaw('{"type":"news"}')
  const last = client.trades.slice(-3)
  sim.resendRecent(3)
  t.ok(await waitFor(() => client.kinds.filter(k => k.startsWith('malformed')).length === BAD_FRAMES.length && client.kinds.includes('other')))
  t.same(client.kinds.filter(k => k.startsWith('malformed')), BAD_FRAMES.map(f => `malformed:${f.reason}`), 'each bad frame arrives in order')
  t.ok(client.kinds.includes('error'))
  t.ok(await waitFor(() => sim.stats().resentTrades === 3))
  const again = client.trades.slice(-3)
  t.same(again.map(tr => [tr.s, tr.p, tr.t, tr.v]), last.map(tr => [tr.s, tr.p, tr.t, tr.v]), 're-sent trades are the same trades, in a later frame')
  const s = sim.stats()
  t.equal(s.errorFramesSent, 1)
  t.equal(s.malformedFramesSent, BAD_FRAMES.length)
  t.equal(sim.sent().filter(tr => tr.resent).length, 3)
})

t.test('a client that does not read is dropped, not buffered without bound', async t => {
  const sim = await simulator(t, { ratePerSec: 50_000, maxBufferedBytes: 64 * 1024, maxTradesPerFrame: 50 })
  const client = await connect(t, sim, ['AAPL'])
  client.ws.pause()
  ;(client.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  t.ok(await waitFor(() => sim.stats().slowConsumerDrops === 1, 20_000), 'dropped as a slow consumer')
})

t.test('record a session, then replay it to a subscriber', async t => {
  const source = await simulator(t, { ratePerSec: 2000, maxTotalTrades: 400, pingIntervalMs: 50 })
  const out = join(t.testdir({}), 'session.jsonl')
  const recorded = await recordSession({ url: source.url, token: TOKEN, symbols: ['AAPL', 'MSFT'], out, durationMs: 800 })
  t.equal(recorded.trades, 400, 'the recording holds every trade')
  t.ok(recorded.frames > 1)
  const lines = loadRecording(out)
  t.equal(lines.length, recorded.frames)
  t.ok(lines.every((l, i) => i === 0 || l.at >= (lines[i - 1]?.at ?? 0)), 'times are ordered')

  const replay = await simulator(t, { replayFile: out, replaySpeed: 4, ratePerSec: 1 })
  const client = await connect(t, replay, ['AAPL'])
  const expected = lines.flatMap(l => replayedTrades(l.frame, new Set(['AAPL'])) ?? [])
  t.ok(expected.length > 0)
  t.ok(await waitFor(() => client.trades.length >= expected.length, 10_000))
  t.same(client.trades.map(tr => [tr.s, tr.p, tr.t, tr.v, tr.c]), expected.map(tr => [tr.s, tr.p, tr.t, tr.v, tr.c]), 'the AAPL trades, as recorded')
  t.ok(client.kinds.includes('ping'), 'non-trade frames pass through')
  t.equal(replay.stats().tradesSent, expected.length)

  const bad = join(t.testdir({ 'bad.jsonl': '{"at":"x"}\n' }), 'bad.jsonl')
  t.throws(() => loadRecording(bad), /bad\.jsonl:1: expected/)
  t.equal(replayedTrades('not json', new Set()), null)
  await t.rejects(recordSession({ url: source.url, token: 'wrong', symbols: ['AAPL'], out, durationMs: 100 }), /HTTP 401/)
})

t.test('the generator is deterministic and its frames are valid Finnhub frames', async t => {
  const opts = { seed: 42, maxTradesPerFrame: 10, duplicateFillRatio: 0.2, zeroVolumeRatio: 0.1, nullConditionsRatio: 0.3 }
  const a = new TradeGenerator(opts).frames(['A', 'B', 'C'], 5000, 1_700_000_000_000)
  const b = new TradeGenerator(opts).frames(['A', 'B', 'C'], 5000, 1_700_000_000_000)
  t.same(a, b, 'same seed, same stream')
  t.equal(a.flat().length, 5000, 'exactly the count asked for')
  t.ok(a.every(f => f.length >= 1 && f.length <= 10), 'frames of 1..N')
  const all = a.flat()
  const zero = all.filter(tr => tr.v === 0).length / all.length
  t.ok(zero > 0.05 && zero < 0.15, `v = 0 near 10% (${zero})`)
  const nulls = all.filter(tr => tr.c === null).length / all.length
  t.ok(nulls > 0.2 && nulls < 0.4, `null/absent c near 30% (${nulls})`)
  for (const frame of a.slice(0, 200)) {
    const parsed = parseFrame(tradeFrameText(frame), false, 1_700_000_000_000, frameOpts)
    t.equal(parsed.kind === 'trades' && parsed.rejected.length === 0 && parsed.trades.length === frame.length, true)
  }
  t.same(new TradeGenerator(opts).frames([], 10, 0), [], 'no symbols, no frames')
  const r = mulberry32(1)
  const draws = Array.from({ length: 1000 }, r)
  t.ok(draws.every(x => x >= 0 && x < 1))
})

t.test('the CLI starts, reports and stops; bad arguments are usage errors', async t => {
  const out: string[] = []
  const controller = new AbortController()
  const running = runSimulateCli(['--port', '0', '--rate', '100', '--token', 'x', '--max-total', '5'], { env: {}, out: l => out.push(l), err: l => out.push(l), signal: controller.signal, statsEveryMs: 20 })
  t.ok(await waitFor(() => out.some(l => /^connections 0 /.test(l))))
  t.match(out[0], /^finnhubd simulate: listening on ws:\/\/127\.0\.0\.1:\d+/)
  controller.abort()
  t.equal(await running, 0)
  t.match(out.at(-1), /stopped after 0 trades/)
  const noop = { env: {}, out: () => {}, err: () => {} }
  await t.rejects(runSimulateCli(['--rate', 'fast'], noop), { code: 'FINNHUBD_ERR_USAGE', message: /--rate takes a number/ })
  await t.rejects(runSimulateCli(['--bogus'], noop), { code: 'FINNHUBD_ERR_USAGE', message: /Unknown option '--bogus'/ })
  await t.rejects(runSimulateCli(['record', '--out', 'x'], noop), { code: 'FINNHUBD_ERR_USAGE', message: /needs --symbols/ })
  await t.rejects(runSimulateCli(['record', '--nope'], noop), { code: 'FINNHUBD_ERR_USAGE' })

  const sim = await simulator(t, { ratePerSec: 1000, maxTotalTrades: 50 })
  const file = join(t.testdir({}), 'rec.jsonl')
  const recOut: string[] = []
  t.equal(await runSimulateCli(['record', '--url', sim.url, '--token', TOKEN, '--symbols', 'AAPL', '--out', file, '--duration-ms', '300'],
    { env: {}, out: l => recOut.push(l), err: () => {} }), 0)
  t.match(recOut[0], /^recorded \d+ frames \(50 trades\) to .*rec\.jsonl$/)
  t.ok(readFileSync(file, 'utf8').length > 0)
})
