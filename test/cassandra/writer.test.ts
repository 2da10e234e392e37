// The trade writer against an in-process fake of the driver's client: which failures
// are retried until written and which are refused for good, and how a refused batch is
// halved until the refused rows stand alone. (The real-stack tests of the same paths
// are in test/process/.)
import cassandra from 'cassandra-driver'
import t from 'tap'
import { classifyCassandraError } from '../../daemon/cassandra/errors.js'
import { CassandraExecutor, laneLimit, TradeWriter } from '../../daemon/cassandra/writer.js'
import { validateConfig } from '../../daemon/config/load.js'
import { toTradeRow, type TradeRow } from '../../daemon/core/transform.js'
import { createLogger } from '../../daemon/log.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'

const { ResponseError, NoHostAvailableError, OperationTimedOutError, ArgumentError } = cassandra.errors
const codes = cassandra.types.responseErrorCodes
const m = Date.UTC(2024, 4, 1, 12, 30)

function rows (n: number, symbol = 'AAPL'): TradeRow[] {
  return Array.from({ length: n }, (_, i) => toTradeRow({ s: symbol, p: 10 + i, t: m + i, v: 1, c: null, ingest_ts: m + i, ordinal: 0 }, m + 1000))
}

/** A client whose every request goes through `answer`; it records what was written. */
function fakeClient (answer: (params: unknown[][]) => Error | null): { client: cassandra.Client, written: unknown[][], requests: number[] } {
  const written: unknown[][] = []
  const requests: number[] = []
  const run = async (params: unknown[][]): Promise<void> => {
    requests.push(params.length)
    const err = answer(params)
    if (err !== null) throw err
    written.push(...params)
  }
  const client = {
    execute: async (_q: string, params: unknown[]) => { await run([params]) },
    batch: async (queries: Array<{ params: unknown[] }>) => { await run(queries.map(q => q.params)) }
  } as unknown as cassandra.Client
  return { client, written, requests }
}

function writerWith (client: cassandra.Client, batchMaxBytes = 100_000): { writer: TradeWriter, exec: CassandraExecutor, counters: ReturnType<typeof createProcessCounters>, lines: string[] } {
  const config = validateConfig({ cassandra: { retryInitialDelayMs: 1, retryMaxDelayMs: 2, batchMaxBytes, maxConcurrentWrites: 2 } })
  const counters = createProcessCounters()
  const lines: string[] = []
  const opts = { client, cassandra: config.cassandra, log: createLogger({ level: 'warn', write: l => lines.push(l) }), counters }
  const exec = new CassandraExecutor(opts)
  return { writer: new TradeWriter(exec, opts), exec, counters, lines }
}

/** The price of a row as the writer bound it (a CQL double). */
const priceOf = (params: unknown[]): number => (params[4] as Buffer).readDoubleBE(0)

t.test('classification: invalid requests and encoding errors are refused; outages and schema problems are retried', async t => {
  t.equal(classifyCassandraError(new ResponseError(codes.invalid, 'Batch too large')).kind, 'rejected')
  t.equal(classifyCassandraError(new ResponseError(codes.invalid, 'Key length of 70000 is longer than maximum of 65535')).kind, 'rejected')
  t.equal(classifyCassandraError(new RangeError('The value of "value" is out of range')).kind, 'rejected')
  t.equal(classifyCassandraError(new TypeError('Expected Number, obtained x')).kind, 'rejected')
  t.equal(classifyCassandraError(new ArgumentError('bad')).kind, 'rejected')
  for (const err of [
    new ResponseError(codes.invalid, 'unconfigured table trades'),
    new ResponseError(codes.invalid, 'Keyspace finnhub does not exist'),
    new ResponseError(codes.invalid, 'Undefined column name volume'),
    new ResponseError(codes.unauthorized, 'User x has no MODIFY permission'),
    new ResponseError(codes.syntaxError, 'line 1:0'),
    new ResponseError(codes.writeTimeout, 'timeout'),
    new ResponseError(codes.unavailableException, 'not enough replicas'),
    new ResponseError(codes.overloaded, 'overloaded'),
    new ResponseError(codes.isBootstrapping, 'bootstrapping'),
    new ResponseError(codes.serverError, 'java.lang.Error'),
    new NoHostAvailableError({}),
    new OperationTimedOutError('timed out'),
    new Error('socket hang up')
  ]) t.equal(classifyCassandraError(err).kind, 'transient', err.message)
  const missing = classifyCassandraError(new ResponseError(codes.invalid, 'unconfigured table trades'))
  t.match(missing.kind === 'transient' ? missing.hint : '', /finnhubd migrate/, 'a missing table says to migrate')
  const down = classifyCassandraError(new NoHostAvailableError({}))
  t.notMatch(down.kind === 'transient' ? down.hint : '', /npm run stack/, 'never tells a production user to start the local stack')
})

