// The candle book's state machine (core/candle-book.ts), pure: folds by id set,
// rebuilds, versions and durability, waiters, eviction, flush batching by bytes,
// and a seeded simulation that interleaves arrivals, replays, re-sends, late
// trades, racing rebuilds, flushes, acknowledgements out of order, refusals and
// evictions, then checks every candle against the recomputed aggregate and every
// release against what was durable when it came.
import t from 'tap'
import { aggregateCandle, minuteOf, MINUTE_MS, type Candle } from '../../daemon/core/candle.js'
import { CANDLE_PARTITION_BYTES, CANDLE_ROW_BYTES, CandleBookState, estimateCandleBytes, type CandleSnapshot, type CandleTrades, type MinuteState } from '../../daemon/core/candle-book.js'
import { input, partialsOf, sameCandle, trade, uuid, type Trade } from '../fixtures/candle-trades.js'
import { mulberry32 } from '../../tools/simulator/generator.js'

const M0 = Date.UTC(2024, 4, 1, 12, 30)

function book (opts: Partial<{ idleEvictMs: number, batchMaxBytes: number, evictEveryMs: number }> = {}): CandleBookState<string> {
  return new CandleBookState<string>({ idleEvictMs: 20_000, batchMaxBytes: 4096, ...opts })
}

/** touch + loaded(rows) for every new minute + fold: an apply whose rebuild finds `stored`. */
function applyNow (b: CandleBookState<string>, trades: readonly Trade[], waiter: string, now: number, stored: readonly Trade[] = trades): { waits: boolean, minutes: MinuteState[] } {
  const partials = partialsOf(trades)
  const { minutes, load } = b.touch(partials, now)
  for (const m of load) b.loaded(m, stored.filter(tr => tr.symbol === m.symbol && minuteOf(tr.ts) === m.minute).map(input))
  return { waits: b.fold(minutes, partials, waiter), minutes }
}

const flat = (batches: CandleSnapshot[][]): CandleSnapshot[] => batches.flat()

t.test('a fresh minute: rebuilt (nothing stored), folded, due once, durable on written, the waiter released', async t => {
  const b = book()
  const trades = [trade('AAPL', M0 + 1000, 10, 2), trade('AAPL', M0 + 2000, 11, 1), trade('AAPL', M0 + 59_000, 9, 3)]
  const partials = partialsOf(trades)
  const { minutes, load } = b.touch(partials, 0)
  t.equal(load.length, 1, 'new to the book: to be rebuilt')
  t.equal(minutes[0]!.loading, true)
  t.throws(() => b.fold(minutes, partials, 'w'), /before its rebuild/, 'nothing folds into a minute before its rebuild')
  t.equal(b.loaded(minutes[0]!, []), 0)
  t.equal(minutes[0]!.version, 0, 'an empty rebuild changes nothing')
  t.equal(b.dirty, 0)
  t.equal(b.fold(minutes, partials, 'w'), true, 'the waiter waits')
  t.equal(minutes[0]!.version, 1)
  t.equal(b.waiting, 1)
  t.equal(b.nextDue(5), 5, 'due at once')
  const batches = b.due(5)
  t.equal(batches.length, 1)
  const [s] = batches[0]!
  t.ok(sameCandle(s!.candle, aggregateCandle(trades.map(input))), 'the snapshot is the aggregate')
  t.equal(s!.version, 1)
  t.equal(s!.writeTs, 5000, 'µs of now')
  t.equal(s!.updatedAt, 5)
  t.equal(s!.bytes, CANDLE_ROW_BYTES + CANDLE_PARTITION_BYTES, 'a row and its partition')
  t.equal(minutes[0]!.writing, 1, 'in flight')
  t.same(b.due(6), [], 'not due again while in flight')
  t.equal(b.nextDue(6), null, 'and nothing else is')
  t.same(b.written(batches[0]!), ['w'], 'released')
  t.equal(minutes[0]!.durable, 1)
  t.equal(minutes[0]!.writing, 0)
  t.equal(b.dirty, 0)
  t.equal(b.waiting, 0)
  t.equal(b.nextDue(7), null, 'nothing dirty: no tick')
})

