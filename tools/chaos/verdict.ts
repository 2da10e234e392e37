// The fault suite's verdict on one scenario, once the daemon has stored everything and
// stopped: what reached Kafka and Cassandra read back (`gather`), then every trade sent
// accounted for by the one trade accounting (tools/verify/accounting.ts) and the
// scenario's bounds checked (`verdict`, no I/O): lost, duplicated, the counted drops
// against the kill/stop windows, foreign records, candles, exits, memory, stalls and the
// producer queue.

import type { Config } from '../../daemon/config/schema.js'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { accountScenario, type Window } from '../verify/accounting.js'
import { candleDifferences, expectedTrades, readCandles, readTopicIds, readTrades, recomputeCandles, type Expected, type SentLog } from '../verify/verify.js'

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
  candles: number
  candleProblems: string[]
}

/** Rebuilds what the simulators sent, reads the topic back and the stored trades and candles (through the direct, unproxied endpoints). */
export async function gather (config: Config, kafkaBootstrap: string, sentLogs: readonly SentLog[]): Promise<Gathered> {
  const expected = expectedTrades(sentLogs)
  const topic = await readTopicIds(kafkaBootstrap, config.kafka.topic, config.schemaPath)
  const client = await connectCassandra(config.cassandra)
  try {
    const times = [...expected.days].map(d => Date.parse(d))
    const stored = await readTrades(client, config, [...expected.symbols], times)
    const storedCandles = await readCandles(client, config, [...expected.symbols], times)
    return {
      expected,
      inKafka: topic.ids,
      stored: stored.map(r => r.trade_id),
      candles: storedCandles.length,
      candleProblems: candleDifferences(storedCandles, recomputeCandles(stored))
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
  candles: number
  candleProblems: string[]
}

const clock = (t: number): string => new Date(t).toISOString().slice(11, 23)

/** The checks, in the order they are reported, and the counts of the scenario's result. */
export function verdict (input: VerdictInput): { checks: Check[], counts: VerdictCounts } {
  const { gathered: g, foreignIds, observed: o } = input
  const droppedTotal = o.droppedTotal
  const a = accountScenario({ sent: g.expected.ids, inKafka: g.inKafka, stored: g.stored, foreign: foreignIds, windows: input.edges, countedDrops: droppedTotal })
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
  check('duplicated = 0', duplicated === 0, `${kafkaExtra} extra Kafka records, ${storedUnexpected} stored rows for no trade sent`)
  // A counted drop can also fall inside a kill/stop window (overload shedding goes on
  // up to a SIGTERM under load): the drops cover every trade missing outside the
  // windows exactly and exceed them by at most the trades missing inside (each of
  // those either dropped and counted or in flight when the daemon died or stopped).
  check('every trade missing from Kafka outside kill/stop windows is a counted drop, and no drop is counted for a trade in Kafka', a.dropsInsideWindows >= 0 && a.dropsInsideWindows <= a.missingInsideWindows,
    `${missingOutsideEdges} missing outside the windows, ${a.missingInsideWindows} inside, ${droppedTotal} counted (${JSON.stringify(o.dropped)})`)
  if (foreignIds.size > 0) check('no record the scenario wrote into the topic as not a trade is stored', a.foreignStored === 0, `${a.foreignStored} of ${foreignIds.size} stored`)
  check('candles equal their recomputation from the stored trades', g.candleProblems.length === 0, g.candleProblems.slice(0, 3).join('; '))
  check('the daemon never exited unless killed or stopped', input.unexpectedExits.length === 0, input.unexpectedExits.join('; '))
  check(`peak RSS under ${RSS_BOUND_MIB} MiB`, o.peakRssMiB > 0 && o.peakRssMiB < RSS_BOUND_MIB, `${o.peakRssMiB} MiB`)
  check(`the main thread never blocked ${STALL_BOUND_S} s or more`, o.maxStallS < STALL_BOUND_S, `longest event-loop delay ${o.maxStallS.toFixed(3)} s`)
  const bound = input.maxBufferedMessages
  check('producer queue within kafka.maxBufferedMessages', o.maxProducerQueue <= bound, `max ${o.maxProducerQueue}, bound ${bound}`)
  return {
    checks,
    counts: { sent: g.expected.sent, inKafka: a.inKafka, stored: a.stored, lost, duplicated, droppedTotal, inFlightAtEdges: a.inFlightAtWindows, candles: g.candles, candleProblems: g.candleProblems }
  }
}
