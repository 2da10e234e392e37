// The fault suite's verdict on one scenario, once the daemon has stored everything and
// stopped: what reached Kafka and Cassandra read back (`gather`), then every trade sent
// accounted for by the one trade accounting (tools/verify/accounting.ts) and the
// scenario's bounds checked (`verdict`, no I/O): lost, duplicated, the counted drops
// against the kill/stop windows, foreign records, the candles of every resolution kept
// (each table against its recomputation from the stored trades), exits, memory, stalls and the
// producer queue; and the ledger of gaps against the account (`gapAccount`): every trade
// sent and never stored lies inside a gap row of its symbol and of a reason that explains
// it, no trade stored lies strictly inside a socket outage, the drop gaps count exactly
// the drops counted, and no gap is recorded where nothing was lost unless the scenario's
// faults explain it (a restart, a socket fault).

import type cassandra from 'cassandra-driver'
import type { Config } from '../../daemon/config/schema.js'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { storedGaps, type StoredGap } from '../../daemon/cassandra/gaps.js'
import { RESOLUTION_NAMES, RESOLUTIONS, type ResolutionName } from '../../daemon/core/candle-periods.js'
import { DROP_REASONS, type GapReason } from '../../daemon/core/gaps.js'
import { accountScenario, type Window } from '../verify/accounting.js'
import { compareCandles, expectedTrades, readCandles, readTopicIds, readTrades, recomputeCandles, type Expected, type SentLog, type StoredTrade } from '../verify/verify.js'

/** The daemon's resident memory must stay under this in every scenario (it holds ~150–250 MiB here). */
export const RSS_BOUND_MIB = 512
/** The daemon's main thread must never be blocked this long (it reads the Finnhub socket). */
export const STALL_BOUND_S = 2

/** What a scenario left: the trades sent, the topic's ids, the stored rows' ids, the candles checked against the stored trades. */
export interface Gathered {
  expected: Expected
  /** Decoded trade ids in the topic → how many records carry each. */
  inKafka: Map<string, number>
  /** The trade id of each stored row. */
  stored: string[]
  /** The time of each stored row, by symbol. */
  storedTimes: Map<string, number[]>
  /** The rows of the gaps table. */
  gaps: StoredGap[]
  /** Each resolution the daemon keeps, its stored candles against their recomputation. */
  candles: CandleCheck[]
}

/** One resolution's candles against their recomputation from the stored trades. */
export interface CandleCheck {
  resolution: ResolutionName
  /** Recomputed candles whose stored row equals them. */
  exact: number
  /** Candles recomputed from the stored trades (one per symbol and period with a trade). */
  expected: number
  /** Stored rows for a period with no stored trade. */
  extra: number
  /** The first differences (at most 20). */
  problems: string[]
}

/**
 * Every resolution the config keeps, its candles read (each (symbol, partition) once)
 * and compared with their recomputation from `stored`; a period never spans two UTC
 * days, so the days of the trades read are the days of the periods to compare.
 */
export async function checkCandles (client: cassandra.Client, config: Config, symbols: readonly string[], times: readonly number[], stored: readonly StoredTrade[]): Promise<CandleCheck[]> {
  const out: CandleCheck[] = []
  for (const name of RESOLUTION_NAMES.filter(n => config.candles.resolutions.includes(n))) {
    const res = RESOLUTIONS[name]
    const c = compareCandles(await readCandles(client, config, symbols, times, res), recomputeCandles(stored, res))
    out.push({ resolution: name, exact: c.exact, expected: c.expected, extra: c.extra, problems: c.problems.slice(0, 20) })
  }
  return out
}

/** True when every resolution's candles equal their recomputation. */
export const candlesExact = (checks: readonly CandleCheck[]): boolean =>
  checks.length > 0 && checks.every(c => c.problems.length === 0 && c.exact === c.expected && c.extra === 0)