t.test('a replay of a folded batch changes nothing and waits for nothing', async t => {
  const b = book()
  const trades = [trade('AAPL', M0, 10), trade('AAPL', M0 + 1, 12), trade('MSFT', M0 + 5, 100)]
  applyNow(b, trades, 'first', 0)
  b.written(flat(b.due(1)))
  const versions = [b.get('AAPL', M0)!.version, b.get('MSFT', M0)!.version]
  const again = applyNow(b, trades, 'replay', 2)
  t.equal(again.waits, false, 'durable already: resolves at once')
  t.same([b.get('AAPL', M0)!.version, b.get('MSFT', M0)!.version], versions, 'no version bumped')
  t.same(b.due(3), [], 'nothing to write')
})

t.test('a replay after a restart: the rebuild finds the trades, the partial folds none of them, the rebuilt state is written once', async t => {
  const b = book()
  const trades = [trade('AAPL', M0, 10), trade('AAPL', M0 + 1, 12)]
  const { waits, minutes } = applyNow(b, trades, 'w', 0, trades)
  t.equal(minutes[0]!.version, 1, 'the rebuild is a version (it may be newer than what is stored)')
  t.equal(waits, true, 'and must be written before the batch is done')
  const [s] = flat(b.due(1))
  t.ok(sameCandle(s!.candle, aggregateCandle(trades.map(input))))
  t.equal(s!.candle.trade_count, 2, 'each trade once')
})

t.test('duplicates across batches: only the fresh trades fold (slow path), open/close tie-breaks as the aggregate', async t => {
  const b = book()
  // Three trades in one millisecond: open and close are chosen by id.
  const a = trade('AAPL', M0 + 500, 10, 1, uuid(5))
  const c = trade('AAPL', M0 + 500, 30, 1, uuid(9))
  const mid = trade('AAPL', M0 + 500, 20, 1, uuid(7))
  const late = trade('AAPL', M0 + 40_000, 15, 2)
  applyNow(b, [mid], 'w1', 0)
  // The next batch re-sends `mid` (Finnhub re-sends) with three new ones.
  applyNow(b, [c, mid, a, late], 'w2', 1)
  const m = b.get('AAPL', M0)!
  t.equal(m.version, 2)
  t.equal(m.ids.size, 4)
  const [s] = flat(b.due(2))
  const want = aggregateCandle([a, c, mid, late].map(input))
  t.ok(sameCandle(s!.candle, want), 'the aggregate of the distinct trades')
  t.equal(s!.candle.open, 10, 'open: the smallest id of the first millisecond')
  t.equal(s!.candle.close, 15)
  t.equal(m.acc?.open_id, a.id, 'ids folded from bytes read back in the lowercase dashed form')
  // All of a batch already in: no change at all.
  applyNow(b, [a, c], 'w3', 3)
  t.equal(m.version, 2, 'a batch of only known trades bumps nothing')
  // The first duplicate at the end of the arrays, and in the middle.
  const x = trade('AAPL', M0 + 41_000, 1)
  const y = trade('AAPL', M0 + 42_000, 99)
  applyNow(b, [x, y, late], 'w4', 4)
  applyNow(b, [trade('AAPL', M0 + 1, 50, 1, x.id), trade('AAPL', M0 + 43_000, 40)], 'w5', 5)
  t.equal(m.ids.size, 7)
  t.equal(m.acc?.trade_count, 7)
  t.equal(m.acc?.high, 99)
  t.equal(m.acc?.low, 1)
})

t.test('a partial whose arrays disagree is a bug: refused before anything folds wrongly, pins released', async t => {
  const b = book()
  const [p] = partialsOf([trade('AAPL', M0, 10), trade('AAPL', M0 + 1, 11)])
  const bad = { ...p!, price: new Float64Array(1) }
  const { minutes, load } = b.touch([bad], 0)
  b.loaded(load[0]!, [])
  t.throws(() => b.fold(minutes, [bad], 'w'), TypeError)
  t.equal(minutes[0]!.version, 0)
  t.equal(b.evict(30_000), 1, 'not pinned any more: evictable')
  const empty: CandleTrades = { ...p!, ids: new Uint8Array(0), ts: new Float64Array(0), price: new Float64Array(0), volume: new Float64Array(0) }
  const second = b.touch([empty], 40_000)
  b.loaded(second.load[0]!, [])
  t.equal(b.fold(second.minutes, [empty], 'w'), false, 'an empty partial is nothing to wait for')
  t.throws(() => b.loaded(second.minutes[0]!, []), /loaded twice/)
  t.throws(() => b.written([{ state: { ...second.minutes[0]! } } as unknown as CandleSnapshot]), /not a minute of this book/)
})

