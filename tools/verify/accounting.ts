// The accounting of trades, pure: given what was sent, what reached the Kafka topic and
// what Cassandra holds, how many were stored, lost and duplicated. One set of rules for
// the bench (tools/bench/pipeline.ts) and the fault suite (tools/chaos/harness.ts):
//  - a trade the daemon counted as dropped (queue full, overload shedding, …) was sent
//    and not stored on purpose: each counted drop explains one missing trade, and what is
//    missing beyond the counted drops is lost (`settleDrops`);
//  - a trade in Kafka and not stored is lost whatever was counted: past the producer
//    nothing may be dropped;
//  - a trade missing from Kafka that was sent inside a kill/stop window (its record was in
//    flight when the daemon died or stopped) is neither lost nor a drop;
//  - duplicated = Kafka records beyond one per trade, plus stored rows for no trade sent.
// The bench has no Kafka read-back and millions of trades: its account (`StoredRowTally`,
// `accountIds`) goes row by row against the compact id table of tools/verify/id-table.ts,
// and a row for no trade sent, under another trade's symbol, or a second time is a
// duplicate. The I/O (the generation logs rebuilt, the topic read, the rows fetched)
// stays with the callers and tools/verify/verify.ts.

/** Missing trades against the drops the daemon counted: lost is what the drops do not explain. */
export function settleDrops (missing: number, countedDrops: number): { lost: number, overCounted: number } {
  return { lost: Math.max(0, missing - countedDrops), overCounted: Math.max(0, countedDrops - missing) }
}

/** A time window around a kill or a stop: trades sent in it may have been in flight. */
export interface Window { from: number, to: number }

export interface ScenarioInput {
  /** The id each trade sent must be stored under → its send time. */
  sent: ReadonlyMap<string, { t: number }>
  /** Decoded trade ids in the topic → how many records carry each. */
  inKafka: ReadonlyMap<string, number>
  /** The trade ids of the stored rows, one per row. */
  stored: readonly string[]
  /** Records the scenario itself wrote into the topic (not trades sent through the daemon). */
  foreign: ReadonlySet<string>
  windows: readonly Window[]
  /** Every drop the daemon counted, all reasons together. */
  countedDrops: number
  /** Records each trade may have in the topic (redundant ingest: one per member of the group); 1 when absent. */
  copiesPerTrade?: number
}

/** The ids sent, as the bench holds them (tools/verify/id-table.ts): id → the tag of its symbol, marked once when stored. */
export interface SentIdTable {
  /** Distinct ids sent. */
  readonly size: number
  /** The tag of `id`, or -1 when it was not sent. */
  tag: (id: string) => number
  /** Marks a sent `id` as stored: true the first time, false after. */
  mark: (id: string) => boolean
  /** Ids sent and never marked. */
  unmarked: () => number
}

/** The stored rows, one at a time against the ids sent (the bench's millions are never held at once). */
export class StoredRowTally {
  readonly table: SentIdTable
  /** Rows seen. */
  stored = 0
  /** Rows for no trade sent, under another trade's symbol, or for a trade already stored. */
  duplicated = 0
  /** The first distinct ids (at most UNEXPECTED_SAMPLE) of rows for no trade sent. */
  readonly unexpected: string[] = []

  constructor (table: SentIdTable) { this.table = table }

  /** One stored row: its trade id, read under the symbol tagged `tag`. */
  row (tradeId: string, tag: number): void {
    this.stored++
    const sentUnder = this.table.tag(tradeId)
    if (sentUnder !== tag || !this.table.mark(tradeId)) {
      this.duplicated++
      if (sentUnder === -1 && this.unexpected.length < UNEXPECTED_SAMPLE && !this.unexpected.includes(tradeId)) this.unexpected.push(tradeId)
    }
  }
}

/** How many ids of rows for no trade sent a StoredRowTally keeps, to name them. */
export const UNEXPECTED_SAMPLE = 10

