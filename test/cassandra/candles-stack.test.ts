// The candle book against the real local Cassandra (5.0): a flush's minutes go out as
// unlogged multi-partition batches with a write timestamp per statement
// (`INSERT … USING TIMESTAMP ?`, no batch timestamp), are read back equal to the
// aggregates, rebuilds page through `trades`, and an older snapshot written after a
// newer one does not win.
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import cassandra from 'cassandra-driver'
import t from 'tap'
import { CandleBook } from '../../daemon/cassandra/candles.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { CassandraExecutor } from '../../daemon/cassandra/writer.js'
import { validateConfig } from '../../daemon/config/load.js'
import type { Config } from '../../daemon/config/schema.js'
import { aggregateCandle, foldTrade, MINUTE_MS, toCandle, type Candle, type CandleAcc } from '../../daemon/core/candle.js'
import { bucketOf, periodStart, RESOLUTION_NAMES, RESOLUTIONS, type Resolution } from '../../daemon/core/candle-periods.js'
import { createLogger } from '../../daemon/log.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { stackOptions } from '../../tools/stack/options.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { dayOf, input, partialsOf, sameCandle, trade, type Trade } from '../fixtures/candle-trades.js'

t.setTimeout(180_000)

const { cassandraHost, cassandraPort } = testEndpoints()
const keyspace = `t_candles_${randomUUID().slice(0, 8)}`
const M0 = Date.UTC(2024, 4, 1, 12, 30)
const quiet = createLogger({ level: 'error', write: l => { process.stderr.write(l + '\n') } })

/** One-minute candles unless `candles.resolutions` says otherwise (the longer ones have their own test below). */
function configWith (candles: Record<string, unknown> = {}, cassandraOverrides: Record<string, unknown> = {}): Config {
  return validateConfig({
    logLevel: 'error',
    cassandra: { contactPoints: [cassandraHost], port: cassandraPort, keyspace, retryMaxDelayMs: 500, ...cassandraOverrides },
    candles: { resolutions: ['1m'], ...candles }
  })
}

const base = configWith()
const client = new cassandra.Client({ contactPoints: [cassandraHost], protocolOptions: { port: cassandraPort }, localDataCenter: base.cassandra.localDataCenter })

t.before(async () => {
  await runMigrate(base, CQL_DIR, () => {})
  await client.connect()
})
t.teardown(async () => {
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {})
  await client.shutdown()
})

function bookOn (config: Config, now?: () => number): { book: CandleBook, exec: CassandraExecutor } {
  const counters = createProcessCounters()
  const exec = new CassandraExecutor({ client, cassandra: config.cassandra, log: quiet, counters })
  const book = new CandleBook({ exec, cassandra: config.cassandra, candles: config.candles, counters, log: quiet, client, ...(now !== undefined ? { now } : {}) })
  return { book, exec }
}

