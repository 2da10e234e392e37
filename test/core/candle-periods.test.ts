// The longer candle periods (core/candle-periods.ts, and the period units of
// core/candle-book.ts): alignment and partitions; loads from candles_1m overlaid by
// the book's own minutes; changes during a load; waiters that wait for the periods
// of their minutes; per-resolution intervals; and a seeded simulation of any
// interleaving of arrivals, rebuilds, period loads, flushes, acknowledgements out of
// order, refusals and evictions, after which every stored candle at every resolution
// is the aggregate of its period's trades, and every release came only once every
// stored candle of the batch's periods held the batch's trades. Each trade's volume
// is a distinct power of two, so a candle's volume says exactly which trades it holds.
import fc from 'fast-check'
import t from 'tap'
import { foldTrade, minuteOf, MINUTE_MS, toCandle, type Candle, type CandleAcc } from '../../daemon/core/candle.js'
import { CandleBookState, type CandleSnapshot, type MinuteState } from '../../daemon/core/candle-book.js'
import { bucketOf, bucketsBetween, DAY_MS, periodStart, RESOLUTION_NAMES, RESOLUTIONS, type Resolution } from '../../daemon/core/candle-periods.js'
import { input, partialsOf, sameCandle, trade, uuid, type Trade } from '../fixtures/candle-trades.js'
import { mulberry32 } from '../../tools/simulator/generator.js'

const PERIODS = (['5m', '15m', '1h', '1d'] as const).map(n => RESOLUTIONS[n])
const ALL = RESOLUTION_NAMES.map(n => RESOLUTIONS[n])
// 23:20 UTC: the hour and the day turn within the simulated span.
const M0 = Date.UTC(2024, 11, 31, 23, 20)

t.test('periods are aligned to UTC, and live in day, month or year partitions', async t => {
  const at = Date.UTC(2024, 1, 29, 13, 47, 12, 345)
  t.equal(periodStart(RESOLUTIONS['1m'], at), Date.UTC(2024, 1, 29, 13, 47))
  t.equal(periodStart(RESOLUTIONS['5m'], at), Date.UTC(2024, 1, 29, 13, 45))
  t.equal(periodStart(RESOLUTIONS['15m'], at), Date.UTC(2024, 1, 29, 13, 45))
  t.equal(periodStart(RESOLUTIONS['1h'], at), Date.UTC(2024, 1, 29, 13))
  t.equal(periodStart(RESOLUTIONS['1d'], at), Date.UTC(2024, 1, 29))
  t.equal(bucketOf(RESOLUTIONS['1m'], at), '2024-02-29')
  t.equal(bucketOf(RESOLUTIONS['1h'], at), '2024-02-01')
  t.equal(bucketOf(RESOLUTIONS['1d'], at), '2024-01-01')
  t.same(bucketsBetween(RESOLUTIONS['1h'], Date.UTC(2024, 0, 20), Date.UTC(2024, 2, 2)), ['2024-01-01', '2024-02-01', '2024-03-01'], 'six weeks of 1 h candles: three partitions')
  t.same(bucketsBetween(RESOLUTIONS['1d'], Date.UTC(2023, 5, 1), Date.UTC(2024, 5, 1)), ['2023-01-01', '2024-01-01'], 'a year of 1 d candles: two partitions at most')
  t.same(bucketsBetween(RESOLUTIONS['1m'], at, at + 1), ['2024-02-29'])
  t.same(bucketsBetween(RESOLUTIONS['1m'], at, at), [], 'an empty range visits nothing')
  fc.assert(fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constantFrom(...ALL), (ms, res) => {
    const start = periodStart(res, ms)
    // Every period lies within one UTC day, in the partition of its start, and contains ms.
    return start <= ms && ms < start + res.ms && Math.floor(start / DAY_MS) === Math.floor((start + res.ms - 1) / DAY_MS) &&
      bucketsBetween(res, start, start + res.ms).length === 1 && bucketsBetween(res, start, start + res.ms)[0] === bucketOf(res, start)
  }), { numRuns: 2000 })
})

