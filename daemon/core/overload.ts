// Load shedding at the socket, pure. When one daemon runs both roles they share one
// main thread: past what the machine can store, the socket, Avro encoding and
// delivery reports of the ingest role take the thread from the consumer, and what is
// stored per second falls as more is offered. The controller watches, once a second,
// whether the thread is saturated (event-loop utilization) while the process role
// falls behind (records not yet committed, in seconds of what it stores), and then
// drops a growing share of the trades arriving at the socket (counted as
// `overload`, never silently), backing off as soon as either condition clears. A
// Kafka or Cassandra outage leaves the thread idle: nothing is shed then, Kafka
// buffers as always. The share grows only while trades are admitted faster than they
// are stored: behind but catching up (the backlog an outage left, at a rate the
// daemon can carry) holds it, so a recovery sheds nothing (the fault suite at 4,000
// trades/s shed 1,199 trades after a 5 s Kafka outage before this rule); so does a
// second in which nothing was stored at all while the thread was busy: the consumer
// rejoining its group after Kafka came back while the producer flushes what Kafka
// missed (854 shed that way), not the consumer starved by the socket, which still
// stores something every second.

export interface OverloadSettings {
  /** The process role counts as behind past this many seconds of its stored rate not yet committed. */
  backlogSeconds: number
  /** The main thread counts as saturated from this event-loop utilization (0–1). */
  busyUtilization: number
  /** The most of the arriving trades ever dropped (0–1). */
  maxShare: number
}

export interface OverloadSample {
  /** Event-loop utilization over the last interval (0–1). */
  utilization: number
  /** Records consumed or waiting in Kafka and not yet committed. */
  backlog: number
  /** Rows stored per second over the last interval. */
  storedPerSec: number
  /** Trades arriving at the socket and not dropped, per second over the last interval. */
  admittedPerSec: number
}

// In whole per cent, so the share stays one of a few values and drop() counts exactly.
const STEP_UP = 10
const STEP_DOWN = 20

export class ShedController {
  readonly #settings: OverloadSettings
  /** Per cent of arriving trades dropped. */
  #share = 0
  /** Trades owed to the share, in hundredths. */
  #owed = 0

  constructor (settings: OverloadSettings) {
    this.#settings = settings
  }

  /** The share of arriving trades dropped now (0–1). */
  get share (): number { return this.#share / 100 }

  /** Once an interval: raises the share while saturated, behind and admitting more than is stored; holds it while catching up; lowers it otherwise. */
  update (s: OverloadSample): number {
    const behind = s.backlog > this.#settings.backlogSeconds * Math.max(s.storedPerSec, 1)
    const busy = s.utilization >= this.#settings.busyUtilization
    if (!behind || !busy) this.#share = Math.max(0, this.#share - STEP_DOWN)
    else if (s.admittedPerSec > s.storedPerSec && s.storedPerSec > 0) this.#share = Math.min(Math.round(this.#settings.maxShare * 100), this.#share + STEP_UP)
    if (this.#share === 0) this.#owed = 0
    return this.share
  }

  /** Of `n` trades arriving, how many to drop: the share, carried over between frames so small frames shed too. */
  drop (n: number): number {
    if (this.#share === 0 || n <= 0) return 0
    this.#owed += n * this.#share
    const k = Math.min(n, Math.floor(this.#owed / 100))
    this.#owed -= k * 100
    return k
  }
}
