// Retrying, pure: full-jitter exponential backoff, and the one loop of "retry until
// done or closed" that the Cassandra executor and the dead-letter producer run (each
// wrote its own before). The loop's sleeps end at once when it is closed, so a
// shutdown never waits out a backoff.

export function backoffDelay (attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling * random())
}

/** Sleeps that close() ends at once; after close() every retry loop on it gives up. */
export class RetryScope {
  #closed = false
  readonly #sleeps = new Set<{ timer: ReturnType<typeof setTimeout>, wake: () => void }>()

  get closed (): boolean { return this.#closed }

  close (): void {
    this.#closed = true
    for (const s of this.#sleeps) { clearTimeout(s.timer); s.wake() }
    this.#sleeps.clear()
  }

  async sleep (ms: number): Promise<void> {
    if (this.#closed) return
    await new Promise<void>(resolve => {
      const s = { timer: setTimeout(() => { this.#sleeps.delete(s); resolve() }, ms), wake: resolve }
      this.#sleeps.add(s)
    })
  }
}

export interface RetryOptions {
  scope: RetryScope
  /** The error to throw once the scope is closed (before an attempt, or after a failure). */
  closedError: () => Error
  /**
   * After a failed attempt: the delay before the next one (ms), or the error to throw
   * instead of retrying (a failure retrying cannot cure). Logging and counting go here.
   */
  onFailure: (err: unknown, attempt: number) => number | { fail: unknown }
}

/** Runs `attempt` until it succeeds, `onFailure` gives up, or the scope closes. */
export async function retryUntilDone<T> (attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let n = 0; ; n++) {
    if (options.scope.closed) throw options.closedError()
    let result: T
    try {
      result = await attempt(n)
    } catch (err) {
      const next = options.onFailure(err, n)
      if (typeof next !== 'number') throw next.fail
      await options.scope.sleep(next)
      continue
    }
    return result
  }
}
