// The one trade accounting (tools/verify/accounting.ts) of the bench and the fault suite,
// property-based: every trade sent is given a fate (stored, in Kafka only, missing), with
// duplicates, rows for no trade sent, foreign records and kill/stop windows around; the
// accounting must find exactly the fates it was given.
import t from 'tap'
import fc from 'fast-check'
import { accountScenario, settleDrops, type Window } from '../../tools/verify/accounting.js'

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
      if (fate.kind === 'kafka-only') { want.lostAfterKafka++; return }
      want.stored++
      for (let r = 0; r < fate.rows; r++) stored.push(id)
    })
    s.strangers.forEach((rows, i) => { for (let r = 0; r < rows; r++) stored.push(`stranger-${i}`); want.stored++; want.unexpected += rows })
    const foreign = new Set<string>()
    s.foreign.forEach((isStored, i) => {
      const id = `foreign-${i}`
      foreign.add(id)
      inKafka.set(id, 1)
      if (isStored) { stored.push(id); want.stored++; want.unexpected++; want.foreignStored++ }
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
    const { missingTimes, ...counts } = a
    if (JSON.stringify(counts) !== JSON.stringify(expected)) throw new Error(`got ${JSON.stringify(counts)}, want ${JSON.stringify(expected)}`)
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
