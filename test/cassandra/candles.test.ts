// The candle book's CQL side (daemon/cassandra/candles.ts) against an in-process fake
// of the driver's client: one flush tick writes every due minute as a few batches,
// ticks at most once per flushIntervalMs, none while nothing is dirty, per-statement
// write timestamps, refusals isolated and retried with a log line and a count, and
// the executor closing mid-flush. (The real-stack test is candles-stack.test.ts.)
import cassandra from 'cassandra-driver'
import t from 'tap'
import { CandleBook } from '../../daemon/cassandra/candles.js'
import { CassandraExecutor } from '../../daemon/cassandra/writer.js'
import { validateConfig } from '../../daemon/config/load.js'
import { aggregateCandle, MINUTE_MS } from '../../daemon/core/candle.js'
import { createLogger } from '../../daemon/log.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { input, partialsOf, trade, type Trade } from '../fixtures/candle-trades.js'

const { ResponseError, NoHostAvailableError } = cassandra.errors
const codes = cassandra.types.responseErrorCodes
const M0 = Date.UTC(2024, 4, 1, 12, 30)

// The book's tick never keeps the process alive (see the test below), and nothing else here does.
const keepAlive = setInterval(() => {}, 1000)
t.teardown(() => { clearInterval(keepAlive) })

interface Request { at: number, kind: 'execute' | 'batch', queries: Array<{ query: string, params: unknown[] }>, options: Record<string, unknown> }

/** A client whose writes go through `answer` and whose rebuild reads return `stored` (paged by fetchSize). */
function fakeClient (answer: (req: Request) => Error | null = () => null, stored: Trade[] = []): { client: cassandra.Client, requests: Request[], written: Request[], reads: number } {
  const requests: Request[] = []
  const written: Request[] = []
  const out = { client: null as unknown as cassandra.Client, requests, written, reads: 0 }
  const write = async (req: Request): Promise<void> => {
    requests.push(req)
    await new Promise(resolve => setImmediate(resolve))
    const err = answer(req)
    if (err !== null) throw err
    written.push(req)
  }
  out.client = {
    execute: async (query: string, params: unknown[], options: Record<string, unknown>) => {
      if (query.startsWith('SELECT')) {
        out.reads++
        const [symbol, , from, to] = params as [string, Buffer, number, number]
        const rows = stored.filter(tr => tr.symbol === symbol && tr.ts >= from && tr.ts < to)
          .map(tr => ({ trade_ts: new Date(tr.ts), trade_id: { toString: () => tr.id }, price: tr.price, volume: tr.volume }))
        const size = options['fetchSize'] as number
        const start = Number(options['pageState'] ?? 0)
        return { rows: rows.slice(start, start + size), pageState: start + size < rows.length ? String(start + size) : null }
      }
      await write({ at: Date.now(), kind: 'execute', queries: [{ query, params }], options })
      return {}
    },
    batch: async (queries: Array<{ query: string, params: unknown[] }>, options: Record<string, unknown>) => {
      await write({ at: Date.now(), kind: 'batch', queries, options })
      return {}
    }
  } as unknown as cassandra.Client
  return out
}

// One-minute candles only: the longer periods are the real-stack test's (candles-stack.test.ts) and the state machine's (core/candle-book.test.ts).
function bookWith (client: cassandra.Client, overrides: { flushIntervalMs?: number, batchMaxBytes?: number, idleEvictMs?: number, rebuildFetchSize?: number, retryInitialDelayMs?: number } = {}): { book: CandleBook, exec: CassandraExecutor, counters: ReturnType<typeof createProcessCounters>, lines: string[] } {
  const config = validateConfig({
    cassandra: { retryInitialDelayMs: overrides.retryInitialDelayMs ?? 1, retryMaxDelayMs: Math.max(20, overrides.retryInitialDelayMs ?? 1), batchMaxBytes: overrides.batchMaxBytes ?? 4096, maxConcurrentWrites: 4 },
    candles: { resolutions: ['1m'], flushIntervalMs: overrides.flushIntervalMs ?? 50, idleEvictMs: overrides.idleEvictMs ?? 20_000, ...(overrides.rebuildFetchSize !== undefined ? { rebuildFetchSize: overrides.rebuildFetchSize } : {}) }
  })
  const counters = createProcessCounters()
  const lines: string[] = []
  const log = createLogger({ level: 'warn', write: l => lines.push(l) })
  const exec = new CassandraExecutor({ client, cassandra: config.cassandra, log, counters })
  return { book: new CandleBook({ exec, cassandra: config.cassandra, candles: config.candles, counters, log, client }), exec, counters, lines }
}

