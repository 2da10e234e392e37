// A decode task that throws: tried once more, then split down to the records, so only
// the records that fail alone are poison and the rest of the batch goes on.
import t from 'tap'
import { join } from 'node:path'
import { singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { decodeIsolating, type DecodeIsolatingHooks } from '../../daemon/core/decode-isolating.js'
import { RowView } from '../../daemon/core/cql-rows.js'
import { encodeBatch, packValues, processBatch, writerSchemasFor, type EncodedBatch } from '../../daemon/core/process-batch.js'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'

const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), []))
const encoder = new TradeEncoder(type, { kind: 'single-object' })
const m = Date.UTC(2024, 4, 1, 12, 30)
const PT = m + 60_000
const trade = (i: number, p = 10 + i): TradeRecord => ({ s: 'AAPL', p, t: m + i, v: 1, c: null, ingest_ts: m + i, ordinal: 0 })
const BOMB = Buffer.from('bomb')

interface Probe { hooks: DecodeIsolatingHooks, events: string[] }
function probe (stopping = false): Probe {
  const events: string[] = []
  return {
    events,
    hooks: {
      stopping: () => stopping,
      onRetry: () => { events.push('retry') },
      onSplit: () => { events.push('split') },
      pause: async ms => { events.push(`pause ${ms}`) }
    }
  }
}

/** The worker's function, except that a task holding a BOMB value throws, as a dying worker would. */
/** The worker's whole task: decode, then encode the rows as it hands them back. */
const task = (part: readonly Buffer[]): EncodedBatch => encodeBatch(processBatch(decoder, packValues(part), PT), 0n)

/** The worker's function, except that a task holding a BOMB value throws, as a dying worker would. */
function runner (calls: number[]): (part: readonly Buffer[]) => Promise<EncodedBatch> {
  return async part => {
    calls.push(part.length)
    if (part.some(v => v === BOMB)) throw new Error('worker exited with code 1')
    return task(part)
  }
}

const prices = (b: EncodedBatch): number[] => { const v = new RowView(b.rows); return Array.from({ length: v.count }, (_, i) => v.row(i).price) }

t.test('a task that works is run once', async t => {
  const calls: number[] = []
  const p = probe()
  const out = await decodeIsolating([0, 1, 2].map(i => encoder.encode(trade(i))), runner(calls), p.hooks)
  t.same(calls, [3])
  t.same([...out.rowRecord], [0, 1, 2])
  t.same(p.events, [])
})

t.test('a task that fails once and then works: retried, nothing poison', async t => {
  let first = true
  const p = probe()
  const values = [0, 1].map(i => encoder.encode(trade(i)))
  const out = await decodeIsolating(values, async part => {
    if (first) { first = false; throw new Error('worker terminated') }
    return task(part)
  }, p.hooks)
  t.same([...out.rowRecord], [0, 1])
  t.same(out.poison, [])
  t.same(p.events, ['retry', 'pause 50'])
})

t.test('records that make the task fail are isolated as internal poison; every other record is a row, with its own index', async t => {
  const calls: number[] = []
  const p = probe()
  const values = Array.from({ length: 10 }, (_, i) => i === 3 || i === 8 ? BOMB : encoder.encode(trade(i)))
  // A trade in both halves (same content, same id): folded once after the join.
  values[9] = encoder.encode(trade(0))
  const out = await decodeIsolating(values, runner(calls), p.hooks)
  t.same(out.poison.map(x => [x.index, x.reason]), [[3, 'internal'], [8, 'internal']])
  t.match(out.poison[0]?.detail, /worker exited with code 1/)
  t.same([...out.rowRecord], [0, 1, 2, 4, 5, 6, 7, 9])
  t.same(prices(out), [10, 11, 12, 14, 15, 16, 17, 10])
  t.same(out.partials[0]?.rows, [0, 1, 2, 3, 4, 5, 6], 'the partial points at the joined rows')
  t.equal(out.partials.length, 1)
  t.equal(out.partials[0]?.acc.trade_count, 7, 'the repeated trade is folded once')
  t.same(p.events, ['retry', 'pause 50', 'split'])
  t.equal(calls[0], 10)
  t.equal(calls[1], 10)
})

t.test('a single record that fails twice is poison at once', async t => {
  const p = probe()
  const out = await decodeIsolating([BOMB], runner([]), p.hooks)
  t.same(out.poison.map(x => [x.index, x.reason]), [[0, 'internal']])
  t.equal(new RowView(out.rows).count, 0)
})

t.test('while stopping, a failure is thrown: the batch stays uncommitted', async t => {
  await t.rejects(decodeIsolating([BOMB, encoder.encode(trade(1))], runner([]), probe(true).hooks), /worker exited/)
})
