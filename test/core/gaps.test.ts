// The ledger of gaps, pure: outages from the watermark to the first trade after,
// coalesced over reconnects that bring nothing; drop spans counted exactly; daemon_down
// from the previous run; and, over any sequence of socket events, trades and drops: no
// two gaps of a reason overlap on a symbol, every trade lost or dropped lies in a gap of
// its reason, no trade received lies strictly inside an outage, closed gaps end ≥ start.
import t from 'tap'
import fc from 'fast-check'
import { GapTracker, monthsBetween, SettledWatermark, type Gap, type TradeMark } from '../../daemon/core/gaps.js'
import { holds, runs } from '../fixtures/fuzz.js'

const settings = { coalesceMs: 5_000, settleMs: 60_000 }
const S = ['A', 'B']

/** Every gap in its final state. */
function finals (tr: GapTracker, into = new Map<string, Gap>()): Map<string, Gap> {
  for (const g of tr.takeChanges()) into.set(g.id, g)
  return into
}

t.test('an outage: from the last trade time received to the first after the socket is back; reconnects that bring nothing coalesce', async t => {
  const tr = new GapTracker(settings, 0, null)
  tr.up(0, S)
  tr.received(100, [{ s: 'A', t: 90 }, { s: 'B', t: 95 }])
  tr.down(200, 'disconnected', S)
  tr.up(300, S)
  tr.down(350, 'disconnected', S)
  tr.up(400, S)
  t.same(tr.open.map(g => [g.reason, g.start, g.end]), [['disconnected', 95, null]], 'open (end null) while ongoing, one gap over two reconnects')
  tr.received(500, [{ s: 'A', t: 405 }, { s: 'B', t: 402 }])
  const gaps = [...finals(tr).values()]
  t.same(gaps.map(g => [g.reason, g.start, g.end, g.symbols, g.dropped]), [['disconnected', 95, 400, S, null]], 'ends at the subscription (earlier than the first trade); dropped unknown')
  t.equal(tr.opened.disconnected, 1)
})

t.test('a first trade earlier than the subscription ends it; a cause changing splits; a quiet socket settles at its subscription', async t => {
  const tr = new GapTracker(settings, 0, null)
  tr.received(10, [{ s: 'A', t: 10 }])
  tr.down(20, 'stalled', S)
  tr.down(30, 'unauthorized', S)
  tr.down(40, 'unauthorized', S)
  tr.up(50, S)
  tr.received(60, [{ s: 'A', t: 48 }])
  tr.down(1000, 'rate_limited', S)
  tr.up(2000, S)
  tr.tick(2000 + 59_999)
  t.equal(tr.open.length, 1, 'still waiting for a trade')
  tr.tick(2000 + 60_000)
  const gaps = [...finals(tr).values()].map(g => [g.reason, g.start, g.end])
  t.same(gaps, [['stalled', 10, 30], ['unauthorized', 30, 48], ['rate_limited', 48, 2000]])
})

t.test('drop spans: exact counts and symbols, coalesced within coalesceMs, closed after it', async t => {
  const tr = new GapTracker(settings, 0, null)
  tr.dropped(1000, 'dropped_queue_full', [{ s: 'A', t: 990 }, { s: 'B', t: 995 }])
  tr.dropped(4000, 'dropped_queue_full', [{ s: 'A', t: 3990 }])
  tr.dropped(4000, 'shed_overload', [{ s: 'B', t: 3991 }])
  t.same(tr.open.map(g => [g.reason, g.end, g.dropped]), [['dropped_queue_full', null, 3], ['shed_overload', null, 1]])
  tr.tick(9001)
  tr.dropped(20_000, 'dropped_queue_full', [{ s: 'B', t: 19_990 }])
  tr.stop(20_001)
  const gaps = [...finals(tr).values()].map(g => [g.reason, g.start, g.end, g.symbols, g.dropped])
  t.same(gaps, [['dropped_queue_full', 990, 3990, S, 3], ['shed_overload', 3991, 3991, ['B'], 1], ['dropped_queue_full', 19_990, 19_990, ['B'], 1]])
})

t.test('daemon_down: from the previous run\'s settled trade time to this run\'s first trade; what it left open ends at its heartbeat', async t => {
  const left: Gap = { id: 'x', reason: 'stalled', start: 50, end: null, symbols: ['A'], dropped: null, openedAt: 60 }
  const tr = new GapTracker(settings, 10_000, { settledT: 70, aliveAt: 900, symbols: S, open: [left] })
  t.same(tr.open.map(g => [g.reason, g.start, g.end, g.symbols]), [['daemon_down', 70, null, S]])
  tr.up(10_500, S)
  tr.received(10_600, [{ s: 'B', t: 10_480 }])
  const gaps = [...finals(tr).values()].map(g => [g.reason, g.start, g.end])
  t.same(gaps, [['stalled', 50, 900], ['daemon_down', 70, 10_480]])
  t.same(new GapTracker(settings, 5, { settledT: null, aliveAt: 3, symbols: [], open: [] }).open, [], 'a previous run that subscribed nothing leaves no gap')
})

