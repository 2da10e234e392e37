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
}

export interface ScenarioAccount {
  /** Distinct trades sent that reached Kafka. */
  inKafka: number
  /** Distinct trades stored. */
  stored: number
  /** Records in Kafka beyond one per trade. */
  kafkaExtra: number
  /** Trades in Kafka and not stored. */
  lostAfterKafka: number
  /** Trades sent, not in Kafka, sent outside every window; and their send times. */
  missingOutsideWindows: number
  missingTimes: number[]
  /** Trades sent, not in Kafka, sent inside a window, before the drops are set against them. */
  missingInsideWindows: number
  /** Stored rows for no trade sent (a stored foreign record counts here too). */
  storedUnexpected: number
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
  let lostAfterKafka = 0
  let foreignStored = 0
  for (const [id, count] of input.inKafka) {
    if (input.foreign.has(id)) {
      if (storedIds.has(id)) foreignStored++
      continue
    }
    if (input.sent.has(id)) inKafka++
    kafkaExtra += count - 1
    if (!storedIds.has(id)) lostAfterKafka++
  }
  let missingInsideWindows = 0
  let missingOutsideWindows = 0
  const missingTimes: number[] = []
  for (const [id, { t }] of input.sent) {
    if (input.inKafka.has(id)) continue
    if (input.windows.some(w => t >= w.from && t <= w.to)) missingInsideWindows++
    else { missingOutsideWindows++; missingTimes.push(t) }
  }
  const storedUnexpected = input.stored.filter(id => !input.sent.has(id)).length
  const lost = lostAfterKafka + settleDrops(missingOutsideWindows, input.countedDrops).lost
  const dropsInsideWindows = input.countedDrops - missingOutsideWindows
  return {
    inKafka,
    stored: storedIds.size,
    kafkaExtra,
    lostAfterKafka,
    missingOutsideWindows,
    missingTimes,
    missingInsideWindows,
    storedUnexpected,
    foreignStored,
    lost,
    duplicated: kafkaExtra + storedUnexpected,
    dropsInsideWindows,
    inFlightAtWindows: missingInsideWindows - Math.max(0, Math.min(dropsInsideWindows, missingInsideWindows))
  }
}
