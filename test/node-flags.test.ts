// The daemon's V8 heap flags and the warning for an in-flight bound that would not fit.
import t from 'tap'
import fc from 'fast-check'
import { DAEMON_NODE_FLAGS, HEAP_BYTES_PER_RECORD, heapBoundWarning, OLD_SPACE_MIB } from '../daemon/node-flags.js'

t.test('the flags cap the old space and the young generation', async t => {
  t.same(DAEMON_NODE_FLAGS, [`--max-old-space-size=${OLD_SPACE_MIB}`, '--max-semi-space-size=4'])
})

t.test('warns only when the in-flight bound could fill three quarters of the heap', async t => {
  const heap = 256 * 1048576 + 8 * 1048576 // what V8 reports for --max-old-space-size=256 (old space + young)
  t.equal(heapBoundWarning(2000, 8, heap), null, 'the defaults fit')
  t.equal(heapBoundWarning(5000, 32, heap), null, '160,000 records fit')
  const limitRecords = Math.floor(heap * 0.75 / HEAP_BYTES_PER_RECORD)
  t.equal(heapBoundWarning(1, limitRecords, heap), null, 'right at the bound')
  const w = heapBoundWarning(1, limitRecords + 1, heap)
  t.type(w, 'string')
  t.match(w, /workers\.batchSize × workers\.maxQueue = \d+ records in flight/, 'names the settings')
  t.match(w, /lower workers\.maxQueue or workers\.batchSize, or raise --max-old-space-size/, 'and what to do')
  t.match(heapBoundWarning(100_000, 64, heap), /6400000 records in flight could need ~6250 MiB of heap, more than three quarters of the 264 MiB/)
})

t.test('any batch settings: a warning exactly when the bound exceeds three quarters of the heap, always naming the settings', async t => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 2 ** 40 }), (batchSize, maxQueue, heap) => {
    const w = heapBoundWarning(batchSize, maxQueue, heap)
    const over = batchSize * maxQueue * HEAP_BYTES_PER_RECORD > heap * 0.75
    if (over !== (w !== null)) return false
    return w === null || (w.includes(`${batchSize * maxQueue} records in flight`) && w.includes('workers.maxQueue') && !/NaN|Infinity|undefined/.test(w))
  }), { numRuns: 500 })
  t.pass('500 random settings')
})