/** "1m 412/412, 5m 90/90, …": exact / recomputed per resolution, extra rows named. */
export function candleSummary (checks: readonly CandleCheck[]): string {
  return checks.map(c => `${c.resolution} ${c.exact.toLocaleString('en-US')}/${c.expected.toLocaleString('en-US')}${c.extra > 0 ? ` +${c.extra} extra` : ''}`).join(', ') || 'none checked'
}

/** Rebuilds what the simulators sent, reads the topic back and the stored trades and candles (through the direct, unproxied endpoints). */
export async function gather (config: Config, kafkaBootstrap: string, sentLogs: readonly SentLog[]): Promise<Gathered> {
  const expected = expectedTrades(sentLogs)
  const topic = await readTopicIds(kafkaBootstrap, config.kafka.topic, config.schemaPath)
  const client = await connectCassandra(config.cassandra)
  try {
    const times = [...expected.days].map(d => Date.parse(d))
    const stored = await readTrades(client, config, [...expected.symbols], times)
    const storedTimes = new Map<string, number[]>()
    for (const r of stored) storedTimes.set(r.symbol, [...(storedTimes.get(r.symbol) ?? []), r.trade_ts])
    const from = Math.min(...times) - 86_400_000
    const gaps = await storedGaps(client, config.cassandra, from, Date.now() + 86_400_000, null, 100_000)
    return {
      expected,
      inKafka: topic.ids,
      stored: stored.map(r => r.trade_id),
      storedTimes,
      gaps,
      candles: await checkCandles(client, config, [...expected.symbols], times, stored)
    }
  } finally {
    await client.shutdown()
  }
}

/** What the suite saw of the daemon over the scenario (tools/chaos/observer.ts). */
export interface Observed {
  readonly dropped: Readonly<Record<string, number>>
  readonly droppedTotal: number
  readonly peakRssMiB: number
  readonly maxStallS: number
  readonly maxProducerQueue: number
}

export interface VerdictInput {
  gathered: Gathered
  /** Records the scenario wrote into the topic itself (no trade sent for them). */
  foreignIds: ReadonlySet<string>
  /** The kill/stop windows. */
  edges: readonly Window[]
  faultTimes: ReadonlyArray<{ at: number, what: string }>
  observed: Observed
  unexpectedExits: readonly string[]
  maxBufferedMessages: number
  /** Gap reasons the scenario's faults explain without a trade lost (socket faults, a restart). */
  gapReasons: readonly GapReason[]
  /** Records each trade may have in the topic (redundant ingest: one per member); 1 when absent. */
  copiesPerTrade?: number
}

/** A gap row beside the account: how many trades sent and never stored lie in it, how many stored ones strictly inside. */
export interface GapRow {
  reason: GapReason
  start: string
  end: string | null
  symbols: number
  dropped: number | null
  lostInside: number
  storedInside: number
}

export interface Check { what: string, ok: boolean, detail: string }

/** The counts of a scenario's result (tools/chaos/harness.ts, ScenarioResult). */
export interface VerdictCounts {
  sent: number
  inKafka: number
  stored: number
  lost: number
  duplicated: number
  droppedTotal: number
  inFlightAtEdges: number
  /** Per resolution, its candles against their recomputation. */
  candles: CandleCheck[]
  /** Trades sent and never stored (not in Kafka, or in Kafka and not stored). */
  lostUpstream: number
  gaps: GapRow[]
}

const clock = (t: number): string => new Date(t).toISOString().slice(11, 23)