t.test('a late trade for an evicted minute: rebuilt from `trades`, where its own row already is, folded once', async t => {
  const b = book({ idleEvictMs: 10_000 })
  const early = [trade('AAPL', M0 + 1000, 10), trade('AAPL', M0 + 2000, 12)]
  applyNow(b, early, 'w1', 0)
  b.written(flat(b.due(0)))
  t.equal(b.evict(10_001), 1, 'idle and durable: forgotten')
  t.equal(b.get('AAPL', M0), undefined)
  const late = trade('AAPL', M0 + 3000, 8)
  const stored = [...early, late] // the late trade's row is written before its batch is applied
  const { waits, minutes } = applyNow(b, [late], 'w2', 20_000, stored)
  t.equal(waits, true)
  t.equal(minutes[0]!.version, 1, 'rebuilt with the late trade in it; the partial adds nothing')
  const [s] = flat(b.due(20_000))
  t.ok(sameCandle(s!.candle, aggregateCandle(stored.map(input))))
  t.equal(s!.candle.trade_count, 3)
})

t.test('a rebuild racing the writes: a trade it saw is skipped, one it missed is folded; two applies share one rebuild', async t => {
  const b = book()
  const first = [trade('AAPL', M0 + 1, 10), trade('AAPL', M0 + 2, 11)]
  const second = [trade('AAPL', M0 + 3, 12), trade('AAPL', M0 + 4, 13)]
  const p1 = partialsOf(first)
  const t1 = b.touch(p1, 0)
  t.equal(t1.load.length, 1)
  // The second batch is written and applied while the rebuild is under way: same minute, no new rebuild.
  const p2 = partialsOf(second)
  const t2 = b.touch(p2, 1)
  t.equal(t2.load.length, 0, 'one rebuild per minute')
  t.equal(t2.minutes[0], t1.minutes[0])
  t.equal(t2.minutes[0]!.loading, true, 'the second apply waits for the same rebuild')
  // The rebuild's read saw the first batch and half the second.
  b.loaded(t1.load[0]!, [...first, second[0]!].map(input))
  t.equal(b.fold(t2.minutes, p2, 'w2'), true)
  t.equal(b.fold(t1.minutes, p1, 'w1'), true)
  const m = t1.minutes[0]!
  t.equal(m.ids.size, 4)
  t.equal(m.version, 2, 'rebuild, then the one trade it missed')
  const [s] = flat(b.due(2))
  t.ok(sameCandle(s!.candle, aggregateCandle([...first, ...second].map(input))))
  t.same(b.written([s!]).sort(), ['w1', 'w2'])
})

t.test('a failed rebuild forgets the minute: the next touch rebuilds it', async t => {
  const b = book()
  const p = partialsOf([trade('AAPL', M0, 10)])
  const { minutes, load } = b.touch(p, 0)
  b.loadFailed(load[0]!)
  b.release(minutes)
  t.equal(b.size, 0)
  const again = b.touch(p, 1)
  t.equal(again.load.length, 1, 'rebuilt again')
  t.not(again.minutes[0], minutes[0])
  b.loaded(again.load[0]!, [])
  t.equal(b.fold(again.minutes, p, 'w'), true)
  // A stale failure report for the forgotten state does not drop the new one.
  b.loadFailed(minutes[0]!)
  t.equal(b.size, 1)
})

