// Forced exits end the process within their bound even when a close never returns
// (test/fixtures/forced-exit-child.mjs: a drain whose first close never resolves, a libuv
// pool thread that never returns as rd_kafka_consumer_close can, an 'exit' listener
// that never returns). The compiled daemon, real signals, the real stack: a second
// SIGTERM exits 130, the hard stop timer 3, two signals during the start 130, the
// demo's firstStopSignal 130, each with its log line. The control: process.exit in
// the same spot does not exit at all.
import t from 'tap'
import { fifo, spawnChild } from '../fixtures/forced-exit.js'
import { pipelineConfig } from '../fixtures/pipeline.js'

t.setTimeout(120_000)

const BOUND_MS = 3_000

/** The ingest role's config on the real Kafka; Finnhub on a port nobody listens on (the client keeps retrying). */
async function ingestConfig (drainTimeoutMs: number, kafka: Record<string, unknown> = {}): Promise<object> {
  const config = await pipelineConfig({ shutdown: { drainTimeoutMs }, finnhub: { url: 'ws://127.0.0.1:1', token: 'tok', symbols: ['AAPL'] }, kafka })
  return { ...config, logLevel: 'info' }
}

t.test('control: process.exit with a pool thread that never returns does not exit', async t => {
  const child = spawnChild(t, 'control', fifo(t))
  t.ok(await child.line(/^test: exiting with process\.exit$/, 10_000))
  t.equal(await child.exit(BOUND_MS), null, 'still running: this is what the hard exit is for')
})

t.test('a second SIGTERM while the drain hangs exits 130 at once, with its log line', async t => {
  const child = spawnChild(t, 'daemon', fifo(t), await ingestConfig(60_000))
  t.ok(await child.line(/^test: running$/, 60_000), 'the daemon runs')
  child.signal('SIGTERM')
  t.ok(await child.line(/^stopping$/, 10_000), 'the drain starts (and never ends)')
  const at = Date.now()
  child.signal('SIGTERM')
  const exit = await child.exit(BOUND_MS)
  t.same(exit, { code: 130, signal: null }, `exit 130 within ${BOUND_MS} ms (took ${Date.now() - at} ms)`)
  t.match(child.lines.find(l => /a second SIGTERM while stopping: exiting now without finishing the drain/.test(String(l['msg']))),
    { level: 'error', exitCode: 130, phase: String })
})

t.test('the hard stop timer exits 3 when the drain hangs past the budget', async t => {
  const child = spawnChild(t, 'daemon', fifo(t), await ingestConfig(500))
  t.ok(await child.line(/^test: running$/, 60_000), 'the daemon runs')
  const at = Date.now()
  child.signal('SIGTERM')
  // The budget (500 ms) plus the close grace (5 s), then at once.
  const exit = await child.exit(5_500 + BOUND_MS)
  const took = Date.now() - at
  t.same(exit, { code: 3, signal: null }, `exit 3 (took ${took} ms)`)
  t.ok(took >= 5_000, 'not before the budget and the close grace')
  t.match(child.lines.find(l => /the stop budget \(shutdown\.drainTimeoutMs = 500 ms\) ran out: exiting now/.test(String(l['msg']))), { exitCode: 3 })
})

t.test('two signals while the daemon is still starting exit 130 at once', async t => {
  // Nothing listens on port 1: the Kafka connection never comes, the start never ends.
  const child = spawnChild(t, 'starting', fifo(t), await ingestConfig(60_000, { bootstrapServers: ['127.0.0.1:1'] }))
  t.ok(await child.line(/^test: starting$/, 30_000))
  child.signal('SIGTERM')
  await new Promise(resolve => setTimeout(resolve, 200))
  child.signal('SIGINT')
  t.same(await child.exit(BOUND_MS), { code: 130, signal: null })
  t.match(child.lines.find(l => /a second SIGINT while stopping: exiting before the daemon finished starting/.test(String(l['msg']))), { exitCode: 130 })
})

t.test("the demo's firstStopSignal (daemon/signals.ts): the second signal exits 130 at once", async t => {
  const child = spawnChild(t, 'signals', fifo(t))
  t.ok(await child.line(/^test: running$/, 10_000))
  child.signal('SIGINT')
  t.ok(await child.line(/^test: draining after SIGINT$/, 5_000), 'the first signal starts the drain')
  child.signal('SIGTERM')
  t.same(await child.exit(BOUND_MS), { code: 130, signal: null })
  t.match(child.lines.find(l => /a second signal while stopping: exiting now/.test(String(l['msg']))), { signal: 'SIGTERM' })
})

t.test('without the addon: reallyExit skips a stuck exit listener; a stuck pool thread yields to the next signal', async t => {
  const quick = spawnChild(t, 'fallback-listener', fifo(t))
  t.same(await quick.exit(BOUND_MS), { code: 42, signal: null }, 'the exit listener is skipped')
  t.ok(quick.lines.some(l => l['msg'] === 'test: exiting without the addon'))

  const stuck = spawnChild(t, 'fallback', fifo(t))
  t.ok(await stuck.line(/^test: running$/, 10_000))
  stuck.signal('SIGTERM')
  t.ok(await stuck.line(/^test: exiting without the addon$/, 5_000))
  t.equal(await stuck.exit(1_000), null, 'held by the pool thread, as documented')
  stuck.signal('SIGTERM')
  t.same(await stuck.exit(BOUND_MS), { code: null, signal: 'SIGTERM' }, 'the signal listeners are gone: the next SIGTERM ends it')
})