t.test('a refused row is isolated by halving; the rows around it are written once, and it is handed back with the error', async t => {
  const fake = fakeClient(params => params.some(p => priceOf(p) === 13) ? new ResponseError(codes.invalid, 'Invalid value for price') : null)
  const { writer, counters, lines } = writerWith(fake.client)
  const batch = rows(8)
  const rejected = await writer.writeRows(batch)
  t.same(rejected.map(r => r.index), [3], 'the refused row (by its index in the batch), and only it')
  t.match(rejected[0]?.error, /Cassandra refused the request: Invalid value for price/)
  t.same(fake.written.map(priceOf).sort(), [10, 11, 12, 14, 15, 16, 17], 'every other row written, once')
  t.same(fake.requests, [8, 4, 2, 2, 1, 1, 4], 'halved: 8 → 4 (refused) → 2 + 2 (refused) → 1 + 1 (refused), then the other 4')
  t.equal(counters.rowsWritten, 7)
  t.equal(counters.cassandraRejectedRows, 1)
  t.equal(counters.cassandraUp, 1, 'a refusal is not an outage')
  t.ok(lines.some(l => /refused a trade row as invalid/.test(l)), 'logged')
  t.same(await writer.writeRows(rows(2, 'MSFT')), [], 'later writes see no stale rejections')
})

t.test('a batch too large for Cassandra is written in halves, nothing refused', async t => {
  const fake = fakeClient(params => params.length > 3 ? new ResponseError(codes.invalid, 'Batch too large') : null)
  const { writer, counters } = writerWith(fake.client)
  const batch = rows(10)
  t.same(await writer.writeRows(batch), [])
  t.equal(fake.written.length, 10)
  t.same(fake.requests, [10, 5, 3, 2, 5, 3, 2], 'each refused request halved until it fits')
  t.equal(counters.cassandraRejectedRows, 0)
  t.equal(counters.rowsWritten, 10)
})

t.test('transient failures are retried until written, never refused', async t => {
  let failures = 5
  const fake = fakeClient(() => failures-- > 0 ? new NoHostAvailableError({}) : null)
  const { writer, counters } = writerWith(fake.client)
  t.same(await writer.writeRows(rows(4)), [])
  t.equal(fake.written.length, 4)
  t.equal(counters.cassandraErrors, 5)
  t.equal(counters.cassandraRejectedRows, 0)
})

t.test('a missing table is retried (and says to migrate), not dead-lettered row by row', async t => {
  let failures = 3
  const fake = fakeClient(() => failures-- > 0 ? new ResponseError(codes.invalid, 'unconfigured table trades') : null)
  const { writer, lines } = writerWith(fake.client)
  t.same(await writer.writeRows(rows(4)), [])
  t.equal(fake.written.length, 4)
  t.ok(lines.some(l => /finnhubd migrate/.test(l)), 'the retry log says what to do')
})