t.test('versions: a change during a write is written by the next flush; a waiter waits for its version, not the first write', async t => {
  const b = book()
  applyNow(b, [trade('AAPL', M0, 10)], 'w1', 0)
  const m = b.get('AAPL', M0)!
  const v1 = flat(b.due(1))
  t.equal(v1[0]!.version, 1)
  applyNow(b, [trade('AAPL', M0 + 1, 11)], 'w2', 2)
  t.equal(m.version, 2)
  t.equal(b.nextDue(3), null, 'the minute is in flight: nothing due until that write ends')
  t.same(b.due(3), [])
  t.same(b.written(v1), ['w1'], 'v1 durable releases w1 only')
  t.equal(m.durable, 1)
  t.equal(b.dirty, 1, 'still dirty at v2')
  t.equal(b.nextDue(4), 4)
  const v2 = flat(b.due(4))
  t.equal(v2[0]!.version, 2)
  t.ok(v2[0]!.writeTs > v1[0]!.writeTs, 'a newer snapshot has a greater write timestamp')
  t.same(b.written(v2), ['w2'])
  t.same(b.written(v1), [], 'a late duplicate acknowledgement of v1 changes nothing')
  t.equal(m.durable, 2)
})

t.test('a waiter on several minutes is released when the last of them is durable', async t => {
  const b = book()
  applyNow(b, [trade('AAPL', M0, 10), trade('AAPL', M0 + MINUTE_MS, 11), trade('MSFT', M0, 5)], 'w', 0)
  const snaps = flat(b.due(1))
  t.equal(snaps.length, 3)
  t.same(b.written([snaps[2]!]), [])
  t.same(b.written([snaps[0]!]), [])
  t.same(b.written([snaps[1]!]), ['w'])
})

t.test('write timestamps strictly increase within and across flushes, even when the clock steps back', async t => {
  const b = book()
  let last = 0
  let ok = true
  for (const [round, now] of [1000, 1000, 999, 5, 2000].entries()) {
    applyNow(b, Array.from({ length: 20 }, (_, i) => trade(`S${i}`, M0, 10 + round)), `w${round}`, 0)
    const snaps = flat(b.due(now))
    for (const s of snaps) {
      if (s.writeTs <= last) ok = false
      last = s.writeTs
    }
    t.same(b.written(snaps), [`w${round}`])
  }
  t.ok(ok, 'every snapshot later than the one before')
  t.ok(last >= 2_000_000, 'and following the clock when it is ahead')
})

t.test('a refused snapshot backs off: not due before retryAt, then due with a new timestamp; a success resets', async t => {
  const b = book()
  applyNow(b, [trade('AAPL', M0, 10), trade('MSFT', M0, 20)], 'w', 0)
  const [aapl, msft] = flat(b.due(10))
  b.refused(aapl!, 1000)
  t.equal(aapl!.state.refusals, 1)
  t.same(b.written([msft!]), [], 'the other minute is written; the waiter still waits for AAPL')
  t.equal(b.nextDue(20), 1000, 'the next tick is at retryAt, not before')
  t.same(b.due(999), [])
  const retry = flat(b.due(1000))
  t.equal(retry.length, 1)
  t.equal(retry[0]!.symbol, 'AAPL')
  t.ok(retry[0]!.writeTs > aapl!.writeTs)
  b.refused(retry[0]!, 3000)
  t.equal(aapl!.state.refusals, 2, 'counted in a row')
  t.equal(b.evict(1_000_000), 1, 'the durable MSFT minute is evicted when idle')
  t.equal(b.get('AAPL', M0), aapl!.state, 'a minute not durable never is')
  const third = flat(b.due(3000))
  t.same(b.written(third), ['w'])
  t.equal(aapl!.state.refusals, 0)
  t.equal(aapl!.state.retryAt, 0)
})

t.test('abandoned snapshots (the executor closed) are dirty again, not in flight; close() hands back every waiter', async t => {
  const b = book()
  applyNow(b, [trade('AAPL', M0, 10)], 'w1', 0)
  applyNow(b, [trade('MSFT', M0, 10)], 'w2', 0)
  const snaps = flat(b.due(1))
  b.abandoned(snaps)
  t.equal(b.get('AAPL', M0)!.writing, 0)
  t.equal(b.nextDue(2), 2)
  t.same(b.close().sort(), ['w1', 'w2'])
  t.equal(b.waiting, 0)
  t.same(b.written(flat(b.due(3))), [], 'a write landing after close releases nobody')
})

