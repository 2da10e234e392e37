// The one trade accounting (tools/verify/accounting.ts) of the bench and the fault suite,
// property-based: every trade sent is given a fate (stored, in Kafka only, missing), with
// duplicates, rows for no trade sent, foreign records and kill/stop windows around; the
// accounting must find exactly the fates it was given.
import t from 'tap'
import fc from 'fast-check'
import { accountIds, accountScenario, settleDrops, StoredRowTally, UNEXPECTED_SAMPLE, type Window } from '../../tools/verify/accounting.js'
import { TradeIdTable } from '../../tools/verify/id-table.js'
import { uuidString } from '../../daemon/core/cql-rows.js'

type Fate = { kind: 'stored', records: number, rows: number } | { kind: 'kafka-only', records: number } | { kind: 'missing' }

const fate: fc.Arbitrary<Fate> = fc.oneof(
  fc.record({ kind: fc.constant('stored' as const), records: fc.integer({ min: 1, max: 3 }), rows: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('kafka-only' as const), records: fc.integer({ min: 1, max: 3 }) }),
  fc.constant({ kind: 'missing' as const })
)

const scenario = fc.record({
  trades: fc.array(fc.record({ t: fc.integer({ min: 0, max: 999 }), fate }), { maxLength: 60 }),
  /** Stored rows (count) for ids never sent. */
  strangers: fc.array(fc.integer({ min: 1, max: 2 }), { maxLength: 4 }),
  /** Foreign records: stored or not. */
  foreign: fc.array(fc.boolean(), { maxLength: 4 }),
  windows: fc.array(fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 200 })).map(([from, len]): Window => ({ from, to: from + len })), { maxLength: 3 }),
  countedDrops: fc.integer({ min: 0, max: 70 })
})

t.test('settleDrops: each counted drop explains one missing trade', async t => {
  fc.assert(fc.property(fc.nat(1000), fc.nat(1000), (missing, drops) => {
    const { lost, overCounted } = settleDrops(missing, drops)
    return lost >= 0 && overCounted >= 0 && Math.min(lost, overCounted) === 0 && lost - overCounted === missing - drops
  }))
  t.same(settleDrops(10, 3), { lost: 7, overCounted: 0 })
  t.same(settleDrops(3, 10), { lost: 0, overCounted: 7 })
})

t.test('accountScenario finds exactly the fates it was given', async t => {
  fc.assert(fc.property(scenario, s => {
    const sent = new Map<string, { t: number }>()
    const inKafka = new Map<string, number>()
    const stored: string[] = []
    const want = { inKafka: 0, stored: 0, kafkaExtra: 0, lostAfterKafka: 0, inside: 0, outside: 0, unexpected: 0, foreignStored: 0 }
    const wantLostIds: string[] = []
    const wantUnexpectedIds: string[] = []
    const inWindow = (time: number): boolean => s.windows.some(w => time >= w.from && time <= w.to)
    s.trades.forEach(({ t: time, fate }, i) => {
      const id = `trade-${i}`
      sent.set(id, { t: time })
      if (fate.kind === 'missing') {
        if (inWindow(time)) want.inside++
        else want.outside++
        return
      }
      inKafka.set(id, fate.records)
      want.inKafka++
      want.kafkaExtra += fate.records - 1
      if (fate.kind === 'kafka-only') { want.lostAfterKafka++; wantLostIds.push(id); return }
      want.stored++
      for (let r = 0; r < fate.rows; r++) stored.push(id)
    })
    s.strangers.forEach((rows, i) => { for (let r = 0; r < rows; r++) stored.push(`stranger-${i}`); want.stored++; want.unexpected += rows; wantUnexpectedIds.push(`stranger-${i}`) })
    const foreign = new Set<string>()
    s.foreign.forEach((isStored, i) => {
      const id = `foreign-${i}`
      foreign.add(id)
      inKafka.set(id, 1)
      if (isStored) { stored.push(id); want.stored++; want.unexpected++; want.foreignStored++; wantUnexpectedIds.push(id) }
    })
    const a = accountScenario({ sent, inKafka, stored, foreign, windows: s.windows, countedDrops: s.countedDrops })
    const dropsInside = s.countedDrops - want.outside
    const expected = {
      inKafka: want.inKafka,
      stored: want.stored,
      kafkaExtra: want.kafkaExtra,
      lostAfterKafka: want.lostAfterKafka,
      missingOutsideWindows: want.outside,
      missingInsideWindows: want.inside,
      storedUnexpected: want.unexpected,
      foreignStored: want.foreignStored,
      lost: want.lostAfterKafka + Math.max(0, want.outside - s.countedDrops),
      duplicated: want.kafkaExtra + want.unexpected,
      dropsInsideWindows: dropsInside,
      inFlightAtWindows: want.inside - Math.max(0, Math.min(dropsInside, want.inside))
    }
    const { missingTimes, lostAfterKafkaIds, unexpectedIds, ...counts } = a
    if (JSON.stringify(counts) !== JSON.stringify(expected)) throw new Error(`got ${JSON.stringify(counts)}, want ${JSON.stringify(expected)}`)
    // The trades lost past Kafka and the rows for no trade sent are named.
    if (JSON.stringify([...lostAfterKafkaIds].sort()) !== JSON.stringify(wantLostIds.sort())) throw new Error('the trades lost past Kafka are named')
    if (JSON.stringify([...unexpectedIds].sort()) !== JSON.stringify(wantUnexpectedIds.sort())) throw new Error('the rows for no trade sent are named')
    // Every trade sent is in exactly one place.
    if (a.inKafka + a.missingInsideWindows + a.missingOutsideWindows !== sent.size) throw new Error('a trade is unaccounted for')
    if (missingTimes.length !== a.missingOutsideWindows || missingTimes.some(inWindow)) throw new Error('the missing times are those outside the windows')
    // Nothing is lost exactly when everything in Kafka is stored and the drops explain what Kafka lacks.
    return (a.lost === 0) === (want.lostAfterKafka === 0 && want.outside <= s.countedDrops)
  }), { numRuns: 500 })
  t.pass('500 generated scenarios')
})

