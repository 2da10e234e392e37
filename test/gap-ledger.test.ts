// The ledger's shell (daemon/ingest/gap-ledger.ts) without the stack: Cassandra is an
// in-process fake whose writes fail on demand, the clock is the test's. Rows wait in
// gaps.json while writes fail and survive a restart; they are retried with backoff
// (1 s doubling to 30 s) until written; past gaps.maxPendingWrites the oldest closed
// ones are dropped, counted and logged; and whatever gaps.json or gaps.heartbeat hold
// at start (truncated, garbage, huge, wrong types), the start is a warning naming the
// file, never a crash, and no row it writes is one Cassandra would refuse.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type cassandra from 'cassandra-driver'
import { Registry } from 'prom-client'
import { validateConfig } from '../daemon/config/load.js'
import { GAP_REASONS } from '../daemon/core/gaps.js'
import { GAPS_HEARTBEAT_FILE, GAPS_STATE_FILE, GapLedger, STATE_BYTES_PER_ROW } from '../daemon/ingest/gap-ledger.js'
import { createLogger } from '../daemon/log.js'
import { registerGapMetrics } from '../daemon/metrics/gaps.js'
import { holdsAsync, runs } from './fixtures/fuzz.js'

const T0 = Date.parse('2026-03-10T14:00:00Z')

/** The gaps table as the fake holds it: month/gap_id → the row's values in INSERT order. */
class FakeCassandra {
  failing = true
  attempts: number[] = []
  readonly rows = new Map<string, unknown[]>()
  constructor (readonly clock: { now: number }) {}
  readonly client = {
    execute: async (cql: string, params: unknown[]): Promise<void> => {
      this.attempts.push(this.clock.now)
      await new Promise(resolve => setImmediate(resolve))
      if (this.failing) throw new Error('NoHostAvailableError: All host(s) tried for query failed')
      checkRow(cql, params)
      this.rows.set(`${String(params[0])}/${String(params[1])}`, params)
    },
    shutdown: async (): Promise<void> => {}
  }
}

/** What Cassandra would refuse: a wrong type for a column, an invalid date. */
function checkRow (cql: string, p: unknown[]): void {
  if (!cql.includes('.gaps (month, gap_id, reason, start_ts, end_ts, symbols, dropped, source, opened_at, updated_at)')) throw new Error(`unexpected CQL ${cql}`)
  const date = (d: unknown): boolean => d instanceof Date && !Number.isNaN(d.getTime())
  const ok = typeof p[0] === 'string' && /^\d{4}-\d{2}$/.test(p[0]) && typeof p[1] === 'string' && (GAP_REASONS as readonly unknown[]).includes(p[2]) &&
    date(p[3]) && (p[4] === null || date(p[4])) && Array.isArray(p[5]) && p[5].every(s => typeof s === 'string') &&
    (p[6] === null || (typeof p[6] === 'number' && Number.isSafeInteger(p[6]) && p[6] >= 0)) && typeof p[7] === 'string' && date(p[8]) && date(p[9])
  if (!ok) throw new Error(`Cassandra would refuse this row: ${JSON.stringify(p)}`)
}

/** A fresh state directory holding `files`, removed when the test ends. */
function dirWith (t: Test, files: Record<string, string | Buffer> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'finnhubd-gap-ledger-'))
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

interface Harness { ledger: GapLedger, db: FakeCassandra, clock: { now: number }, lines: Array<Record<string, unknown>>, dir: string }

function harness (t: Test, gaps: Record<string, number> = {}, dir = dirWith(t), db?: FakeCassandra): Harness {
  const clock = db?.clock ?? { now: T0 }
  const fake = db ?? new FakeCassandra(clock)
  const lines: Array<Record<string, unknown>> = []
  const config = validateConfig({ finnhub: { symbols: ['AAPL', 'MSFT'] }, gaps: { coalesceMs: 1_000, ...gaps }, stateDir: dir })
  const ledger = new GapLedger({
    config,
    stateDir: dir,
    log: createLogger({ level: 'debug', write: l => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => clock.now }),
    now: () => clock.now,
    connect: async () => fake.client as unknown as cassandra.Client
  })
  t.teardown(() => ledger.stop(clock.now))
  return { ledger, db: fake, clock, lines, dir }
}

