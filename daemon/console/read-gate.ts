// A bound on the console's reads of Cassandra (the Trades and candles view): each is
// a query the pipeline's own writes share the cluster with, and a page, a script or a
// reloading crowd can ask for many at once. At most `maxConcurrent` run at a time,
// up to `maxQueued` more wait their turn in order, and a request beyond is refused at
// once with a 503 and Retry-After rather than held. Pure apart from the reads it runs.

import { ApiError } from './params.js'

export interface ReadGateOptions {
  /** Reads running at once (http.console.maxConcurrentReads). */
  maxConcurrent: number
  /** Reads waiting for a turn (http.console.maxQueuedReads); beyond, a 503. */
  maxQueued: number
  /** Names the reads in the 503's message ("Cassandra reads"). */
  what: string
  /** The setting that raises the bound, for the message. */
  setting: string
}

export class ReadGate {
  readonly #opts: ReadGateOptions
  readonly #waiting: Array<() => void> = []
  #running = 0
  /** Reads refused with a 503 since the start. */
  refused = 0

  constructor (opts: ReadGateOptions) {
    if (!(opts.maxConcurrent >= 1) || !(opts.maxQueued >= 0)) throw new RangeError('ReadGate needs maxConcurrent ≥ 1 and maxQueued ≥ 0')
    this.#opts = opts
  }

  get running (): number { return this.#running }
  get queued (): number { return this.#waiting.length }

  /**
   * `read()`'s result once a turn is free; an ApiError 503 with Retry-After when the
   * queue is full too. With `signal` (the request's: aborted when its client goes
   * away), a read still waiting leaves the queue and never runs, rejecting with
   * ClientGone: nobody is left to answer.
   */
  async run<T> (read: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted === true) throw new ClientGone()
    if (this.#running >= this.#opts.maxConcurrent) {
      if (this.#waiting.length >= this.#opts.maxQueued) {
        this.refused++
        const { maxConcurrent, maxQueued, what, setting } = this.#opts
        throw new ApiError(503, `too many ${what} at once (${maxConcurrent} running, ${maxQueued} waiting); retry in a second (${setting})`, { 'retry-after': '1' })
      }
      // The turn is handed over by the read that ends: #running stays as it is.
      await new Promise<void>((resolve, reject) => {
        const turn = (): void => {
          signal?.removeEventListener('abort', gone)
          resolve()
        }
        const gone = (): void => {
          const at = this.#waiting.indexOf(turn)
          if (at !== -1) this.#waiting.splice(at, 1)
          reject(new ClientGone())
        }
        signal?.addEventListener('abort', gone, { once: true })
        this.#waiting.push(turn)
      })
    } else {
      this.#running++
    }
    try {
      return await read()
    } finally {
      const next = this.#waiting.shift()
      if (next !== undefined) next()
      else this.#running--
    }
  }
}

/** A queued read whose client went away before its turn (ReadGate.run with a signal). */
export class ClientGone extends Error {
  constructor () {
    super('the client went away before its read had a turn')
    this.name = 'ClientGone'
  }
}