/** The checks, in the order they are reported, and the counts of the scenario's result. */
export function verdict (input: VerdictInput): { checks: Check[], counts: VerdictCounts } {
  const { gathered: g, foreignIds, observed: o } = input
  const droppedTotal = o.droppedTotal
  const a = accountScenario({ sent: g.expected.ids, inKafka: g.inKafka, stored: g.stored, foreign: foreignIds, windows: input.edges, countedDrops: droppedTotal, copiesPerTrade: input.copiesPerTrade ?? 1 })
  const { lost, duplicated, lostAfterKafka, kafkaExtra, storedUnexpected } = a
  const missingOutsideEdges = a.missingOutsideWindows
  // Where the trades missing outside the windows were sent, against the faults' times: a failure names when.
  const when = a.missingTimes.length === 0
    ? ''
    : `; sent at ${[...new Set(a.missingTimes.sort((x, y) => x - y).map(clock))].slice(0, 8).join(', ')}` +
      `; faults at ${input.faultTimes.map(f => `${clock(f.at)} ${f.what.slice(0, 40)}`).join('; ')}`
  const checks: Check[] = []
  const check = (what: string, ok: boolean, detail = ''): void => { checks.push({ what, ok, detail }) }
  check('lost = 0', lost === 0, `${lostAfterKafka} in Kafka and not stored; ${missingOutsideEdges} sent, not in Kafka, outside kill/stop windows, against ${droppedTotal} counted drops${lost > 0 ? when : ''}`)
  check('duplicated = 0', duplicated === 0, `${kafkaExtra} extra Kafka records${(input.copiesPerTrade ?? 1) > 1 ? ` (beyond ${input.copiesPerTrade} per trade)` : ''}, ${storedUnexpected} stored rows for no trade sent`)
  // A counted drop can also fall inside a kill/stop window (overload shedding goes on
  // up to a SIGTERM under load): the drops cover every trade missing outside the
  // windows exactly and exceed them by at most the trades missing inside (each of
  // those either dropped and counted or in flight when the daemon died or stopped).
  check('every trade missing from Kafka outside kill/stop windows is a counted drop, and no drop is counted for a trade in Kafka', a.dropsInsideWindows >= 0 && a.dropsInsideWindows <= a.missingInsideWindows,
    `${missingOutsideEdges} missing outside the windows, ${a.missingInsideWindows} inside, ${droppedTotal} counted (${JSON.stringify(o.dropped)})`)
  if (foreignIds.size > 0) check('no record the scenario wrote into the topic as not a trade is stored', a.foreignStored === 0, `${a.foreignStored} of ${foreignIds.size} stored`)
  for (const c of g.candles) {
    check(`${RESOLUTIONS[c.resolution].table} equals its recomputation from the stored trades`, candlesExact([c]),
      `${c.exact} of ${c.expected} exact${c.extra > 0 ? `, ${c.extra} extra` : ''}${c.problems.length > 0 ? `; ${c.problems.slice(0, 3).join('; ')}` : ''}`)
  }
  check('the daemon never exited unless killed or stopped', input.unexpectedExits.length === 0, input.unexpectedExits.join('; '))
  check(`peak RSS under ${RSS_BOUND_MIB} MiB`, o.peakRssMiB > 0 && o.peakRssMiB < RSS_BOUND_MIB, `${o.peakRssMiB} MiB`)
  check(`the main thread never blocked ${STALL_BOUND_S} s or more`, o.maxStallS < STALL_BOUND_S, `longest event-loop delay ${o.maxStallS.toFixed(3)} s`)
  const bound = input.maxBufferedMessages
  check('producer queue within kafka.maxBufferedMessages', o.maxProducerQueue <= bound, `max ${o.maxProducerQueue}, bound ${bound}`)
  const gaps = gapAccount(input, checks)
  return {
    checks,
    counts: { sent: g.expected.sent, inKafka: a.inKafka, stored: a.stored, lost, duplicated, droppedTotal, inFlightAtEdges: a.inFlightAtWindows, candles: g.candles, ...gaps }
  }
}

/** Reasons that explain a trade missing from Kafka: sent inside a kill/stop window, or outside. */
const IN_WINDOW: readonly GapReason[] = ['daemon_down', ...DROP_REASONS]
const OUTSIDE_WINDOWS: readonly GapReason[] = DROP_REASONS
const SOCKET: readonly GapReason[] = ['disconnected', 'stalled', 'unauthorized', 'rate_limited']