/** Lets a write in flight finish (the fake answers on the next turns of the loop). */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
}

function saved (dir: string): { pending: Array<{ id: string, end: number | null }>, open: unknown[] } {
  return JSON.parse(readFileSync(join(dir, GAPS_STATE_FILE), 'utf8')) as { pending: Array<{ id: string, end: number | null }>, open: unknown[] }
}

t.test('while writes fail, rows wait in gaps.json and are retried with backoff (1 s doubling to 30 s) until written', async t => {
  const h = harness(t)
  const { ledger, db, clock } = h
  ledger.up(['AAPL', 'MSFT'])
  ledger.received(clock.now, [{ s: 'AAPL', t: clock.now - 5 }], 1)
  ledger.down('disconnected', ['AAPL', 'MSFT'])
  t.equal(ledger.counters.pendingWrites, 1, 'the opening is queued')
  t.same(saved(h.dir).pending.map(g => g.end), [null], 'and persisted, open')

  const start = clock.now
  for (let s = 0; s <= 130; s++) {
    clock.now = start + s * 1000
    ledger.tick()
    await settle()
  }
  const offsets = db.attempts.map(a => (a - start) / 1000)
  t.same(offsets, [0, 1, 3, 7, 15, 31, 61, 91, 121], 'retried after 1, 2, 4, 8, 16 s, then every 30 s')
  t.equal(ledger.counters.writeErrors, offsets.length)
  t.equal(ledger.counters.pendingWrites, 1)
  t.ok(h.lines.some(l => l['level'] === 'warn' && /could not be written to Cassandra; they stay queued and are retried/.test(String(l['msg']))), 'said (rate-limited)')
  t.ok(h.lines.filter(l => /could not be written/.test(String(l['msg']))).length < offsets.length, 'not once per attempt')

  db.failing = false
  clock.now += 30_000
  ledger.tick()
  await settle()
  t.equal(ledger.counters.pendingWrites, 0, 'written once Cassandra is back')
  t.same(saved(h.dir).pending, [], 'and gone from the state file')
  const row = [...db.rows.values()][0] as unknown[]
  t.match(row, ['2026-03', /^2026-03-10T14:00:00\.000Z\/disconnected\//, 'disconnected', new Date(start - 5), null, ['AAPL', 'MSFT'], null])

  // Success resets the backoff: the next failure is retried after 1 s.
  db.failing = true
  ledger.up(['AAPL', 'MSFT'])
  ledger.received(clock.now, [{ s: 'AAPL', t: clock.now }], 1)
  const again = clock.now
  db.attempts = []
  for (let s = 0; s <= 3; s++) { clock.now = again + s * 1000; ledger.tick(); await settle() }
  t.same(db.attempts.map(a => (a - again) / 1000), [0, 1, 3], 'the closing row: backoff from 1 s again')
})

t.test('rows queued at a stop are written by the next run once Cassandra is back', async t => {
  const dir = dirWith(t)
  const clock = { now: T0 }
  const db = new FakeCassandra(clock)
  const first = harness(t, {}, dir, db)
  first.ledger.up(['AAPL'])
  first.ledger.dropped('shed_overload', [{ s: 'AAPL', t: T0 - 100 }, { s: 'AAPL', t: T0 - 50 }])
  clock.now += 2_000
  first.ledger.tick()
  await settle()
  await first.ledger.stop(clock.now)
  t.same(saved(dir).pending.map(g => g.end), [T0 - 50], 'the closed drop span waits in gaps.json')
  t.match(first.lines.at(-1), { level: 'warn', msg: /stay queued in the state directory for the next run/, pending: 1 })

  db.failing = false
  clock.now += 60_000
  const second = harness(t, {}, dir, db)
  second.ledger.tick()
  await settle()
  t.equal(second.ledger.counters.pendingWrites, 0)
  const rows = [...db.rows.values()]
  t.same(rows.map(r => [r[2], r[6]]).sort(), [['daemon_down', null], ['shed_overload', 2]], 'the queued drop span, and the downtime between the runs')
})

t.test('past gaps.maxPendingWrites the oldest closed rows are dropped, counted in finnhubd_gap_writes_dropped_total and logged', async t => {
  const h = harness(t, { maxPendingWrites: 2 })
  const { ledger, db, clock } = h
  const registry = new Registry()
  registerGapMetrics(registry, ledger.counters)
  ledger.up(['AAPL'])
  const ends: number[] = []
  for (let i = 0; i < 5; i++) {
    ledger.dropped('dropped_queue_full', [{ s: 'AAPL', t: clock.now - 10 }])
    ends.push(clock.now - 10)
    clock.now += 2_000
    ledger.tick()
    await settle()
  }
  ledger.down('stalled', ['AAPL'])
  ledger.dropped('dropped_queue_full', [{ s: 'AAPL', t: clock.now }])
  t.equal(ledger.counters.pendingWrites, 2, 'the bound holds')
  const pending = saved(h.dir).pending
  t.same(pending.map(g => g.end), [null, null], 'open rows are kept: the closed ones went first')
  t.equal(ledger.counters.writesDropped, 5, 'every closed span dropped unwritten')
  t.match(await registry.metrics(), /^finnhubd_gap_writes_dropped_total 5$/m)
  t.match(await registry.metrics(), /^finnhubd_gap_writes_pending 2$/m)
  const said = h.lines.filter(l => /a gap row was dropped unwritten: Cassandra has been away too long \(gaps\.maxPendingWrites\)/.test(String(l['msg'])))
  t.match(said[0], { level: 'error', reason: 'dropped_queue_full', end: new Date(ends[0] as number).toISOString(), dropped: 1 }, 'the first dropped row, named')
  t.ok(said.length < 5, 'rate-limited')

  db.failing = false
  clock.now += 60_000
  ledger.tick()
  await settle()
  t.same([...db.rows.values()].map(r => r[2]).sort(), ['dropped_queue_full', 'stalled'], 'only the kept rows reach Cassandra')
})

/** A ledger's own state file after one outage and one drop span, for the mangled cases. */
async function ownState (t: Test): Promise<string> {
  const h = harness(t)
  h.ledger.up(['AAPL', 'MSFT'])
  h.ledger.down('disconnected', ['AAPL', 'MSFT'])
  h.ledger.dropped('shed_overload', [{ s: 'AAPL', t: T0 }])
  await h.ledger.stop(h.clock.now)
  return readFileSync(join(h.dir, GAPS_STATE_FILE), 'utf8')
}

t.test('a corrupt or hostile gaps.json is a warning naming the file, never a crash', async t => {
  const good = await ownState(t)
  const state = JSON.parse(good) as Record<string, unknown>
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['truncated', good.slice(0, Math.floor(good.length / 2)), /not JSON \(truncated or overwritten\?\)/],
    ['empty', '', /not JSON/],
    ['garbage bytes', Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0x80]), /not JSON/],
    ['null', 'null', /not a gap state: not a JSON object/],
    ['a number', '5', /not a JSON object/],
    ['a list', '[]', /not a JSON object/],
    ['another version', JSON.stringify({ ...state, version: 2 }), /version is not 1/],
    ['aliveAt a string', JSON.stringify({ ...state, aliveAt: 'yesterday' }), /aliveAt is not a time/],
    ['aliveAt past what a Date holds', JSON.stringify({ ...state, aliveAt: 1e300 }), /aliveAt is not a time/],
    ['settledT negative', JSON.stringify({ ...state, settledT: -1 }), /settledT is neither null nor a time/],
    ['symbols not symbols', JSON.stringify({ ...state, symbols: [1, 'not a symbol!'] }), /symbols is not a list of Finnhub symbols/],
    ['pending an object', JSON.stringify({ ...state, pending: {} }), /open or pending is not a list/],
    ['huge', 'x'.repeat((1 + GAP_REASONS.length) * STATE_BYTES_PER_ROW + 1), /more than this daemon writes/]
  ]
  for (const [name, content, why] of cases) {
    const dir = dirWith(t, { [GAPS_STATE_FILE]: content })
    const h = harness(t, { maxPendingWrites: 1 }, dir)
    const warned = h.lines.find(l => l['level'] === 'warn' && /^the gap state of the previous run is/.test(String(l['msg'])))
    t.match(warned, { file: join(dir, GAPS_STATE_FILE), msg: why }, name)
    t.same(h.ledger.open, [], `${name}: no daemon_down gap from it`)
    t.equal(h.ledger.counters.pendingWrites, 0)
    h.ledger.up(['AAPL'])
    t.doesNotThrow(() => saved(dir), `${name}: the file is rewritten whole`)
  }

  // Some rows not understood: those are left out, the rest is used.
  const pending = state['pending'] as Array<Record<string, unknown>>
  const mixed = { ...state, pending: [...pending, { ...pending[0], id: 7 }, { ...pending[0], start: 'soon' }, { ...pending[0], reason: 'gremlins' }, { ...pending[0], dropped: -3 }, null, 'x'] }
  const dir = dirWith(t, { [GAPS_STATE_FILE]: JSON.stringify(mixed) })
  const h = harness(t, {}, dir)
  t.match(h.lines.find(l => /not understood are left out/.test(String(l['msg']))), { level: 'warn', file: join(dir, GAPS_STATE_FILE), skipped: 6 })
  t.same(h.ledger.open.map(g => g.reason), ['daemon_down'], 'the previous run is still followed by its daemon_down gap')
  h.db.failing = false
  h.ledger.tick()
  await settle()
  t.same([...h.db.rows.values()].map(r => r[2]).sort(), ['daemon_down', 'disconnected', 'shed_overload'], 'the rows understood are written')
})