t.test('the settled watermark waits for every record of a frame and of every frame before it', async t => {
  const w = new SettledWatermark()
  t.equal(w.settled, null)
  w.frame(1, 2, 100)
  w.frame(2, 1, 110)
  w.frame(3, 0, 120)
  w.settle(2)
  t.equal(w.settled, null, 'frame 1 is not acknowledged yet')
  w.settle(1)
  t.equal(w.settled, null, 'one of its two records')
  w.settle(1)
  t.equal(w.settled, 120, 'all acknowledged: the latest received')
  w.frame(4, 2, 130)
  w.frame(5, 1, 125)
  w.settle(4)
  w.settle(5)
  t.equal(w.settled, 120, 'frame 4 still awaits one')
  w.settle(4)
  t.equal(w.settled, 130)
  t.same(monthsBetween(Date.UTC(2024, 10, 30), Date.UTC(2025, 1, 1)), ['2024-11', '2024-12', '2025-01', '2025-02'])
})

type Step =
  | { kind: 'wait', ms: number }
  | { kind: 'trades', n: number }
  | { kind: 'down', reason: 'disconnected' | 'stalled' | 'unauthorized' | 'rate_limited' }
  | { kind: 'up' }
  | { kind: 'drop', reason: 'dropped_queue_full' | 'shed_overload', n: number }
  | { kind: 'tick' }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 20_000 }) }),
  fc.record({ kind: fc.constant('trades' as const), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('down' as const), reason: fc.constantFrom('disconnected' as const, 'stalled' as const, 'unauthorized' as const, 'rate_limited' as const) }),
  fc.record({ kind: fc.constant('up' as const) }),
  fc.record({ kind: fc.constant('drop' as const), reason: fc.constantFrom('dropped_queue_full' as const, 'shed_overload' as const), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('tick' as const) })
)

t.test('over any sequence: no overlap per reason and symbol, every loss inside a gap of its reason, nothing received inside an outage', async t => {
  holds(t, fc.property(fc.boolean(), fc.array(step, { maxLength: 60 }), (resumed, steps) => {
    let now = 1_000_000
    const tr = new GapTracker(settings, now, resumed ? { settledT: now - 5000, aliveAt: now - 4000, symbols: S, open: [] } : null)
    const all = new Map<string, Gap>()
    // Trades are stamped with the clock (Finnhub's time, no lag): while the socket is up they are received, while down they are lost.
    let socketUp = false
    // Trades before the first connection attempt of a first run are no gap: there was no store to miss them.
    let started = false
    const received: TradeMark[] = []
    const lost: Array<TradeMark & { reasons: string[] }> = resumed ? S.map(s => ({ s, t: now - 100, reasons: ['daemon_down'] })) : []
    const dropped: Array<TradeMark & { reason: string }> = []
    let k = 0
    for (const st of steps) {
      now += 1
      if (st.kind === 'wait') now += st.ms
      else if (st.kind === 'trades') {
        const trades = Array.from({ length: st.n }, () => ({ s: S[k++ % 2] as string, t: now }))
        if (socketUp) { tr.received(now, trades); received.push(...trades) } else if (resumed || started) lost.push(...trades.map(x => ({ ...x, reasons: ['disconnected', 'stalled', 'unauthorized', 'rate_limited', 'daemon_down'] })))
      } else if (st.kind === 'down') {
        socketUp = false
        started = true
        tr.down(now, st.reason, S)
      } else if (st.kind === 'up') {
        socketUp = true
        started = true
        tr.up(now, S)
      } else if (st.kind === 'drop') {
        if (!socketUp) continue
        const trades = Array.from({ length: st.n }, () => ({ s: S[k++ % 2] as string, t: now }))
        tr.received(now, trades)
        tr.dropped(now, st.reason, trades)
        dropped.push(...trades.map(x => ({ ...x, reason: st.reason })))
      } else tr.tick(now)
      finals(tr, all)
    }
    tr.stop(now + 1)
    finals(tr, all)
    const gaps = [...all.values()]
    for (const g of gaps) if (g.end === null || g.end < g.start) return false
    for (const a of gaps) {
      for (const b of gaps) {
        if (a.id >= b.id || a.reason !== b.reason || !a.symbols.some(s => b.symbols.includes(s))) continue
        if (a.start < (b.end as number) && b.start < (a.end as number)) return false
      }
    }
    const inside = (x: TradeMark, g: Gap): boolean => g.symbols.includes(x.s) && g.start <= x.t && x.t <= (g.end as number)
    for (const d of dropped) if (!gaps.some(g => g.reason === d.reason && inside(d, g))) return false
    // A trade Finnhub sent while the socket was down lies in an outage.
    for (const x of lost) if (!gaps.some(g => x.reasons.includes(g.reason) && inside(x, g))) return false
    const outages = gaps.filter(g => g.dropped === null)
    for (const x of received) if (outages.some(g => g.symbols.includes(x.s) && g.start < x.t && x.t < (g.end as number))) return false
    for (const g of gaps) if ((g.dropped === null) !== (g.reason !== 'dropped_queue_full' && g.reason !== 'shed_overload')) return false
    return true
  }), { numRuns: runs(500) })
})