/** The bench's account (its report's `counts`, in that order). */
export interface IdAccount {
  /** Trades sent (identical re-sends included). */
  sent: number
  distinctTrades: number
  identicalResends: number
  /** Rows stored. */
  stored: number
  /** Distinct trades sent and not stored, counted drops included. */
  notStored: number
  /** Trades the daemon counted as dropped or rejected over the whole run. */
  countedDrops: number
  /** Not stored and not counted as dropped: notStored − countedDrops (never below 0). */
  lost: number
  /** Drops counted beyond the trades missing (a miscount). */
  overCountedDrops: number
  duplicated: number
}

/** Settles the rows tallied against the trades sent (`sent`: identical re-sends included) and the drops the daemon counted. */
export function accountIds (sent: number, tally: StoredRowTally, countedDrops: number): IdAccount {
  const notStored = tally.table.unmarked()
  const { lost, overCounted } = settleDrops(notStored, countedDrops)
  return {
    sent,
    distinctTrades: tally.table.size,
    identicalResends: sent - tally.table.size,
    stored: tally.stored,
    notStored,
    countedDrops,
    lost,
    overCountedDrops: overCounted,
    duplicated: tally.duplicated
  }
}

export interface ScenarioAccount {
  /** Distinct trades sent that reached Kafka. */
  inKafka: number
  /** Distinct trades stored. */
  stored: number
  /** Records in Kafka beyond one per trade (beyond copiesPerTrade). */
  kafkaExtra: number
  /** Trades in Kafka and not stored; and their ids. */
  lostAfterKafka: number
  lostAfterKafkaIds: string[]
  /** Trades sent, not in Kafka, sent outside every window; and their send times. */
  missingOutsideWindows: number
  missingTimes: number[]
  /** Trades sent, not in Kafka, sent inside a window, before the drops are set against them. */
  missingInsideWindows: number
  /** Stored rows for no trade sent (a stored foreign record counts here too); and their distinct ids. */
  storedUnexpected: number
  unexpectedIds: string[]
  /** Foreign records that were stored (must be none). */
  foreignStored: number
  lost: number
  duplicated: number
  /** Counted drops beyond the trades missing outside the windows: must lie in [0, missingInsideWindows]. */
  dropsInsideWindows: number
  /** Trades in flight at a window that no counted drop explains. */
  inFlightAtWindows: number
}

export function accountScenario (input: ScenarioInput): ScenarioAccount {
  const storedIds = new Set(input.stored)
  let inKafka = 0
  let kafkaExtra = 0
  const lostAfterKafkaIds: string[] = []
  let foreignStored = 0
  for (const [id, count] of input.inKafka) {
    if (input.foreign.has(id)) {
      if (storedIds.has(id)) foreignStored++
      continue
    }
    if (input.sent.has(id)) inKafka++
    kafkaExtra += Math.max(0, count - (input.copiesPerTrade ?? 1))
    if (!storedIds.has(id)) lostAfterKafkaIds.push(id)
  }
  let missingInsideWindows = 0
  let missingOutsideWindows = 0
  const missingTimes: number[] = []
  for (const [id, { t }] of input.sent) {
    if (input.inKafka.has(id)) continue
    if (input.windows.some(w => t >= w.from && t <= w.to)) missingInsideWindows++
    else { missingOutsideWindows++; missingTimes.push(t) }
  }
  const unexpected = input.stored.filter(id => !input.sent.has(id))
  const storedUnexpected = unexpected.length
  const lostAfterKafka = lostAfterKafkaIds.length
  const lost = lostAfterKafka + settleDrops(missingOutsideWindows, input.countedDrops).lost
  const dropsInsideWindows = input.countedDrops - missingOutsideWindows
  return {
    inKafka,
    stored: storedIds.size,
    kafkaExtra,
    lostAfterKafka,
    lostAfterKafkaIds,
    missingOutsideWindows,
    missingTimes,
    missingInsideWindows,
    storedUnexpected,
    unexpectedIds: [...new Set(unexpected)],
    foreignStored,
    lost,
    duplicated: kafkaExtra + storedUnexpected,
    dropsInsideWindows,
    inFlightAtWindows: missingInsideWindows - Math.max(0, Math.min(dropsInsideWindows, missingInsideWindows))
  }
}
