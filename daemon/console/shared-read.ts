// One read shared by every request for the same view, for reads that are slow and
// one at a time (the console's Topic view: the topic reader's single consumer takes
// about a second per read). A read under way is joined by the requests that arrive
// meanwhile, and its result is reused for `ttlMs` after it finished, so ten pages
// asking at once cost one read, not ten in a queue. Distinct reads are bounded: past
// `maxPending` under way, a request is refused with a 503 that says when to retry,
// instead of waiting behind an unbounded queue. A failed read is not kept: the next
// request tries again. Pure apart from the read it is given; time comes from `now`.

import { ApiError } from './params.js'

export interface SharedReadOptions {
  /** How long a finished read answers requests for the same view. */
  ttlMs: number
  /** Distinct reads under way at most; beyond, a 503 with Retry-After. */
  maxPending: number
  /** Names the view in the 503's message ("the topic view"). */
  what: string
  now?: () => number
}

export interface SharedResult<T> {
  value: T
  /** When the read that produced `value` finished (ms). */
  readAt: number
}

export interface SharedReadStats {
  /** Reads started. */
  reads: number
  /** Requests that joined a read under way. */
  joined: number
  /** Requests answered from a finished read within its TTL. */
  reused: number
  /** Requests refused (503) because `maxPending` reads were under way. */
  refused: number
}

interface Entry<T> {
  promise: Promise<SharedResult<T>>
  /** When the read finished; null while under way. */
  doneAt: number | null
}

/** When no read has finished yet: the Topic view's reads take about a second. */
const FIRST_READ_GUESS_MS = 1_000
const MAX_RETRY_AFTER_S = 30

export class SharedReads<T> {
  readonly #opts: SharedReadOptions
  readonly #now: () => number
  readonly #entries = new Map<string, Entry<T>>()
  #lastReadMs: number | null = null
  readonly stats: SharedReadStats = { reads: 0, joined: 0, reused: 0, refused: 0 }

  constructor (opts: SharedReadOptions) {
    if (!(opts.maxPending >= 1) || !(opts.ttlMs >= 0)) throw new RangeError('SharedReads needs maxPending ≥ 1 and ttlMs ≥ 0')
    this.#opts = opts
    this.#now = opts.now ?? Date.now
  }

  /** Reads under way now. */
  get pending (): number {
    let n = 0
    for (const e of this.#entries.values()) if (e.doneAt === null) n++
    return n
  }

  /**
   * `read()`'s result for `key`: the one under way or finished within the TTL, else
   * a new read; an ApiError 503 with Retry-After when `maxPending` reads are under way.
   */
  async get (key: string, read: () => Promise<T>): Promise<SharedResult<T>> {
    const now = this.#now()
    for (const [k, e] of this.#entries) {
      if (e.doneAt !== null && now - e.doneAt >= this.#opts.ttlMs) this.#entries.delete(k)
    }
    const known = this.#entries.get(key)
    if (known !== undefined) {
      if (known.doneAt === null) this.stats.joined++
      else this.stats.reused++
      return await known.promise
    }
    const pending = this.pending
    if (pending >= this.#opts.maxPending) {
      this.stats.refused++
      const retry = this.retryAfterSeconds()
      throw new ApiError(503,
        `${this.#opts.what} is busy: ${pending} other read${pending > 1 ? 's are' : ' is'} under way (at most ${this.#opts.maxPending} at a time); ` +
        `retry in ${retry} s (requests for a view read in the last ${Math.max(1, Math.round(this.#opts.ttlMs / 1000))} s share that read)`,
        { 'retry-after': String(retry) })
    }
    this.stats.reads++
    // read() runs in a then, not here: the entry is in the map by then, so a read that
    // throws at once still finds it and removes it (it never counts as under way).
    const entry: Entry<T> = {
      doneAt: null,
      promise: Promise.resolve().then(read).then(value => {
        const at = this.#now()
        entry.doneAt = at
        this.#lastReadMs = at - now
        return { value, readAt: at }
      }, (err: unknown) => {
        if (this.#entries.get(key) === entry) this.#entries.delete(key)
        throw err
      })
    }
    this.#entries.set(key, entry)
    return await entry.promise
  }

  /** Seconds until the reads under way are likely done: one after another (one consumer), at the last read's pace. */
  retryAfterSeconds (): number {
    const per = this.#lastReadMs ?? FIRST_READ_GUESS_MS
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(per * Math.max(1, this.pending) / 1000)))
  }
}