t.test('a corrupt heartbeat file is a warning naming it; gaps.json\'s times are used', async t => {
  const good = await ownState(t)
  const aliveAt = (JSON.parse(good) as { aliveAt: number }).aliveAt
  const beat = (settled: number, alive: number): Buffer => { const b = Buffer.alloc(16); b.writeDoubleLE(settled, 0); b.writeDoubleLE(alive, 8); return b }
  const cases: Array<[string, Buffer]> = [
    ['truncated', beat(T0, T0 + 9e6).subarray(0, 11)],
    ['too long', Buffer.concat([beat(T0, T0 + 9e6), Buffer.alloc(1 << 20, 0x41)])],
    ['a clock past what a Date holds', beat(T0, 1e300)],
    ['an infinite trade time', beat(Infinity, T0 + 9e6)],
    ['garbage', Buffer.from('0123456789abcdef')]
  ]
  for (const [name, content] of cases) {
    const dir = dirWith(t, { [GAPS_STATE_FILE]: good, [GAPS_HEARTBEAT_FILE]: content })
    const h = harness(t, {}, dir)
    t.match(h.lines.find(l => /gap heartbeat of the previous run is not understood/.test(String(l['msg']))), { level: 'warn', file: join(dir, GAPS_HEARTBEAT_FILE) }, name)
    t.match(h.lines.find(l => /previous run ended at its last heartbeat/.test(String(l['msg']))), { aliveAt: new Date(aliveAt).toISOString() }, `${name}: the JSON's clock`)
  }
  // A heartbeat later than the JSON's last save wins: a kill -9 leaves only it current.
  const dir = dirWith(t, { [GAPS_STATE_FILE]: good, [GAPS_HEARTBEAT_FILE]: beat(T0 + 4e6, T0 + 5e6) })
  const h = harness(t, {}, dir, new FakeCassandra({ now: T0 + 9e6 }))
  t.match(h.lines.find(l => /previous run ended at its last heartbeat/.test(String(l['msg']))), { aliveAt: new Date(T0 + 5e6).toISOString(), settledTradeTime: new Date(T0 + 4e6).toISOString() })
  t.equal(h.ledger.open[0]?.start, T0 + 4e6, 'daemon_down from the settled trade time the heartbeat holds')
})