const statements = (reqs: readonly Request[]): Array<{ query: string, params: unknown[] }> => reqs.flatMap(r => r.queries)
const symbolOf = (q: { params: unknown[] }): string => q.params[0] as string
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

t.test('one flush writes every due minute: a few unlogged batches, per-statement USING TIMESTAMP, no batch timestamp', async t => {
  const fake = fakeClient()
  const { book, counters } = bookWith(fake.client)
  const trades: Trade[] = []
  for (let s = 0; s < 40; s++) for (let k = 0; k < 2; k++) trades.push(trade(`SYM${s}`, M0 + k * MINUTE_MS + s, 100 + s, 2), trade(`SYM${s}`, M0 + k * MINUTE_MS + 30_000, 101 + s, 1))
  await book.apply(partialsOf(trades))
  t.same(fake.requests.map(r => r.queries.length), [11, 11, 11, 11, 11, 11, 11, 3], '80 minutes in 8 requests of at most 4,096 bytes (core/candle-book.ts estimateCandleBytes)')
  t.equal(fake.reads, 80, 'each new minute rebuilt once')
  const all = statements(fake.written)
  t.equal(all.length, 80)
  t.equal(counters.candlesWritten, 80)
  t.equal(counters.candleLoads, 80)
  t.same(book.stats, { flushes: 1, requests: fake.requests.length, statements: 80, byResolution: { '1m': 80, '5m': 0, '15m': 0, '1h': 0, '1d': 0 }, periodLoads: 0, refused: 0, evicted: 0 })
  for (const r of fake.requests) {
    if (r.kind !== 'batch') continue
    t.equal(r.options['logged'], false)
    t.equal(r.options['prepare'], true)
    t.equal(r.options['isIdempotent'], true)
    t.notOk('timestamp' in r.options, 'no batch-level timestamp: each statement has its own')
  }
  t.match(all[0]!.query, /^INSERT INTO \w+\.candles_1m \(.*\) VALUES \(.*\) USING TIMESTAMP \?$/)
  const stamps = all.map(q => q.params[14] as number)
  t.ok(stamps.every((ts, i) => Number.isInteger(ts) && (i === 0 || ts > stamps[i - 1]!)), 'write timestamps strictly increase through the flush')
  t.ok(Math.abs(stamps[0]! / 1000 - Date.now()) < 5000, 'µs of the clock')
  const aapl = all.find(q => symbolOf(q) === 'SYM7' && q.params[2] === M0)!
  const want = aggregateCandle(trades.filter(tr => tr.symbol === 'SYM7' && tr.ts < M0 + MINUTE_MS).map(input))!
  t.same(aapl.params.slice(2, 13), [M0, want.open, want.high, want.low, want.close, want.volume, want.notional, want.vwap, want.trade_count, want.open_ts, want.close_ts])
  t.same([...(aapl.params[1] as Buffer)], [0x80, 0, 0x4d, 0x84], 'day as a protocol date: 2^31 + days since the epoch (2024-05-01 is day 19,844)')
})

t.test('applies within one interval share the next tick; a minute is written at most once per interval; no tick while nothing is dirty', async t => {
  const fake = fakeClient()
  const { book } = bookWith(fake.client, { flushIntervalMs: 200 })
  const started = Date.now()
  const first = trade('AAPL', M0, 10)
  await book.apply(partialsOf([first]))
  t.equal(fake.requests.length, 1, 'nothing written for a while: the first flush goes at once')
  t.ok(Date.now() - started < 150)
  const second = Promise.all([
    book.apply(partialsOf([trade('AAPL', M0 + 1, 11)])),
    book.apply(partialsOf([trade('AAPL', M0 + 2, 12), trade('MSFT', M0, 5)])),
    book.apply(partialsOf([trade('AAPL', M0 + 3, 13)]))
  ])
  await second
  t.equal(fake.requests.length, 2, 'three applies, one more request')
  t.ok(fake.requests[1]!.at - fake.requests[0]!.at >= 190, `the second tick an interval after the first (${fake.requests[1]!.at - fake.requests[0]!.at} ms)`)
  t.equal(statements([fake.requests[1]!]).length, 2, 'AAPL once (its latest state) and MSFT')
  t.equal(statements([fake.requests[1]!]).find(q => symbolOf(q) === 'AAPL')!.params[10], 4, 'with all four trades')
  await book.apply(partialsOf([first]))
  await sleep(450)
  t.equal(fake.requests.length, 2, 'a replay changes nothing; no request while nothing is dirty')
  t.equal(book.state.dirty, 0)
})