t.test('hand cases: a clean run, a loss past Kafka, a stop window, a duplicate', async t => {
  const sent = new Map([['a', { t: 10 }], ['b', { t: 20 }], ['c', { t: 30 }]])
  const clean = accountScenario({ sent, inKafka: new Map([['a', 1], ['b', 1], ['c', 1]]), stored: ['a', 'b', 'c'], foreign: new Set(), windows: [], countedDrops: 0 })
  t.match(clean, { inKafka: 3, stored: 3, lost: 0, duplicated: 0, inFlightAtWindows: 0 })
  const pastKafka = accountScenario({ sent, inKafka: new Map([['a', 1], ['b', 1], ['c', 1]]), stored: ['a', 'b'], foreign: new Set(), windows: [], countedDrops: 5 })
  t.match(pastKafka, { lost: 1, lostAfterKafka: 1 }, 'a drop never excuses a trade that reached Kafka')
  const stopped = accountScenario({ sent, inKafka: new Map([['a', 1]]), stored: ['a'], foreign: new Set(), windows: [{ from: 15, to: 25 }], countedDrops: 1 })
  t.match(stopped, { lost: 0, missingOutsideWindows: 1, missingInsideWindows: 1, dropsInsideWindows: 0, inFlightAtWindows: 1 }, 'c dropped and counted, b in flight at the stop')
  t.same(stopped.missingTimes, [30])
  const twice = accountScenario({ sent, inKafka: new Map([['a', 2], ['b', 1], ['c', 1]]), stored: ['a', 'b', 'c', 'zz'], foreign: new Set(), windows: [], countedDrops: 0 })
  t.match(twice, { duplicated: 2, kafkaExtra: 1, storedUnexpected: 1, stored: 4 })
})

t.test('accountScenario names the trades lost past Kafka and the rows for no trade sent', async t => {
  const sent = new Map([['a', { t: 1 }], ['b', { t: 2 }], ['c', { t: 3 }]])
  const a = accountScenario({ sent, inKafka: new Map([['a', 1], ['b', 1], ['c', 1]]), stored: ['a', 'x', 'x', 'y'], foreign: new Set(), windows: [], countedDrops: 0 })
  t.same([...a.lostAfterKafkaIds].sort(), ['b', 'c'])
  t.same([...a.unexpectedIds].sort(), ['x', 'y'])
  t.match(a, { lost: 2, storedUnexpected: 3, duplicated: 3 })
})

// The bench's row-by-row account against the compact id table.
const uuid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(b => uuidString(b, 0))
const benchRun = fc.record({
  /** Distinct trades sent: how many times each was sent (identical re-sends), its symbol tag, its rows stored under its own symbol and under another. */
  trades: fc.uniqueArray(fc.record({ id: uuid, sends: fc.integer({ min: 1, max: 3 }), tag: fc.nat(3), rows: fc.nat(3), misfiled: fc.nat(2) }), { selector: x => x.id, maxLength: 80 }),
  /** Rows for ids never sent. */
  strangers: fc.uniqueArray(fc.record({ id: uuid, rows: fc.integer({ min: 1, max: 2 }), tag: fc.nat(3) }), { selector: x => x.id, maxLength: 15 }),
  countedDrops: fc.nat(100),
  capacity: fc.integer({ min: 1, max: 128 })
}).filter(r => { const sent = new Set(r.trades.map(x => x.id)); return r.strangers.every(x => !sent.has(x.id)) })