const book = (opts: { idleEvictMs?: number, flushIntervalMs?: Partial<Record<'1m' | '5m' | '15m' | '1h' | '1d', number>> } = {}): CandleBookState<string> =>
  new CandleBookState<string>({ idleEvictMs: opts.idleEvictMs ?? 20_000, batchMaxBytes: 4096, periods: PERIODS, ...(opts.flushIntervalMs !== undefined ? { flushIntervalMs: opts.flushIntervalMs } : {}) })

const accOfCandle = (c: Candle): CandleAcc => ({ open: c.open, open_ts: c.open_ts, open_id: '', close: c.close, close_ts: c.close_ts, close_id: '', high: c.high, low: c.low, volume: c.volume, notional: c.notional, trade_count: c.trade_count })

function aggregate (res: Resolution, trades: readonly Trade[], start: number): Candle | null {
  let acc: CandleAcc | null = null
  for (const tr of trades) if (periodStart(res, tr.ts) === start) acc = foldTrade(acc, input(tr))
  return acc === null ? null : toCandle(start, acc)
}

t.test('a minute folded: its four periods are new (to load), and none is written before its load; the waiter waits for all five', async t => {
  const b = book()
  const trades = [trade('AAPL', M0 + 1000, 10, 2), trade('AAPL', M0 + 2000, 11, 1)]
  const partials = partialsOf(trades)
  const { minutes, load, loadPeriods } = b.touch(partials, 0)
  t.equal(load.length, 1)
  t.same(loadPeriods.map(p => p.res.name), ['5m', '15m', '1h', '1d'])
  b.loaded(minutes[0]!, [])
  t.equal(b.fold(minutes, partials, 'w'), true)
  const minuteSnaps = b.due(1).flat()
  t.same(minuteSnaps.map(s => s.res.name), ['1m'], 'the periods are loading: only the minute is written')
  t.throws(() => b.loaded(loadPeriods[0]!, []), /is a period/, 'a period is not rebuilt from trades')
  t.throws(() => b.loadedPeriod(minutes[0]!, []), /is a minute/, 'nor a minute loaded from candles')
  for (const p of loadPeriods) b.loadedPeriod(p, [])
  t.throws(() => b.loadedPeriod(loadPeriods[0]!, []), /loaded twice/)
  const snaps = b.due(2).flat()
  t.same(snaps.map(s => s.res.name), ['5m', '15m', '1h', '1d'])
  for (const s of snaps) t.ok(sameCandle(s.candle, aggregate(s.res, trades, s.minute)), `${s.res.name} is the aggregate`)
  t.same(snaps.map(s => s.day), ['2024-12-01', '2024-12-01', '2024-12-01', '2024-01-01'], 'month and year partitions')
  t.same(b.written(snaps.slice(0, 3)), [], 'not released while one period is not durable')
  t.same(b.due(3).flat(), [], 'nothing else is due: the minute is in flight')
  t.same(b.written(minuteSnaps), [], 'the minute durable, one period not yet')
  t.same(b.written(snaps.slice(3)), ['w'], 'released with the last of its periods')
})

t.test('a period load takes candles_1m rows for minutes the book does not hold; the book\'s own minutes win, changes during the load too', async t => {
  const b = book()
  const h = Date.UTC(2024, 4, 1, 10)
  const old = [trade('MSFT', h + 5 * MINUTE_MS, 50, 4), trade('MSFT', h + 7 * MINUTE_MS, 52, 8)]
  const fresh = [trade('MSFT', h + 7 * MINUTE_MS + 10, 53, 16)]
  const first = partialsOf(fresh)
  const { minutes, load, loadPeriods } = b.touch(first, 0)
  b.loaded(load[0]!, [input(old[1]!)]) // minute 7 rebuilt from `trades`: it holds old[1] already
  b.fold(minutes, first, 'w1')
  const hour = loadPeriods.find(p => p.res.name === '1h')!
  t.equal(hour.loading, true)
  // candles_1m as stored: minute 5 (not held by the book) and an OLDER minute 7 (without `fresh`).
  const rows = [{ minute: h + 5 * MINUTE_MS, acc: accOfCandle(aggregate(RESOLUTIONS['1m'], [old[0]!], h + 5 * MINUTE_MS)!) },
    { minute: h + 7 * MINUTE_MS, acc: accOfCandle(aggregate(RESOLUTIONS['1m'], [old[1]!], h + 7 * MINUTE_MS)!) },
    { minute: h + 61 * MINUTE_MS, acc: accOfCandle(aggregate(RESOLUTIONS['1m'], [old[1]!], h + 7 * MINUTE_MS)!) }]
  t.equal(b.loadedPeriod(hour, rows), 1, 'minute 5 taken; minute 7 is the book\'s; minute 61 is not of this hour')
  for (const p of loadPeriods) if (p !== hour) b.loadedPeriod(p, rows)
  const snap = b.due(1).flat().find(s => s.res.name === '1h')!
  t.ok(sameCandle(snap.candle, aggregate(RESOLUTIONS['1h'], [...old, ...fresh], h)), 'the hour is every trade of it')
})