/** What the trade writer does before a batch is applied: its rows in `trades`. */
async function storeTrades (trades: readonly Trade[]): Promise<void> {
  const insert = `INSERT INTO ${keyspace}.trades (symbol, day, trade_ts, trade_id, price, volume, conditions, ingest_ts, process_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
  for (const tr of trades) {
    await client.execute(insert, [tr.symbol, cassandra.types.LocalDate.fromString(dayOf(tr.ts)), new Date(tr.ts), cassandra.types.Uuid.fromString(tr.id), tr.price, tr.volume, null, new Date(tr.ts), new Date(tr.ts)], { prepare: true })
  }
}

interface StoredRow { candle: Candle, writetime: number }

async function readCandle (symbol: string, minute: number): Promise<StoredRow | undefined> {
  const rs = await client.execute(`SELECT minute, open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts, writetime(close) AS wt FROM ${keyspace}.candles_1m WHERE symbol = ? AND day = ? AND minute = ?`,
    [symbol, cassandra.types.LocalDate.fromString(dayOf(minute)), new Date(minute)], { prepare: true })
  const r = rs.first()
  if (r === null) return undefined
  const ms = (v: unknown): number => (v as Date).getTime()
  return {
    candle: { minute: ms(r['minute']), open: r['open'], high: r['high'], low: r['low'], close: r['close'], volume: r['volume'], notional: r['notional'], vwap: r['vwap'], trade_count: r['trade_count'], open_ts: ms(r['open_ts']), close_ts: ms(r['close_ts']) },
    writetime: Number(r['wt'])
  }
}

/** The candle recomputed from the minute's rows in `trades`. */
async function recomputed (symbol: string, minute: number): Promise<Candle | null> {
  const rs = await client.execute(`SELECT trade_ts, trade_id, price, volume FROM ${keyspace}.trades WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ?`,
    [symbol, cassandra.types.LocalDate.fromString(dayOf(minute)), new Date(minute), new Date(minute + MINUTE_MS)], { prepare: true, fetchSize: 10_000 })
  return aggregateCandle(rs.rows.map(r => ({ trade_ts: (r['trade_ts'] as Date).getTime(), trade_id: String(r['trade_id']), price: r['price'] as number, volume: r['volume'] as number })))
}

const id = (): string => randomUUID()

t.test('80 minutes of 40 symbols in one flush: a few unlogged multi-partition batches, every candle the aggregate of `trades`', async t => {
  const { book } = bookOn(base)
  const trades: Trade[] = []
  for (let s = 0; s < 40; s++) {
    for (let k = 0; k < 2; k++) {
      for (let i = 0; i < 5; i++) trades.push(trade(`BATCH${s}`, M0 + k * MINUTE_MS + i * 7000, 100 + s + i, 1 + (i % 3), id()))
    }
  }
  await storeTrades(trades)
  const before = Date.now() * 1000
  await book.apply(partialsOf(trades))
  const stats = book.stats
  t.equal(stats.statements, 80)
  t.equal(stats.requests, 8, '80 minutes in 8 requests (one node: one replica group)')
  t.equal(stats.refused, 0)
  const writetimes: number[] = []
  for (let s = 0; s < 40; s++) {
    for (let k = 0; k < 2; k++) {
      const minute = M0 + k * MINUTE_MS
      const row = await readCandle(`BATCH${s}`, minute)
      if (!sameCandle(row?.candle, await recomputed(`BATCH${s}`, minute))) t.fail(`BATCH${s}@${minute} is not the aggregate of its trades`)
      writetimes.push(row?.writetime ?? 0)
    }
  }
  t.equal(new Set(writetimes).size, 80, 'every statement its own write timestamp (USING TIMESTAMP ?), none the batch\'s')
  t.ok(writetimes.every(w => w >= before && w < Date.now() * 1000 + 1000), 'the book\'s µs timestamps')
  // The budget is Cassandra's own measure: not one batch over batch_size_warn_threshold (5 KiB).
  const log = join(stackOptions(process.env).dir, 'cassandra', 'cassandra.log')
  if (existsSync(log)) {
    await new Promise(resolve => setTimeout(resolve, 500))
    const warned = readFileSync(log, 'utf8').split('\n').filter(l => l.includes(`Batch for [${keyspace}.candles_1m]`))
    t.same(warned, [], 'Cassandra warned about none of the batches')
  }
})

t.test('an older snapshot written after a newer one does not win (USING TIMESTAMP), a newer one does', async t => {
  const minute = M0 + 5 * MINUTE_MS
  const a = trade('ORDER', minute + 1000, 10, 1, id())
  const b = trade('ORDER', minute + 2000, 20, 1, id())
  const c = trade('ORDER', minute + 3000, 5, 1, id())
  // A book whose clock is an hour behind (a second daemon after a rebalance, with a bad clock).
  const behind = bookOn(base, () => Date.now() - 3_600_000).book
  const current = bookOn(base).book
  await current.apply(partialsOf([a, b]))
  const newer = await readCandle('ORDER', minute)
  t.equal(newer?.candle.trade_count, 2)
  await behind.apply(partialsOf([a]))
  t.equal(behind.stats.statements, 1, 'the older snapshot was written (and acknowledged)')
  const after = await readCandle('ORDER', minute)
  t.same(after, newer, 'and lost: the row is still the newer snapshot, with its write time')
  await current.apply(partialsOf([c]))
  const newest = await readCandle('ORDER', minute)
  t.ok(sameCandle(newest?.candle, aggregateCandle([a, b, c].map(input))), 'a newer snapshot does win')
  t.ok((newest?.writetime ?? 0) > (newer?.writetime ?? 0))
})

t.test('rebuilds page through `trades`: a replay after a restart folds nothing twice, a later batch folds on top', async t => {
  const config = configWith({ rebuildFetchSize: 7 })
  const minute = M0 + 10 * MINUTE_MS
  const stored = Array.from({ length: 30 }, (_, i) => trade('REBUILD', minute + i * 1500, 50 + (i % 9), 0.5 + (i % 4), id()))
  await storeTrades(stored)
  // A fresh book (a restart) gets a replay of ten of them.
  const { book } = bookOn(config)
  await book.apply(partialsOf(stored.slice(5, 15)))
  t.ok(sameCandle((await readCandle('REBUILD', minute))?.candle, await recomputed('REBUILD', minute)), 'the rebuilt candle: all 30 trades, each once')
  t.equal((await readCandle('REBUILD', minute))?.candle.trade_count, 30)
  const later = [trade('REBUILD', minute + 59_000, 70, 2, id()), trade('REBUILD', minute + 100, 40, 1, id())]
  await storeTrades(later)
  await book.apply(partialsOf([...later, stored[0]!]))
  const row = await readCandle('REBUILD', minute)
  t.ok(sameCandle(row?.candle, await recomputed('REBUILD', minute)), 'still the aggregate of `trades` after a batch with a re-sent trade')
  t.equal(row?.candle.trade_count, 32)
})

t.test('a large budget: batches spanning partitions stay under batch_size_fail_threshold, one partition\'s may pass it', async t => {
  const config = configWith({}, { batchMaxBytes: 1_000_000 })
  const { book } = bookOn(config)
  // 10 partitions of 100 minutes: ~330 KB, over the stack's 50 KiB fail threshold in one batch.
  const trades = Array.from({ length: 1000 }, (_, i) => trade(`BIG${i % 10}`, M0 + Math.floor(i / 10) * MINUTE_MS, 10 + i, 1, id()))
  await book.apply(partialsOf(trades))
  t.equal(book.stats.statements, 1000)
  t.equal(book.stats.refused, 0, 'nothing refused')
  t.ok(book.stats.requests >= 8 && book.stats.requests <= 9, `${book.stats.requests} requests of at most 45 KiB`)
  t.equal((await readCandle('BIG7', M0 + 42 * MINUTE_MS))?.candle.close, 10 + 427)
  // One partition's 300 minutes (~100 KB) are one request: Cassandra spares single-partition batches.
  const one = bookOn(config).book
  await one.apply(partialsOf(Array.from({ length: 300 }, (_, i) => trade('DEEP', M0 + i * MINUTE_MS, 1 + i, 1, id()))))
  t.same([one.stats.requests, one.stats.statements, one.stats.refused], [1, 300, 0])
  t.equal((await readCandle('DEEP', M0 + 299 * MINUTE_MS))?.candle.close, 300)
  const log = join(stackOptions(process.env).dir, 'cassandra', 'cassandra.log')
  if (existsSync(log)) {
    await new Promise(resolve => setTimeout(resolve, 500))
    t.same(readFileSync(log, 'utf8').split('\n').filter(l => l.includes(`Batch for [${keyspace}.candles_1m]`) && l.includes('batch_size_fail_threshold')), [], 'none refused as too large')
  }
})

/** A stored candle of any resolution, or undefined. */
async function readPeriod (res: Resolution, symbol: string, start: number): Promise<Candle | undefined> {
  const rs = await client.execute(`SELECT ${res.startColumn} AS start, open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts FROM ${keyspace}.${res.table} WHERE symbol = ? AND ${res.bucketColumn} = ? AND ${res.startColumn} = ?`,
    [symbol, cassandra.types.LocalDate.fromString(bucketOf(res, start)), new Date(start)], { prepare: true })
  const r = rs.first()
  if (r === null) return undefined
  const ms = (v: unknown): number => (v as Date).getTime()
  return { minute: ms(r['start']), open: r['open'], high: r['high'], low: r['low'], close: r['close'], volume: r['volume'], notional: r['notional'], vwap: r['vwap'], trade_count: r['trade_count'], open_ts: ms(r['open_ts']), close_ts: ms(r['close_ts']) }
}

/** The candle of a period recomputed from its rows in `trades` (a period never spans two days). */
async function recomputedPeriod (res: Resolution, symbol: string, start: number): Promise<Candle | null> {
  const rs = await client.execute(`SELECT trade_ts, trade_id, price, volume FROM ${keyspace}.trades WHERE symbol = ? AND day = ? AND trade_ts >= ? AND trade_ts < ?`,
    [symbol, cassandra.types.LocalDate.fromString(dayOf(start)), new Date(start), new Date(start + res.ms)], { prepare: true, fetchSize: 10_000 })
  let acc: CandleAcc | null = null
  for (const r of rs.rows) acc = foldTrade(acc, { trade_ts: (r['trade_ts'] as Date).getTime(), trade_id: String(r['trade_id']), price: r['price'] as number, volume: r['volume'] as number })
  return acc === null ? null : toCandle(start, acc)
}

t.test('every resolution (1m to 1d) equals its recomputation from `trades`, through a restart that loads the periods from candles_1m', async t => {
  const config = configWith({ resolutions: [...RESOLUTION_NAMES], flushIntervalMs: 10, periodFlushIntervalMs: 20 })
  // Around midnight UTC: the hour and the day turn, so periods of two days and two 1 d partitions (a year's turn) are written.
  const D = Date.UTC(2025, 11, 31, 23, 40)
  const symbols = ['PER:A', 'PER:B']
  const all = Array.from({ length: 240 }, (_, i) => trade(symbols[i % 2]!, D + Math.floor(i / 2) * 20_000 + (i % 7), 100 + (i % 13), 0.25 * (1 + (i % 5)), id()))
  const first = all.slice(0, 150)
  await storeTrades(first)
  const one = bookOn(config)
  for (let i = 0; i < first.length; i += 25) await one.book.apply(partialsOf(first.slice(i, i + 25)))
  one.exec.close()
  one.book.close()
  // A restart: a fresh book gets a replay of the last 30 and the rest; its periods come from candles_1m.
  const rest = all.slice(150)
  await storeTrades(rest)
  const two = bookOn(config)
  await two.book.apply(partialsOf([...first.slice(120), ...rest.slice(0, 40)]))
  await two.book.apply(partialsOf(rest.slice(40)))
  t.ok(two.book.stats.periodLoads >= 4, `periods loaded from candles_1m after the restart (${two.book.stats.periodLoads})`)
  for (const n of RESOLUTION_NAMES) t.ok(two.book.stats.byResolution[n] > 0, `${n} rows written`)
  let checked = 0
  const bad: string[] = []
  for (const n of RESOLUTION_NAMES) {
    const res = RESOLUTIONS[n]
    const starts = new Set(all.map(tr => `${tr.symbol}|${periodStart(res, tr.ts)}`))
    for (const k of starts) {
      const [symbol, start] = k.split('|') as [string, string]
      const stored = await readPeriod(res, symbol, Number(start))
      const want = await recomputedPeriod(res, symbol, Number(start))
      if (!sameCandle(stored, want)) bad.push(`${n} ${k}: ${JSON.stringify(stored)} vs ${JSON.stringify(want)}`)
      checked++
    }
  }
  t.same(bad, [], `${checked} candles at five resolutions, each the aggregate of its trades`)
  t.equal((await readPeriod(RESOLUTIONS['1d'], 'PER:A', Date.UTC(2026, 0, 1)))?.trade_count, all.filter(tr => tr.symbol === 'PER:A' && tr.ts >= Date.UTC(2026, 0, 1)).length, 'the new year\'s first day in its own partition')
  two.exec.close()
  two.book.close()
})
