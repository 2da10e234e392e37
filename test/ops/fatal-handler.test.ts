// The last-resort handler for an error nothing caught (daemon/daemon.ts): as a unit
// with its log, flush and exit injected (one fatal line with name, message, code and
// stack; a bounded flush; exit 70 whatever the flush does; a second error exits at
// once), the registry of live producers it flushes by default, and in child
// processes: the real handler on a throw and on a rejection, and on the compiled
// daemon's ingest role, whose producer it flushes before it exits 70 — each time
// with a pool thread and an 'exit' listener that never return (the hard exit).
import t from 'tap'
import { EventEmitter } from 'node:events'
import { EXIT_FATAL, fatalHandler, flushLiveProducers, installFatalHandler, startDaemon } from '../../daemon/daemon.js'
import { createLogger } from '../../daemon/log.js'
import { fifo, spawnChild } from '../fixtures/forced-exit.js'
import { pipelineConfig } from '../fixtures/pipeline.js'

t.setTimeout(120_000)

type Line = Record<string, unknown>

function capture (): { lines: Line[], log: ReturnType<typeof createLogger> } {
  const lines: Line[] = []
  return { lines, log: createLogger({ level: 'info', write: l => lines.push(JSON.parse(l) as Line) }) }
}

function exits (): { codes: number[], next: Promise<number>, exit: (code: number) => void } {
  const codes: number[] = []
  let settle!: (code: number) => void
  const next = new Promise<number>(resolve => { settle = resolve })
  return { codes, next, exit: code => { codes.push(code); settle(code) } }
}

t.beforeEach(() => { process.exitCode = undefined })
t.afterEach(() => { process.exitCode = undefined })

t.test('one fatal line with the error, a flush within the bound, then exit 70', async t => {
  const { lines, log } = capture()
  const e = exits()
  const flushes: number[] = []
  const handle = fatalHandler({ log, exit: e.exit, flushMs: 300, flush: async ms => { flushes.push(ms) } })
  const err = Object.assign(new RangeError('offset out of range'), { code: 'E_RANGE' })
  handle(err, 'uncaughtException')
  t.equal(await e.next, EXIT_FATAL)
  t.equal(EXIT_FATAL, 70)
  t.same(flushes, [300], 'the flush gets the bound')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], {
    level: 'fatal',
    msg: /^an uncaught exception: .*flushing the Kafka producer \(up to 300 ms\) and exiting/,
    origin: 'uncaughtException',
    errName: 'RangeError',
    errMessage: 'offset out of range',
    errCode: 'E_RANGE',
    stack: /RangeError: offset out of range\n\s+at /,
    exitCode: 70
  })
  t.equal(process.exitCode, 70, 'the exit code is set should the loop end first')
})

t.test('a flush that never settles, or fails, still ends in exit 70 within the bound', async t => {
  const hung = exits()
  const started = Date.now()
  fatalHandler({ log: capture().log, exit: hung.exit, flushMs: 200, flush: async () => await new Promise(() => {}) })(new Error('x'), 'uncaughtException')
  t.equal(await hung.next, 70)
  const took = Date.now() - started
  t.ok(took >= 200 && took < 2_000, `after the bound (${took} ms)`)

  const failed = exits()
  fatalHandler({ log: capture().log, exit: failed.exit, flushMs: 5_000, flush: async () => { throw new Error('broker down') } })(new Error('x'), 'uncaughtException')
  t.equal(await failed.next, 70)
  t.same(failed.codes, [70], 'once')
})