t.test('eviction only of minutes idle, durable, not loading, not pinned, not in flight, with nobody waiting; at most once a second', async t => {
  const b = book({ idleEvictMs: 1000, evictEveryMs: 1000 })
  // loading
  const loading = b.touch(partialsOf([trade('LOAD', M0, 1)]), 0)
  b.release(loading.minutes)
  // pinned (touched, rebuilt, not yet folded)
  const pinned = b.touch(partialsOf([trade('PIN', M0, 1)]), 0)
  b.loaded(pinned.load[0]!, [])
  // in flight, with a waiter
  applyNow(b, [trade('FLIGHT', M0, 1)], 'wf', 0)
  const flight = flat(b.due(0))
  // durable
  applyNow(b, [trade('DONE', M0, 1)], 'wdone', 0)
  t.same(b.written(flat(b.due(0))), ['wdone'])
  // dirty, with a waiter
  applyNow(b, [trade('DIRTY', M0, 1)], 'wd', 0)
  t.equal(b.size, 5)
  t.equal(b.evict(1000), 0, 'not idle yet (idle means more than idleEvictMs)')
  t.equal(b.evict(1500), 0, 'no scan within evictEveryMs of the last')
  t.equal(b.evict(2001), 1, 'only the durable minute goes')
  t.equal(b.get('DONE', M0), undefined)
  t.ok(b.get('LOAD', M0) !== undefined && b.get('PIN', M0) !== undefined && b.get('FLIGHT', M0) !== undefined && b.get('DIRTY', M0) !== undefined)
  b.loaded(loading.load[0]!, [])
  b.release(pinned.minutes)
  t.same(b.written(flight), ['wf'])
  t.equal(b.evict(3002), 3, 'loaded, unpinned, written: gone; the dirty one stays')
  t.equal(b.get('DIRTY', M0)?.durable, 0)
  t.equal(b.get('DIRTY', M0)?.writing, 0)
  t.equal(b.dirty, 1)
  // A touch keeps a minute: touchedAt moves.
  t.same(b.written(flat(b.due(4000))), ['wd'])
  applyNow(b, [trade('DIRTY', M0 + 1, 2)], 'again', 4500)
  b.written(flat(b.due(4500)))
  t.equal(b.evict(5000), 0, 'touched at 4,500: not idle at 5,000')
  t.equal(b.evict(6000), 1)
  t.equal(b.size, 0)
  t.equal(b.idBytes, 0)
})