/** The ledger of gaps against the account; pushes its checks, returns the rows for the report. */
export function gapAccount (input: VerdictInput, checks: Check[]): { lostUpstream: number, gaps: GapRow[] } {
  const { gathered: g, edges } = input
  const storedIds = new Set(g.stored)
  const inside = (gap: StoredGap, s: string, t: number): boolean => gap.symbols.includes(s) && gap.start <= t && t <= (gap.end ?? Infinity)
  const rows = g.gaps.map(gap => ({ gap, lostInside: 0, storedInside: 0 }))
  const unexplained: Array<{ t: number, s: string }> = []
  let lostUpstream = 0
  for (const [id, { symbol, t }] of g.expected.ids) {
    if (storedIds.has(id)) continue
    lostUpstream++
    const reasons = g.inKafka.has(id) ? [] : edges.some(w => t >= w.from && t <= w.to) ? IN_WINDOW : OUTSIDE_WINDOWS
    let found = false
    for (const row of rows) {
      if (!inside(row.gap, symbol, t)) continue
      row.lostInside++
      if (reasons.includes(row.gap.reason)) found = true
    }
    if (!found) unexplained.push({ t, s: symbol })
  }
  for (const row of rows) {
    for (const s of row.gap.symbols) {
      for (const t of g.storedTimes.get(s) ?? []) if (t > row.gap.start && t < (row.gap.end ?? Infinity)) row.storedInside++
    }
  }
  const show = (t: number): string => new Date(t).toISOString().slice(11, 23)
  checks.push({
    what: 'every trade sent and never stored lies inside a gap row of its symbol and of a reason that explains it',
    ok: unexplained.length === 0,
    detail: `${lostUpstream - unexplained.length} of ${lostUpstream} inside${unexplained.length > 0 ? `; outside any: ${unexplained.slice(0, 5).map(x => `${x.s}@${show(x.t)}`).join(', ')}` : ''}`
  })
  const exactOutages = rows.filter(r => SOCKET.includes(r.gap.reason))
  checks.push({
    what: 'no trade stored lies strictly inside a socket outage (its bounds are the last trade received before and the first after)',
    ok: exactOutages.every(r => r.storedInside === 0),
    detail: exactOutages.map(r => `${r.gap.reason} ${r.storedInside}`).join(', ') || 'no socket outage'
  })
  const byReason = (reason: GapReason): number => rows.filter(r => r.gap.reason === reason).reduce((n, r) => n + (r.gap.dropped ?? 0), 0)
  const o = input.observed.dropped
  checks.push({
    what: 'the drop gaps count exactly the drops counted (queue_full, overload)',
    ok: byReason('dropped_queue_full') === (o['queue_full'] ?? 0) && byReason('shed_overload') === (o['overload'] ?? 0),
    detail: `gaps ${byReason('dropped_queue_full')} queue_full, ${byReason('shed_overload')} overload; counted ${o['queue_full'] ?? 0}, ${o['overload'] ?? 0}`
  })
  const idle = rows.filter(r => r.lostInside === 0 && !input.gapReasons.includes(r.gap.reason) && !(r.gap.reason === 'daemon_down' && edges.length > 1))
  checks.push({
    what: 'no gap row where nothing was lost, unless a restart or a socket fault explains it',
    ok: idle.length === 0,
    detail: `${rows.length} gap rows${idle.length > 0 ? `; unexplained: ${idle.map(r => `${r.gap.reason} ${show(r.gap.start)}`).join(', ')}` : ''}`
  })
  checks.push({ what: 'no gap left open after the daemon stopped', ok: rows.every(r => r.gap.end !== null), detail: `${rows.filter(r => r.gap.end === null).length} open` })
  return {
    lostUpstream,
    gaps: rows.map(r => ({ reason: r.gap.reason, start: new Date(r.gap.start).toISOString(), end: r.gap.end === null ? null : new Date(r.gap.end).toISOString(), symbols: r.gap.symbols.length, dropped: r.gap.dropped, lostInside: r.lostInside, storedInside: r.storedInside }))
  }
}