t.test('each resolution is flushed at most once per its interval', async t => {
  const b = book({ flushIntervalMs: { '1m': 100, '5m': 1000, '15m': 1000, '1h': 1000, '1d': 1000 } })
  const apply = (trades: Trade[], w: string, now: number): void => {
    const partials = partialsOf(trades)
    const { minutes, load, loadPeriods } = b.touch(partials, now)
    for (const m of load) b.loaded(m, [])
    for (const p of loadPeriods) b.loadedPeriod(p, [])
    b.fold(minutes, partials, w)
  }
  apply([trade('AAPL', M0, 10)], 'a', 0)
  const first = b.due(0).flat()
  t.equal(first.length, 5, 'the first flush writes all five')
  t.same(b.written(first), ['a'])
  apply([trade('AAPL', M0 + 1, 11)], 'b', 10)
  t.equal(b.nextDue(10), 100, 'the minute next at 100 ms')
  t.same(b.due(100).flat().map(s => s.res.name), ['1m'])
  t.equal(b.nextDue(100), 1000, 'the periods a second after their last flush')
  t.same(b.due(1000).flat().map(s => s.res.name), ['5m', '15m', '1h', '1d'])
})

interface Apply { trades: Trade[], minutes: MinuteState[], partials: ReturnType<typeof partialsOf>, waiter: string }