t.test('flush batching: every due minute at once, in batches of at most batchMaxBytes, by group, partition and minute', async t => {
  const budget = 1000
  const b = book({ batchMaxBytes: budget })
  const trades: Trade[] = []
  for (let s = 0; s < 40; s++) for (let k = 0; k < 2; k++) trades.push(trade(`SYM${s}`, M0 + k * MINUTE_MS, 10 + s))
  applyNow(b, trades, 'w', 0)
  t.equal(b.dirty, 80)
  const groupOf = (m: MinuteState): string => `g${Number(m.symbol.slice(3)) % 3}`
  const batches = b.due(1, groupOf)
  const all = batches.flat()
  t.equal(all.length, 80, 'every dirty minute in one flush')
  t.equal(new Set(all.map(s => `${s.symbol}@${s.minute}`)).size, 80, 'each once')
  for (const batch of batches) {
    t.ok(batch.reduce((n, s) => n + s.bytes, 0) <= budget, `batch of ${batch.length} within the budget`)
    t.equal(new Set(batch.map(s => groupOf(s.state))).size, 1, 'never two groups in a batch')
  }
  // 3 groups of 13–14 symbols × 2 minutes; each group cut by bytes: one partition's two
  // rows are 362 + 333 bytes, a third row (a new partition) would pass 1,000.
  t.same(batches.map(x => x.length), Array(40).fill(2), '40 requests of one partition each at a 1,000-byte budget')
  t.ok(batches.every(x => x[0]!.symbol === x[1]!.symbol), 'a partition\'s rows together')
  const inOrder = all.every((s, i) => i === 0 || (() => {
    const p = all[i - 1]!
    const g = groupOf(p.state).localeCompare(groupOf(s.state))
    return g < 0 || (g === 0 && (p.symbol < s.symbol || (p.symbol === s.symbol && p.minute < s.minute)))
  })())
  t.ok(inOrder, 'sorted: a partition\'s minutes side by side')
  t.same(b.due(2), [], 'all in flight')
  // Without groups: by bytes only.
  const c = book({ batchMaxBytes: 4096 })
  applyNow(c, trades, 'w', 0)
  const plain = c.due(1)
  // 5 partitions (3,475 bytes) and the next one's first row fit in 4,096: 11 rows a batch.
  t.same(plain.map(x => x.length), [11, 11, 11, 11, 11, 11, 11, 3], `80 minutes of 40 symbols at the default 4 KiB: ${plain.length} requests`)
  t.ok(plain.every(x => x.reduce((n, s) => n + s.bytes, 0) <= 4096))
  t.equal(plain[1]![0]!.bytes, CANDLE_ROW_BYTES + CANDLE_PARTITION_BYTES, 'a batch\'s first row pays its partition\'s share even when the previous batch had its partition')
  // At most 10 partitions a batch (Cassandra warns above), however large the budget.
  const wide = book({ batchMaxBytes: 1_000_000 })
  applyNow(wide, [...Array.from({ length: 25 }, (_, i) => trade(`ONE${i}`, M0, 10)), ...Array.from({ length: 30 }, (_, i) => trade('MANY', M0 + i * MINUTE_MS, 10))], 'w', 0)
  t.same(wide.due(1).map(x => x.length), [39, 10, 6], 'ten partitions a batch: MANY (30 minutes) and ONE0–ONE8, then ten, then the rest')
  const narrow = new CandleBookState<string>({ idleEvictMs: 1000, batchMaxBytes: 1_000_000, batchMaxPartitions: 3 })
  applyNow(narrow, Array.from({ length: 7 }, (_, i) => trade(`P${i}`, M0, 10)), 'w', 0)
  t.same(narrow.due(1).map(x => x.length), [3, 3, 1])
  // A batch spanning partitions stays under 45 KiB whatever the budget; one partition's may not.
  const deep = book({ batchMaxBytes: 1_000_000 })
  applyNow(deep, [...Array.from({ length: 200 }, (_, i) => trade('DEEP', M0 + i * MINUTE_MS, 10)), ...Array.from({ length: 200 }, (_, i) => trade('WIDE', M0 + i * MINUTE_MS, 10))], 'w', 0)
  const cut = deep.due(1)
  t.same(cut.map(x => x.length), [200, 200], 'each partition alone (200 rows, ~67 KB): the second may not join the first')
  const mixed = book({ batchMaxBytes: 1_000_000 })
  applyNow(mixed, [...Array.from({ length: 100 }, (_, i) => trade('A', M0 + i * MINUTE_MS, 10)), ...Array.from({ length: 100 }, (_, i) => trade('B', M0 + i * MINUTE_MS, 10))], 'w', 0)
  const two = mixed.due(1)
  t.ok(two.every(x => new Set(x.map(s => s.symbol)).size === 1 || x.reduce((n, s) => n + s.bytes, 0) <= 45 * 1024), 'a batch over 45 KiB is one partition\'s')
  t.same(two.map(x => x.length), [100 + Math.floor((45 * 1024 - 100 * 333 - 29 - 362) / 333) + 1, 100 - Math.floor((45 * 1024 - 100 * 333 - 29 - 362) / 333) - 1])
  // A statement alone over the budget is a batch of one.
  const d = book({ batchMaxBytes: 10 })
  applyNow(d, trades.slice(0, 3), 'w', 0)
  t.same(d.due(1).map(x => x.length), [1, 1, 1])
})

t.test('estimateCandleBytes: a row, and a partition\'s share for its first row in a batch', async t => {
  t.equal(estimateCandleBytes(true), 362, 'as measured on Cassandra 5.0 (20 rows in 20 partitions: 7,240 bytes)')
  t.equal(estimateCandleBytes(true) * 20 + estimateCandleBytes(false) * 20, 13_900, '40 rows in 20 partitions: 13,900 bytes')
})

// The simulation: one book, a `trades` table, a candles_1m table with write-timestamp
// semantics, and a seeded random schedule of everything that can happen in between.
interface Apply { trades: Trade[], partials: CandleTrades[], minutes: MinuteState[], waiter: string }