t.test('whatever gaps.json and gaps.heartbeat hold, the ledger starts, and every row it writes is one Cassandra takes', async t => {
  const good = JSON.parse(await ownState(t)) as Record<string, unknown>
  const anyTime = fc.oneof(fc.integer({ min: T0 - 1e10, max: T0 + 1e10 }), fc.double(), fc.constantFrom(0, -1, 8.64e15, 8.64e15 + 1), fc.jsonValue())
  const gapLike = fc.record({
    id: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue()),
    reason: fc.oneof(fc.constantFrom(...GAP_REASONS), fc.string({ maxLength: 12 })),
    start: anyTime,
    end: fc.oneof(fc.constant(null), anyTime),
    symbols: fc.oneof(fc.array(fc.constantFrom('AAPL', 'BINANCE:BTCUSDT', '', 'a b', 'MSFT')), fc.jsonValue()),
    dropped: fc.oneof(fc.constant(null), fc.integer({ min: -5, max: 1e6 }), fc.double(), fc.jsonValue()),
    openedAt: anyTime
  }, { requiredKeys: [] })
  const stateLike = fc.record({
    version: fc.oneof(fc.constant(1), fc.jsonValue()),
    aliveAt: anyTime,
    settledT: fc.oneof(fc.constant(null), anyTime),
    symbols: fc.oneof(fc.array(fc.constantFrom('AAPL', 'MSFT', 'x y')), fc.jsonValue()),
    open: fc.oneof(fc.array(gapLike, { maxLength: 4 }), fc.jsonValue()),
    pending: fc.oneof(fc.array(gapLike, { maxLength: 8 }), fc.jsonValue())
  }, { requiredKeys: [] })
  const goodText = JSON.stringify(good)
  const stateFile = fc.oneof(
    stateLike.map(s => JSON.stringify(s)),
    fc.jsonValue().map(v => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map(b => Buffer.from(b)),
    fc.integer({ min: 0, max: goodText.length }).map(n => goodText.slice(0, n))
  )
  const heartbeat = fc.oneof(
    fc.constant(null),
    fc.uint8Array({ maxLength: 40 }).map(b => Buffer.from(b)),
    fc.tuple(fc.double(), fc.double()).map(([a, b]) => { const buf = Buffer.alloc(16); buf.writeDoubleLE(a, 0); buf.writeDoubleLE(b, 8); return buf })
  )
  await holdsAsync(t, fc.asyncProperty(stateFile, heartbeat, async (content, beat) => {
    const dir = mkdtempSync(join(tmpdir(), 'finnhubd-gap-ledger-'))
    writeFileSync(join(dir, GAPS_STATE_FILE), content)
    if (beat !== null) writeFileSync(join(dir, GAPS_HEARTBEAT_FILE), beat)
    const clock = { now: T0 }
    const db = new FakeCassandra(clock)
    db.failing = false
    const lines: string[] = []
    const ledger = new GapLedger({
      config: validateConfig({ finnhub: { symbols: ['AAPL'] }, gaps: { maxPendingWrites: 4 }, stateDir: dir }),
      stateDir: dir,
      log: createLogger({ level: 'debug', write: l => { lines.push(l) } }),
      now: () => clock.now,
      connect: async () => db.client as unknown as cassandra.Client
    })
    try {
      if (ledger.counters.pendingWrites > 4) return false
      ledger.up(['AAPL'])
      ledger.received(clock.now, [{ s: 'AAPL', t: clock.now }], 1)
      clock.now += 61_000
      ledger.tick()
      await settle()
      await settle()
      // Every row was taken (checkRow threw otherwise and it would still be pending).
      if (ledger.counters.writeErrors !== 0 || ledger.counters.pendingWrites !== 0) return false
      // Nothing said about either file names anything but the file.
      for (const line of lines) {
        const l = JSON.parse(line) as Record<string, unknown>
        if (/previous run is|heartbeat of the previous run/.test(String(l['msg'])) && l['file'] !== join(dir, GAPS_STATE_FILE) && l['file'] !== join(dir, GAPS_HEARTBEAT_FILE)) return false
      }
      return true
    } finally {
      await ledger.stop(clock.now)
      rmSync(dir, { recursive: true, force: true })
    }
  }), { numRuns: runs(150) })
})