function simulate (seed: number): string[] {
  const rnd = mulberry32(seed)
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T
  const b = new CandleBookState<string>({ idleEvictMs: 3_000, batchMaxBytes: 1 + Math.floor(rnd() * 3000), evictEveryMs: 200, periods: PERIODS })
  const problems: string[] = []
  // 48 trades over 80 minutes around midnight; volume 2^i marks trade i in any candle's volume.
  const pool: Trade[] = Array.from({ length: 48 }, (_, i) =>
    trade(pick(['A', 'B']), M0 + Math.floor(rnd() * 80) * MINUTE_MS + Math.floor(rnd() * 3) * 1000, 100 + Math.floor(rnd() * 20), 2 ** i, uuid(1 + i)))
  const bit = new Map(pool.map((tr, i) => [tr.id, 2 ** i]))
  const table = new Map<string, Trade>()
  const stored = new Map<string, { writeTs: number, candle: Candle }>() // every candle table, keyed res/symbol/start
  const keyOf = (res: Resolution, symbol: string, start: number): string => `${res.name}/${symbol}/${start}`
  const arrived: Trade[][] = []
  const touched: Apply[] = []
  const loads: MinuteState[] = []
  const periodLoads: MinuteState[] = []
  const waiting = new Map<string, Apply>()
  const inFlight: CandleSnapshot[][] = []
  let now = 0
  let n = 0

  const holds = (c: Candle | undefined, tr: Trade): boolean => c !== undefined && (Math.floor(c.volume / (bit.get(tr.id) as number)) % 2) === 1
  const release = (ws: readonly string[]): void => {
    for (const w of ws) {
      const a = waiting.get(w)
      if (a === undefined) { problems.push(`released ${w} twice or unknown`); continue }
      waiting.delete(w)
      for (const tr of a.trades) {
        for (const res of ALL) {
          const s = stored.get(keyOf(res, tr.symbol, periodStart(res, tr.ts)))
          if (!holds(s?.candle, tr)) problems.push(`${w} released before ${res.name} ${tr.symbol}@${periodStart(res, tr.ts)} held ${tr.id}`)
        }
      }
    }
  }
  const rowsOfMinute = (m: MinuteState): Trade[] => [...table.values()].filter(tr => tr.symbol === m.symbol && minuteOf(tr.ts) === m.minute)
  const minuteRows = (p: MinuteState): Array<{ minute: number, acc: CandleAcc }> => {
    const out: Array<{ minute: number, acc: CandleAcc }> = []
    for (let m = p.minute; m < p.minute + p.res.ms; m += MINUTE_MS) {
      const s = stored.get(keyOf(RESOLUTIONS['1m'], p.symbol, m))
      if (s !== undefined) out.push({ minute: m, acc: accOfCandle(s.candle) })
    }
    return out
  }

  const step = (draining: boolean): boolean => {
    const r = rnd()
    if (r < 0.14 && !draining) {
      const batch = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => pick(pool))
      for (const tr of batch) table.set(tr.id, tr)
      arrived.push(batch)
    } else if (r < 0.26 && arrived.length > 0) {
      const batch = arrived.splice(Math.floor(rnd() * arrived.length), 1)[0]!
      const partials = partialsOf(batch)
      const t0 = b.touch(partials, now)
      loads.push(...t0.load)
      periodLoads.push(...t0.loadPeriods)
      touched.push({ trades: batch, minutes: t0.minutes, partials, waiter: `w${n++}` })
    } else if (r < 0.36 && loads.length > 0) {
      const m = loads.splice(Math.floor(rnd() * loads.length), 1)[0]!
      b.loaded(m, rowsOfMinute(m).map(input))
    } else if (r < 0.46 && periodLoads.length > 0) {
      const p = periodLoads.splice(Math.floor(rnd() * periodLoads.length), 1)[0]!
      b.loadedPeriod(p, minuteRows(p))
    } else if (r < 0.58 && touched.length > 0) {
      const ready = touched.filter(a => a.minutes.every(m => !m.loading))
      if (ready.length === 0) return false
      const a = pick(ready)
      touched.splice(touched.indexOf(a), 1)
      waiting.set(a.waiter, a)
      if (!b.fold(a.minutes, a.partials, a.waiter)) release([a.waiter])
    } else if (r < 0.7) {
      inFlight.push(...b.due(now))
    } else if (r < 0.86 && inFlight.length > 0) {
      const batch = inFlight.splice(Math.floor(rnd() * inFlight.length), 1)[0]!
      if (!draining && rnd() < 0.05) {
        b.refused(batch[0]!, now + 50)
        b.abandoned(batch.slice(1))
        return true
      }
      for (const s of batch) {
        const k = keyOf(s.res, s.symbol, s.minute)
        const prev = stored.get(k)
        if (prev === undefined || s.writeTs > prev.writeTs) stored.set(k, { writeTs: s.writeTs, candle: s.candle })
      }
      release(b.written(batch))
    } else {
      now += Math.floor(rnd() * (draining ? 100 : 1500))
      b.evict(now)
    }
    return true
  }

  for (let i = 0; i < 400; i++) step(false)
  for (let i = 0; i < 20_000 && (arrived.length + touched.length + loads.length + periodLoads.length + inFlight.length + waiting.size > 0 || b.dirty > 0); i++) step(true)
  if (waiting.size > 0 || b.dirty > 0) problems.push(`not quiet after draining: ${waiting.size} waiting, ${b.dirty} dirty`)
  const trades = [...table.values()]
  for (const res of ALL) {
    const starts = new Set(trades.map(tr => `${tr.symbol}/${periodStart(res, tr.ts)}`))
    for (const k of starts) {
      const [symbol, start] = k.split('/') as [string, string]
      const want = aggregate(res, trades.filter(tr => tr.symbol === symbol), Number(start))
      const got = stored.get(keyOf(res, symbol, Number(start)))?.candle
      if (!sameCandle(got, want)) problems.push(`${res.name} ${k}: stored ${JSON.stringify(got)} is not the aggregate ${JSON.stringify(want)}`)
    }
  }
  return problems
}

t.test('simulation: every resolution exact at the quiet end, every release after its periods held its trades', async t => {
  let failures = 0
  fc.assert(fc.property(fc.integer(), seed => {
    const problems = simulate(seed)
    if (problems.length > 0 && failures++ === 0) t.comment(`seed ${seed}: ${problems.slice(0, 5).join('; ')}`)
    return problems.length === 0
  }), { numRuns: 300 })
  t.pass('300 seeded interleavings')
})