t.test('accountIds: stored distinct + not stored = sent, duplicates counted exactly, extras named', async t => {
  let runs = 0
  fc.assert(fc.property(benchRun, r => {
    runs++
    const table = new TradeIdTable(r.capacity)
    let sent = 0
    for (const tr of r.trades) { for (let i = 0; i < tr.sends; i++) table.add(tr.id, tr.tag); sent += tr.sends }
    const rows: Array<{ id: string, tag: number }> = []
    for (const tr of r.trades) {
      for (let i = 0; i < tr.rows; i++) rows.push({ id: tr.id, tag: tr.tag })
      for (let i = 0; i < tr.misfiled; i++) rows.push({ id: tr.id, tag: tr.tag + 1 + i })
    }
    for (const x of r.strangers) for (let i = 0; i < x.rows; i++) rows.push({ id: x.id, tag: x.tag })
    // The order rows come back in must not matter.
    rows.sort((a, b) => a.id.localeCompare(b.id) || a.tag - b.tag)
    const tally = new StoredRowTally(table)
    for (const row of rows) tally.row(row.id, row.tag)
    const a = accountIds(sent, tally, r.countedDrops)
    const storedDistinct = r.trades.filter(x => x.rows > 0).length
    const extraRows = r.trades.reduce((n, x) => n + Math.max(0, x.rows - 1) + x.misfiled, 0) + r.strangers.reduce((n, x) => n + x.rows, 0)
    const expectUnexpected = r.strangers.map(x => x.id).sort().slice(0, UNEXPECTED_SAMPLE)
    const checks: Array<[string, boolean]> = [
      ['sent', a.sent === sent],
      ['distinct', a.distinctTrades === r.trades.length && a.identicalResends === sent - r.trades.length],
      ['stored distinct + not stored = sent', storedDistinct + a.notStored === a.distinctTrades],
      ['every row is stored once or duplicated', a.stored === rows.length && a.stored === storedDistinct + a.duplicated],
      ['duplicates exactly', a.duplicated === extraRows],
      ['lost against the drops', a.lost === Math.max(0, a.notStored - r.countedDrops) && a.overCountedDrops === Math.max(0, r.countedDrops - a.notStored) && a.lost - a.overCountedDrops === a.notStored - r.countedDrops],
      ['extras named', JSON.stringify(tally.unexpected) === JSON.stringify(expectUnexpected)]
    ]
    const failed = checks.filter(([, ok]) => !ok).map(([what]) => what)
    if (failed.length > 0) throw new Error(`${failed.join(', ')}: ${JSON.stringify(a)}`)
  }), { numRuns: 300 })
  t.equal(runs >= 300, true, `${runs} generated runs`)
})

t.test('accountIds hand cases: clean, a loss explained by drops, a re-send, a misfiled row, a stranger', async t => {
  const [a, b, c, x] = ['00000000-0000-5000-8000-000000000001', '00000000-0000-5000-8000-000000000002', '00000000-0000-5000-8000-000000000003', '00000000-0000-5000-8000-0000000000ff']
  const tableOf = (): TradeIdTable => { const tb = new TradeIdTable(); tb.add(a, 0); tb.add(b, 1); tb.add(c, 1); tb.add(c, 1); return tb }
  const clean = new StoredRowTally(tableOf());
  [[a, 0], [b, 1], [c, 1]].forEach(([id, tag]) => clean.row(id as string, tag as number))
  t.same(accountIds(4, clean, 0), { sent: 4, distinctTrades: 3, identicalResends: 1, stored: 3, notStored: 0, countedDrops: 0, lost: 0, overCountedDrops: 0, duplicated: 0 })
  const dropped = new StoredRowTally(tableOf())
  dropped.row(a, 0)
  t.match(accountIds(4, dropped, 1), { notStored: 2, lost: 1, overCountedDrops: 0 }, 'one counted drop explains one of the two missing')
  const messy = new StoredRowTally(tableOf());
  [[a, 0], [a, 0], [b, 0], [b, 1], [x, 2]].forEach(([id, tag]) => messy.row(id as string, tag as number))
  t.match(accountIds(4, messy, 3), { stored: 5, notStored: 1, duplicated: 3, lost: 0, overCountedDrops: 2 })
  t.same(messy.unexpected, [x])
})