t.test('a rejection with a non-Error, and a second error while flushing', async t => {
  const { lines, log } = capture()
  const e = exits()
  let release!: () => void
  const handle = fatalHandler({ log, exit: e.exit, flushMs: 5_000, flush: async () => await new Promise<void>(resolve => { release = resolve }) })
  handle('just a string', 'unhandledRejection')
  t.match(lines[0], { level: 'fatal', msg: /^an unhandled promise rejection: /, origin: 'unhandledRejection', errName: 'string', errMessage: 'just a string' })
  t.notOk('errCode' in (lines[0] ?? {}), 'no code to report')
  t.same(e.codes, [], 'waits for the flush')
  handle(new Error('while flushing'), 'uncaughtException')
  t.same(e.codes, [70], 'a second error exits at once')
  t.match(lines[1], { level: 'fatal', msg: 'another uncaught error while exiting: exiting now', errMessage: 'while flushing' })
  release()
  await new Promise(resolve => setTimeout(resolve, 20))
  t.same(e.codes, [70], 'and the flush ending later does not exit twice')
})

t.test('installFatalHandler listens for both events and can be removed', async t => {
  const source = new EventEmitter()
  const e = exits()
  const { lines, log } = capture()
  const uninstall = installFatalHandler({ log, exit: e.exit, flush: async () => {}, source })
  t.equal(source.listenerCount('uncaughtException'), 1)
  t.equal(source.listenerCount('unhandledRejection'), 1)
  source.emit('unhandledRejection', new Error('nobody awaited me'), Promise.resolve())
  t.equal(await e.next, 70)
  t.match(lines[0], { origin: 'unhandledRejection', errMessage: 'nobody awaited me' })
  uninstall()
  t.equal(source.listenerCount('uncaughtException'), 0)
  t.equal(source.listenerCount('unhandledRejection'), 0)
})

t.test("the default flush reaches a running ingest role's producer, and not once it stopped", async t => {
  const config = await pipelineConfig({ finnhub: { url: 'ws://127.0.0.1:1', token: 'tok', symbols: ['AAPL'] } })
  const daemon = await startDaemon({ config, roles: ['ingest'], log: createLogger({ level: 'fatal' }) })
  const producer = daemon.ingest?.producer
  if (producer === undefined) throw new Error('no ingest role')
  const flush = producer.flush.bind(producer)
  const asked: number[] = []
  producer.flush = async ms => { asked.push(ms); await flush(ms) }
  await flushLiveProducers(1_000)
  t.same(asked, [1_000], 'flushed through the registry')
  t.equal(await daemon.stop('test'), 0)
  asked.length = 0
  await flushLiveProducers(1_000)
  t.same(asked, [], 'a stopped daemon is no longer flushed')
})

t.test('the real handler in a child: a throw and a rejection exit 70 at once, with the fatal line', async t => {
  for (const [mode, origin] of [['fatal-throw', 'uncaughtException'], ['fatal-reject', 'unhandledRejection']] as const) {
    const child = spawnChild(t, mode, fifo(t))
    t.ok(await child.line(/^test: running$/, 10_000))
    t.same(await child.exit(3_000), { code: 70, signal: null }, `${mode}: exit 70`)
    t.match(child.lines.find(l => l['level'] === 'fatal'), { origin, errName: 'Error', errMessage: 'boom', errCode: 'E_BOOM', stack: /Error: boom/, exitCode: 70 })
    t.same(child.stderr, [], `${mode}: no raw stack trace on stderr`)
  }
})

t.test("the compiled daemon's ingest role: the handler flushes the producer, then exits 70", async t => {
  const config = await pipelineConfig({ finnhub: { url: 'ws://127.0.0.1:1', token: 'tok', symbols: ['AAPL'] } })
  const child = spawnChild(t, 'fatal-daemon', fifo(t), { ...config, logLevel: 'info' })
  t.ok(await child.line(/^test: running$/, 60_000), 'the ingest role runs')
  t.same(await child.exit(5_000), { code: 70, signal: null })
  const msgs = child.lines.map(l => String(l['msg']))
  const fatalAt = child.lines.findIndex(l => l['level'] === 'fatal')
  t.match(child.lines[fatalAt], { errName: 'TypeError', errMessage: /a stand-in bug/ })
  t.ok(fatalAt >= 0 && fatalAt < msgs.indexOf('test: flush 1000'), 'the fatal line first, then the flush with its bound')
  t.ok(msgs.includes('test: flushed'), 'the flush finished before the exit')
})
