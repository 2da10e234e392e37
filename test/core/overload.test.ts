// Load shedding at the socket: only while the main thread is saturated and the process
// role is behind while more is admitted than stored; held while catching up; backing
// off as soon as either clears; an outage (idle thread) and its recovery never shed.
import t from 'tap'
import fc from 'fast-check'
import { ShedController } from '../../daemon/core/overload.js'
import { holds, runs } from '../fixtures/fuzz.js'

const settings = { backlogSeconds: 5, busyUtilization: 0.9, maxShare: 0.9 }

t.test('saturated and behind: the share grows step by step to its cap; either condition clearing lowers it', async t => {
  const c = new ShedController(settings)
  const overloaded = { utilization: 0.98, backlog: 100_000, storedPerSec: 10_000, admittedPerSec: 20_000 }
  t.same([1, 2, 3].map(() => c.update(overloaded)), [0.1, 0.2, 0.3])
  for (let i = 0; i < 20; i++) c.update(overloaded)
  t.equal(c.share, 0.9, 'never above maxShare')
  t.equal(c.update({ ...overloaded, backlog: 10_000 }), 0.7, 'caught up (backlog under 5 s of what it stores): lower')
  t.equal(c.update({ ...overloaded, utilization: 0.5 }), 0.5, 'the thread has room again: lower')
  c.update({ ...overloaded, utilization: 0.5 })
  c.update({ ...overloaded, utilization: 0.5 })
  t.equal(c.update({ ...overloaded, utilization: 0.5 }), 0)
  t.equal(c.update({ ...overloaded, utilization: 0.5 }), 0, 'not below 0')
})

t.test('an outage never sheds: nothing is stored, the backlog grows, but the thread is idle', async t => {
  const c = new ShedController(settings)
  for (let i = 0; i < 60; i++) c.update({ utilization: 0.05, backlog: 50_000 + i * 2000, storedPerSec: 0, admittedPerSec: 2000 })
  t.equal(c.share, 0)
  t.equal(c.drop(1000), 0)
  for (let i = 0; i < 10; i++) c.update({ utilization: 1, backlog: 100, storedPerSec: 10_000, admittedPerSec: 10_000 })
  t.equal(c.share, 0, 'a busy thread that keeps up sheds nothing either')
})

t.test('catching up holds the share: the recovery from an outage sheds nothing, an overload keeps what it needs', async t => {
  const c = new ShedController(settings)
  // After an outage: a big backlog, the thread saturated draining it, but 4,000/s admitted against 16,000/s stored.
  for (let i = 0; i < 10; i++) c.update({ utilization: 1, backlog: 200_000 - i * 12_000, storedPerSec: 16_000, admittedPerSec: 4_000 })
  t.equal(c.share, 0, 'nothing shed while the backlog drains')
  // After a Kafka restart: the producer flushes what Kafka missed (the thread busy), the consumer rejoins (nothing stored yet).
  for (let i = 0; i < 5; i++) c.update({ utilization: 1, backlog: 60_000, storedPerSec: 0, admittedPerSec: 4_000 })
  t.equal(c.share, 0, 'nothing stored in the second (the consumer away, not starved): held')
  // An overload: raised while admitting more than is stored, held once the shed share makes it drain.
  for (let i = 0; i < 3; i++) c.update({ utilization: 1, backlog: 200_000, storedPerSec: 16_000, admittedPerSec: 33_000 * (1 - c.share) })
  t.equal(c.share, 0.3)
  t.equal(c.update({ utilization: 1, backlog: 190_000, storedPerSec: 16_000, admittedPerSec: 15_000 }), 0.3, 'draining: held, not raised')
  t.equal(c.update({ utilization: 1, backlog: 10_000, storedPerSec: 16_000, admittedPerSec: 15_000 }), 0.1, 'caught up: lowered')
  holds(t, fc.property(fc.array(fc.record({ utilization: fc.double({ min: 0, max: 1, noNaN: true }), backlog: fc.nat(1e7), storedPerSec: fc.nat(1e5), lead: fc.nat(1e5) }), { maxLength: 60 }), samples => {
    // Never raised while the admitted rate is at most the stored rate.
    const d = new ShedController(settings)
    for (const x of samples) {
      const before = d.share
      const after = d.update({ utilization: x.utilization, backlog: x.backlog, storedPerSec: x.storedPerSec, admittedPerSec: Math.max(0, x.storedPerSec - x.lead) })
      if (after > before) throw new Error(`raised from ${before} to ${after} while catching up`)
    }
  }), { numRuns: runs(200), seed: 23 })
})

t.test('drop() sheds the share of what arrives, carried across small frames', async t => {
  const c = new ShedController(settings)
  for (let i = 0; i < 3; i++) c.update({ utilization: 1, backlog: 1e6, storedPerSec: 1000, admittedPerSec: 2000 })
  t.equal(c.share, 0.3)
  let dropped = 0
  for (let i = 0; i < 1000; i++) dropped += c.drop(1)
  t.equal(dropped, 300, 'frames of one trade shed 30 % too')
  t.equal(c.drop(0), 0)
  holds(t, fc.property(fc.array(fc.nat(200), { maxLength: 100 }), frames => {
    const d = new ShedController(settings)
    for (let i = 0; i < 5; i++) d.update({ utilization: 1, backlog: 1e6, storedPerSec: 1, admittedPerSec: 2 })
    let sum = 0
    let n = 0
    for (const f of frames) {
      const k = d.drop(f)
      if (k < 0 || k > f) throw new Error(`dropped ${k} of ${f}`)
      sum += k
      n += f
    }
    if (Math.abs(sum - n * 0.5) > 1) throw new Error(`dropped ${sum} of ${n} at share 0.5`)
  }), { numRuns: runs(200), seed: 17 })
})