function simulate (seed: number): { problems: string[], steps: number, writes: number, evicted: number, rebuilds: number, refusals: number } {
  const rnd = mulberry32(seed)
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T
  const budget = 1 + Math.floor(rnd() * 1500)
  const b = new CandleBookState<string>({ idleEvictMs: 5_000, batchMaxBytes: budget, evictEveryMs: 500 })
  const problems: string[] = []
  const symbols = ['AAPL', 'MSFT', 'BINANCE:BTCUSDT']
  const pool: Trade[] = []
  for (let i = 0; i < 300; i++) {
    // Ties in one millisecond on purpose: open/close decided by id.
    pool.push(trade(pick(symbols), M0 + Math.floor(rnd() * 4) * MINUTE_MS + Math.floor(rnd() * 20) * 1000, 100 + Math.floor(rnd() * 50), Math.floor(rnd() * 4) * 0.5, uuid(1 + Math.floor(rnd() * 1e5) * 1000 + i)))
  }
  const table = new Map<string, Trade>() // `trades`, by id
  const stored = new Map<string, { writeTs: number, candle: Candle, covered: Set<string> }>() // candles_1m
  const shadow = new Map<MinuteState, Set<string>>() // the ids folded into each state, by the test's own count
  const arrived: Trade[][] = []
  const touched: Apply[] = []
  const loads: Array<{ m: MinuteState, rows: Trade[] | null }> = []
  const waiting = new Map<string, Apply>()
  const inFlight: CandleSnapshot[][] = []
  let now = 0
  let n = 0
  let writes = 0
  let evicted = 0
  let rebuilds = 0
  let refusals = 0
  const keyOf = (symbol: string, minute: number): string => `${symbol}@${minute}`
  const rowsOf = (m: MinuteState): Trade[] => [...table.values()].filter(tr => tr.symbol === m.symbol && minuteOf(tr.ts) === m.minute)

  const release = (ws: readonly string[]): void => {
    for (const w of ws) {
      const a = waiting.get(w)
      if (a === undefined) { problems.push(`released ${w} twice or unknown`); continue }
      waiting.delete(w)
      // Released only when candles_1m holds every trade of the batch.
      for (const tr of a.trades) {
        const s = stored.get(keyOf(tr.symbol, minuteOf(tr.ts)))
        if (s?.covered.has(tr.id) !== true) problems.push(`${w} released before ${tr.id} was durable in ${tr.symbol}@${minuteOf(tr.ts)}`)
      }
    }
  }

  const step = (draining: boolean): void => {
    const r = rnd()
    if (r < 0.2) {
      if (draining) return
      // A batch arrives: new trades, some re-sent (also inside the batch), its rows written first.
      const batch = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => pick(pool))
      if (rnd() < 0.3 && batch.length > 1) batch.push(batch[0]!)
      for (const tr of batch) table.set(tr.id, tr)
      arrived.push(batch)
    } else if (r < 0.32 && arrived.length > 0) {
      const batch = arrived.splice(Math.floor(rnd() * arrived.length), 1)[0]!
      const partials = partialsOf(batch)
      const { minutes, load } = b.touch(partials, now)
      // A rebuild reads `trades` either when it is issued or later (then it may see more).
      for (const m of load) loads.push({ m, rows: rnd() < 0.5 ? rowsOf(m) : null })
      touched.push({ trades: batch, partials, minutes, waiter: `w${n++}` })
    } else if (r < 0.44 && loads.length > 0) {
      const l = loads.splice(Math.floor(rnd() * loads.length), 1)[0]!
      if (rnd() < 0.05) {
        // The rebuild failed: every apply waiting on it fails, and its batch is replayed later.
        b.loadFailed(l.m)
        for (let i = touched.length - 1; i >= 0; i--) {
          const a = touched[i]!
          if (!a.minutes.includes(l.m)) continue
          b.release(a.minutes)
          touched.splice(i, 1)
          arrived.push(a.trades)
        }
        return
      }
      const rows = l.rows ?? rowsOf(l.m)
      rebuilds++
      b.loaded(l.m, rows.map(input))
      shadow.set(l.m, new Set(rows.map(tr => tr.id)))
    } else if (r < 0.58 && touched.length > 0) {
      const ready = touched.filter(a => a.minutes.every(m => !m.loading))
      if (ready.length === 0) return
      const a = pick(ready)
      touched.splice(touched.indexOf(a), 1)
      for (const tr of a.trades) {
        const m = a.minutes[a.partials.findIndex(p => p.symbol === tr.symbol && p.minute === minuteOf(tr.ts))]!
        shadow.get(m)?.add(tr.id)
      }
      if (b.fold(a.minutes, a.partials, a.waiter)) {
        waiting.set(a.waiter, a)
      } else {
        waiting.set(a.waiter, a)
        release([a.waiter])
      }
    } else if (r < 0.68) {
      const next = b.nextDue(now)
      const batches = b.due(now)
      if ((next === null || next > now) !== (batches.length === 0)) problems.push(`nextDue() said ${next} at ${now}, due() gave ${batches.length} batches`)
      for (const batch of batches) {
        for (const s of batch) {
          const covered = new Set(shadow.get(s.state))
          if (!sameCandle(s.candle, aggregateCandle([...covered].map(id => input(table.get(id)!))))) problems.push(`snapshot of ${s.symbol}@${s.minute} v${s.version} is not the aggregate of its trades`)
          ;(s as { covered?: Set<string> }).covered = covered
        }
        if (batch.reduce((x, s) => x + s.bytes, 0) > budget && batch.length > 1) problems.push('a batch over the budget')
        inFlight.push(batch)
      }
    } else if (r < 0.82 && inFlight.length > 0) {
      // Acknowledgements land in any order.
      const batch = inFlight.splice(Math.floor(rnd() * inFlight.length), 1)[0]!
      if (rnd() < 0.05) {
        const s = batch[0]!
        b.refused(s, now + Math.floor(rnd() * 2000))
        refusals++
        if (batch.length > 1) inFlight.push(batch.slice(1))
        return
      }
      for (const s of batch) {
        const key = keyOf(s.symbol, s.minute)
        const old = stored.get(key)
        if (old === undefined || s.writeTs > old.writeTs) stored.set(key, { writeTs: s.writeTs, candle: s.candle, covered: (s as { covered?: Set<string> }).covered! })
        writes++
      }
      release(b.written(batch))
    } else {
      now += Math.floor(rnd() * 3000)
      evicted += b.evict(now)
    }
  }

  let steps = 0
  for (; steps < 1500; steps++) step(false)
  // Quiet: everything arrived is applied, every rebuild done, every write landed.
  for (let guard = 0; guard < 10_000 && (arrived.length + touched.length + loads.length + inFlight.length + b.dirty > 0); guard++) {
    step(true)
    steps++
    if (guard % 10 === 0) now += 3000
  }
  if (arrived.length + touched.length + loads.length + inFlight.length + b.dirty > 0) problems.push('never quiet')
  if (waiting.size > 0) problems.push(`${waiting.size} applies never released`)
  // At a quiet moment every candle is the recomputed aggregate of its minute's trades.
  const byMinute = new Map<string, Trade[]>()
  for (const tr of table.values()) {
    const key = keyOf(tr.symbol, minuteOf(tr.ts))
    let g = byMinute.get(key)
    if (g === undefined) byMinute.set(key, g = [])
    g.push(tr)
  }
  for (const [key, trades] of byMinute) {
    if (!sameCandle(stored.get(key)?.candle, aggregateCandle(trades.map(input)))) problems.push(`candle ${key} is not the aggregate of its ${trades.length} trades`)
  }
  if (stored.size !== byMinute.size) problems.push('a candle without trades')
  return { problems, steps, writes, evicted, rebuilds, refusals }
}

t.test('simulation: any interleaving of arrivals, replays, rebuilds, flushes, acknowledgements, refusals and evictions', async t => {
  const totals = { steps: 0, writes: 0, evicted: 0, rebuilds: 0, refusals: 0 }
  const failed: string[] = []
  for (let seed = 1; seed <= 60; seed++) {
    const r = simulate(seed)
    for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += r[k]
    if (r.problems.length > 0) failed.push(`seed ${seed}: ${r.problems.slice(0, 3).join('; ')}`)
  }
  t.same(failed, [], 'candles equal the aggregate when quiet; no apply released before its trades were durable')
  t.ok(totals.evicted > 50 && totals.rebuilds > totals.evicted && totals.refusals > 10, `exercised: ${JSON.stringify(totals)}`)
})
