// The cluster fault suite's pure parts: which broker leads the trade partitions and which
// stack node that is (tools/chaos/cluster.ts), and the longest time no trade was stored
// (tools/chaos/no-store.ts), each against a brute force over random inputs; the report's
// new column.
import t from 'tap'
import fc from 'fast-check'
import { leadingBroker, nodeOfBroker } from '../../tools/chaos/cluster.js'
import { longestNoStore, type StoreSample } from '../../tools/chaos/no-store.js'
import { renderChaosMarkdown, totalsOf } from '../../tools/chaos/report.js'
import type { ScenarioResult } from '../../tools/chaos/harness.js'

t.test('leadingBroker: the broker leading the most partitions, lowest id on a tie, null without a leader', async t => {
  t.equal(leadingBroker([{ id: 0, leader: 2 }, { id: 1, leader: 3 }, { id: 2, leader: 2 }]), 2)
  t.equal(leadingBroker([{ id: 0, leader: 3 }, { id: 1, leader: 1 }, { id: 2, leader: 2 }]), 1, 'a tie: the lowest id')
  t.equal(leadingBroker([{ id: 0, leader: -1 }]), null, 'no leader (-1) is no broker')
  t.equal(leadingBroker([]), null)
  fc.assert(fc.property(fc.array(fc.record({ id: fc.nat(20), leader: fc.integer({ min: -1, max: 5 }) }), { maxLength: 12 }), parts => {
    const got = leadingBroker(parts)
    const counts = [1, 2, 3, 4, 5, 0].map(id => ({ id, n: parts.filter(p => p.leader === id).length })).filter(c => c.n > 0)
    if (counts.length === 0) return got === null
    const max = Math.max(...counts.map(c => c.n))
    return got === Math.min(...counts.filter(c => c.n === max).map(c => c.id))
  }))
})

t.test('nodeOfBroker maps the broker id to its stack node and names the known ones when none fits', async t => {
  const handles = [
    { name: 'kafka-1', kafkaBrokerId: 1 }, { name: 'kafka-2', kafkaBrokerId: 2 }, { name: 'kafka-3', kafkaBrokerId: 3 },
    { name: 'cassandra-1', kafkaBrokerId: null }
  ]
  t.equal(nodeOfBroker(2, handles), 'kafka-2')
  t.equal(nodeOfBroker(3, handles), 'kafka-3')
  t.throws(() => nodeOfBroker(7, handles), /broker 7 is none of the stack's nodes \(kafka-1=1, kafka-2=2, kafka-3=3\)/)
})

/** The definition, by brute force: every pair of samples i ≤ j, all sending from i to j, equal totals. */
function bruteForce (s: readonly StoreSample[]): number {
  let best = 0
  for (let i = 0; i < s.length; i++) {
    for (let j = i + 1; j < s.length; j++) {
      const span = s.slice(i, j + 1)
      if (span.every(x => x.sending) && span[0]?.stored === span[span.length - 1]?.stored) best = Math.max(best, (s[j]?.at ?? 0) - (s[i]?.at ?? 0))
    }
  }
  return best
}

t.test('longestNoStore equals the brute force on random non-decreasing sample runs', async t => {
  t.equal(longestNoStore([]), 0)
  t.equal(longestNoStore([{ at: 0, stored: 0, sending: true }]), 0)
  t.equal(longestNoStore([
    { at: 0, stored: 0, sending: true }, { at: 500, stored: 10, sending: true }, { at: 1000, stored: 10, sending: true },
    { at: 1500, stored: 10, sending: true }, { at: 2000, stored: 11, sending: true }
  ]), 1000, 'stored 10 from 500 to 1500')
  t.equal(longestNoStore([
    { at: 0, stored: 5, sending: true }, { at: 500, stored: 5, sending: false }, { at: 9000, stored: 5, sending: false }
  ]), 0, 'not counted while nothing is being sent')
  const samples = fc.array(fc.record({ dt: fc.integer({ min: 1, max: 2000 }), rise: fc.oneof(fc.constant(0), fc.nat(50)), sending: fc.boolean() }), { maxLength: 40 })
    .map(steps => {
      let at = 1_000_000
      let stored = 0
      return steps.map(s => { at += s.dt; stored += s.rise; return { at, stored, sending: s.sending } })
    })
  fc.assert(fc.property(samples, s => longestNoStore(s) === bruteForce(s)))
})

t.test('the report has a longest no-store column, in seconds', async t => {
  const s = {
    name: 'cluster-x',
    title: 't',
    ok: true,
    seconds: 1,
    faults: 1,
    badInputs: 0,
    sent: 10,
    inKafka: 10,
    stored: 10,
    lost: 0,
    duplicated: 0,
    dropped: {},
    droppedTotal: 0,
    inFlightAtEdges: 0,
    candles: [],
    lostUpstream: 0,
    gaps: [],
    recoveryMs: [1200],
    longestNoStoreMs: 12_345,
    peakRssMiB: 100,
    maxProducerQueue: 0,
    maxStallS: 0.01,
    unexpectedExits: [],
    checks: []
  } satisfies ScenarioResult
  const md = renderChaosMarkdown({ startedAt: 'x', seconds: 1, cluster: true, ratePerSec: 300, machine: { cpus: 2, node: 'v20' }, totals: totalsOf([s]), scenarios: [s] })
  t.match(md, /three-broker \/ three-node cluster/)
  t.match(md, /\| recovery ms \| longest no-store s \|/)
  t.match(md, /\| 1200 \| 12\.3 \| 100 \| 10 \|/)
})