t.test('close() while retrying rejects the write; nothing is reported as refused', async t => {
  const fake = fakeClient(() => new OperationTimedOutError('timed out'))
  const { writer, exec } = writerWith(fake.client)
  const pending = writer.writeRows(rows(3, 'IBM'))
  await new Promise(resolve => setTimeout(resolve, 20))
  exec.close()
  await t.rejects(pending, { code: 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE' })
  t.equal(fake.written.length, 0)
  t.ok(fake.requests.length > 1, 'it had been retrying')
  t.same(fake.requests.every(n => n === 3), true, 'a transient failure never splits the batch')
})

t.test('one concurrency limit: trade requests wait for the executor\'s slots, and rows waiting meanwhile join one request per replica', async t => {
  const release: Array<() => void> = []
  const sizes: number[] = []
  const replicas: Record<string, string> = { AAPL: '10.0.0.1', MSFT: '10.0.0.1', IBM: '10.0.0.2' }
  const client = {
    execute: async () => { sizes.push(1); await new Promise<void>(resolve => release.push(resolve)) },
    batch: async (queries: unknown[], options: { routingKey?: Buffer }) => {
      sizes.push(queries.length)
      t.ok(options.routingKey instanceof Buffer, 'a batch is routed by its partition key')
      await new Promise<void>(resolve => release.push(resolve))
    },
    // The routing key starts with the symbol's length and bytes.
    getReplicas: (_ks: string, key: Buffer) => [{ address: replicas[key.toString('utf8', 2, 2 + key.readUInt16BE(0))] ?? '?' }]
  } as unknown as cassandra.Client
  const { writer, exec } = writerWith(client)
  t.equal(exec.freeSlots, 2)
  // Two candle-like requests take both slots.
  const held = [exec.run('candle write', async () => { await new Promise<void>(resolve => release.push(resolve)) }), exec.run('candle write', async () => { await new Promise<void>(resolve => release.push(resolve)) })]
  await new Promise(resolve => setImmediate(resolve))
  t.equal(exec.freeSlots, 0)
  const writes = [writer.writeRows(rows(3, 'AAPL')), writer.writeRows(rows(2, 'MSFT')), writer.writeRows(rows(4, 'IBM'))]
  await new Promise(resolve => setImmediate(resolve))
  t.same(sizes, [], 'no trade request while every slot is busy')
  t.equal(writer.pending, 9)
  release.shift()?.()
  await held[0]
  await new Promise(resolve => setImmediate(resolve))
  t.same(sizes, [5], 'the freed slot takes AAPL and MSFT (one replica) in one request')
  release.shift()?.()
  await held[1]
  await new Promise(resolve => setImmediate(resolve))
  t.same(sizes, [5, 4], 'the next slot takes IBM (the other replica)')
  while (release.length > 0) { release.shift()?.(); await new Promise(resolve => setImmediate(resolve)) }
  t.same(await Promise.all(writes), [[], [], []])
  t.equal(writer.pending, 0)
  t.equal(exec.freeSlots, 2, 'every slot back')
  exec.close()
  t.equal(exec.freeSlots, 0, 'a closed executor has no slots')
})

t.test('the candles lane holds at most a quarter of the slots: a burst of candle reads never holds the ones trade writes need', async t => {
  const config = validateConfig({ cassandra: { retryInitialDelayMs: 1, retryMaxDelayMs: 2, maxConcurrentWrites: 8 } })
  t.equal(laneLimit(8), 2)
  t.equal(laneLimit(1), 1, 'at least one')
  t.equal(laneLimit(32), 8)
  const counters = createProcessCounters()
  const exec = new CassandraExecutor({ client: {} as unknown as cassandra.Client, cassandra: config.cassandra, log: createLogger({ level: 'fatal' }), counters })
  const release: Array<() => void> = []
  let running = 0
  let most = 0
  const candle = async (): Promise<void> => {
    await exec.run('candle rebuild', async () => {
      running++
      most = Math.max(most, running)
      await new Promise<void>(resolve => release.push(resolve))
      running--
    }, { lane: 'candles' })
  }
  const burst = Array.from({ length: 10 }, async () => { await candle() })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(running, 2, 'two candle requests run, eight wait for the lane')
  t.equal(exec.freeSlots, 6, 'the others\' slots stay free')
  let traded = 0
  await Promise.all(Array.from({ length: 6 }, async () => { await exec.run('trade write', async () => { traded++ }) }))
  t.equal(traded, 6, 'trade writes run at once meanwhile')
  while (release.length > 0) { release.shift()?.(); await new Promise(resolve => setImmediate(resolve)) }
  await Promise.all(burst)
  t.equal(most, 2, 'never more than two in the lane')
  t.equal(exec.candleLaneActive, 0)
  // Closing wakes what waits for the lane.
  const held = [candle(), candle(), candle()]
  await new Promise(resolve => setImmediate(resolve))
  exec.close()
  for (const r of release.splice(0)) r()
  const settled = await Promise.allSettled(held)
  t.ok(settled.some(s => s.status === 'rejected' && /abandoned: the writer is closing/.test(String(s.reason))), 'a request waiting for the lane is abandoned on close')
})