t.test('the tick does not keep the process alive', async t => {
  const fake = fakeClient()
  const { book } = bookWith(fake.client, { flushIntervalMs: 1000 })
  await book.apply(partialsOf([trade('AAPL', M0, 10)]))
  const timeouts = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const before = timeouts()
  const pending = book.apply(partialsOf([trade('AAPL', M0 + 1, 11)]))
  await sleep(20)
  t.equal(timeouts(), before, 'the pending tick is not an active (ref\'d) timer')
  await pending
})

t.test('a refused statement is isolated by halving; the others are written; it is retried with a log line and a count until written', async t => {
  let refuse = true
  const fake = fakeClient(req => refuse && req.queries.some(q => symbolOf(q) === 'BAD') ? new ResponseError(codes.invalid, 'Invalid value for column close') : null)
  const { book, counters, lines } = bookWith(fake.client, { flushIntervalMs: 10 })
  const symbols = ['A1', 'A2', 'A3', 'BAD', 'B1', 'B2', 'B3', 'B4']
  const good = book.apply(partialsOf(symbols.filter(s => s !== 'BAD').map(s => trade(s, M0, 10))))
  let badDone = false
  const bad = book.apply(partialsOf([trade('BAD', M0, 10)])).then(() => { badDone = true })
  await good
  t.same(statements(fake.written).map(symbolOf).sort(), symbols.filter(s => s !== 'BAD').sort(), 'every other minute written, once')
  await sleep(100)
  t.equal(badDone, false, 'the batch of the refused minute is not done')
  t.ok(book.stats.refused >= 2, `retried (${book.stats.refused} refusals so far), not dropped`)
  t.ok(counters.cassandraErrors >= book.stats.refused, 'every refused attempt counted as a Cassandra error too')
  t.ok(lines.some(l => /refused a candle write as invalid/.test(l) && /BAD/.test(l)), 'an error line naming the minute')
  const requestsSoFar = fake.requests.length
  await sleep(100)
  t.ok(fake.requests.length - requestsSoFar < 12, `backing off, not spinning (${fake.requests.length - requestsSoFar} attempts in 100 ms)`)
  refuse = false
  await bad
  t.ok(statements(fake.written).some(q => symbolOf(q) === 'BAD'), 'written once Cassandra takes it')
  t.equal(book.state.dirty, 0)
})

t.test('a minute backing off after a refusal does not hold back the others', async t => {
  const fake = fakeClient(req => req.queries.some(q => symbolOf(q) === 'BAD') ? new ResponseError(codes.invalid, 'Invalid value') : null)
  const { book, lines } = bookWith(fake.client, { flushIntervalMs: 20, retryInitialDelayMs: 5000 })
  book.apply(partialsOf([trade('BAD', M0, 10)])).catch(() => {})
  await sleep(50)
  t.equal(book.stats.refused, 1, 'refused once, next try in 5 s')
  const started = Date.now()
  await book.apply(partialsOf([trade('GOOD', M0, 10)]))
  t.ok(Date.now() - started < 1000, `a later minute written at the next tick (${Date.now() - started} ms), not at the refused one's retry`)
  t.equal(book.stats.refused, 1, 'and the refused one not retried before its time')
  t.equal(lines.filter(l => /refused a candle write/.test(l)).length, 1)
  book.close()
})

t.test('a batch over Cassandra\'s limit is written in halves, nothing refused', async t => {
  const fake = fakeClient(req => req.queries.length > 3 ? new ResponseError(codes.invalid, 'Batch too large') : null)
  const { book } = bookWith(fake.client, { batchMaxBytes: 100_000 })
  await book.apply(partialsOf(Array.from({ length: 10 }, (_, i) => trade(`S${i}`, M0, 10))))
  t.same(fake.requests.map(r => r.queries.length), [10, 5, 3, 2, 5, 3, 2])
  t.equal(statements(fake.written).length, 10)
  t.equal(book.stats.refused, 0)
})

t.test('transient failures are retried until written', async t => {
  let failures = 4
  const fake = fakeClient(() => failures-- > 0 ? new NoHostAvailableError({}) : null)
  const { book, counters } = bookWith(fake.client)
  await book.apply(partialsOf([trade('AAPL', M0, 10), trade('MSFT', M0, 11)]))
  t.equal(statements(fake.written).length, 2)
  t.equal(counters.cassandraErrors, 4)
})

t.test('the executor closing mid-flush: waiting applies reject, later ones too, the book stops', async t => {
  const fake = fakeClient(() => new NoHostAvailableError({}))
  const { book, exec } = bookWith(fake.client)
  const a = book.apply(partialsOf([trade('AAPL', M0, 10)]))
  const b = book.apply(partialsOf([trade('MSFT', M0, 10)]))
  await sleep(60)
  t.ok(fake.requests.length > 0, 'the flush is retrying')
  exec.close()
  await t.rejects(a, { code: 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE' })
  await t.rejects(b, { code: 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE' })
  await t.rejects(book.apply(partialsOf([trade('IBM', M0, 10)])), { code: 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE' }, 'a later apply rejects at once')
})

t.test('close() rejects applies waiting for a tick; a rebuild cut short by the executor closing rejects its apply', async t => {
  const fake = fakeClient()
  const { book } = bookWith(fake.client, { flushIntervalMs: 5000 })
  await book.apply(partialsOf([trade('AAPL', M0, 10)]))
  const waiting = book.apply(partialsOf([trade('AAPL', M0 + 1, 11)]))
  await sleep(10)
  book.close()
  await t.rejects(waiting, /writer is closing/)
  t.equal(fake.requests.length, 1, 'nothing more written')

  const stuck = fakeClient()
  let release: () => void = () => {}
  ;(stuck.client as unknown as { execute: unknown }).execute = async () => { await new Promise<void>(resolve => { release = resolve }); throw new NoHostAvailableError({}) }
  const second = bookWith(stuck.client)
  const loading = second.book.apply(partialsOf([trade('AAPL', M0, 10)]))
  await sleep(10)
  second.exec.close()
  release()
  await t.rejects(loading, { code: 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE' })
  t.equal(second.book.size, 0, 'the minute whose rebuild failed is forgotten')
})

t.test('rebuilds read the minute from `trades`, paged; a replayed batch after a restart writes the stored state once and folds nothing twice', async t => {
  const stored = Array.from({ length: 25 }, (_, i) => trade('AAPL', M0 + i * 1000, 100 + i))
  const fake = fakeClient(() => null, stored)
  const { book } = bookWith(fake.client, { rebuildFetchSize: 10 })
  // The batch holds five of the stored trades (a replay) and two new ones.
  const fresh = [trade('AAPL', M0 + 40_000, 90), trade('AAPL', M0 + 41_000, 200)]
  await book.apply(partialsOf([...stored.slice(10, 15), ...fresh]))
  t.equal(fake.reads, 3, '25 rows in pages of 10')
  const [row] = statements(fake.written)
  const want = aggregateCandle([...stored, ...fresh].map(input))!
  t.equal(row!.params[10], 27, 'every trade once')
  t.equal(row!.params[4], want.high)
  t.equal(row!.params[5], 90)
  await book.apply(partialsOf(stored.slice(0, 3)))
  t.equal(fake.requests.length, 1, 'a batch of known trades writes nothing')
})

t.test('idle durable minutes are evicted after an apply', async t => {
  let now = 1_000_000
  const fake = fakeClient()
  const config = validateConfig({ cassandra: { retryInitialDelayMs: 1, retryMaxDelayMs: 2 }, candles: { resolutions: ['1m'], flushIntervalMs: 0, idleEvictMs: 1000 } })
  const counters = createProcessCounters()
  const log = createLogger({ level: 'error', write: () => {} })
  const exec = new CassandraExecutor({ client: fake.client, cassandra: config.cassandra, log, counters })
  const book = new CandleBook({ exec, cassandra: config.cassandra, candles: config.candles, counters, log, now: () => now })
  await book.apply(partialsOf([trade('AAPL', M0, 10), trade('MSFT', M0, 10)]))
  t.equal(book.size, 2)
  now += 5000
  await book.apply(partialsOf([trade('IBM', M0, 10)]))
  t.equal(book.size, 1, 'the idle minutes went')
  t.equal(book.stats.evicted, 2)
  t.equal(book.state.idBytes > 0, true)
})
