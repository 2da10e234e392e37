// The trade writer's queue, pure: rows wait per Cassandra partition (symbol, day)
// and a request is cut only when a request slot is free, from the partition that
// has waited longest, as many of its rows as fit the batch byte budget. So batches
// grow by themselves under load (while every slot is busy, rows of later consumer
// batches join the rows already waiting for their partition) and stay as small as
// one consumer batch gives when Cassandra keeps up: latency at low load, rows per
// request at high load, with no timer.
//
// Every push() comes with a ticket that completes once all of its rows are in
// completed requests (or fails with the first failed one).

export interface Ticket { left: number, resolve: () => void, reject: (err: unknown) => void, settled: boolean }

interface Entry<R> { row: R, ticket: Ticket }

export interface Request<R> { rows: R[], entries: ReadonlyArray<Entry<R>> }

export class PartitionQueue<R> {
  readonly #keyOf: (row: R) => string
  readonly #sizeOf: (row: R) => number
  readonly #maxBytes: number
  // Map order is the order partitions started waiting: take() serves the oldest first.
  readonly #partitions = new Map<string, Array<Entry<R>>>()
  #rows = 0

  constructor (keyOf: (row: R) => string, sizeOf: (row: R) => number, maxBytes: number) {
    this.#keyOf = keyOf
    this.#sizeOf = sizeOf
    this.#maxBytes = maxBytes
  }

  /** Rows waiting for a request. */
  get pending (): number { return this.#rows }

  /** Queues the rows under one ticket; an empty push completes at once. */
  push (rows: readonly R[], resolve: () => void, reject: (err: unknown) => void): void {
    if (rows.length === 0) { resolve(); return }
    const ticket: Ticket = { left: rows.length, resolve, reject, settled: false }
    for (const row of rows) {
      const key = this.#keyOf(row)
      const list = this.#partitions.get(key)
      if (list === undefined) this.#partitions.set(key, [{ row, ticket }])
      else list.push({ row, ticket })
    }
    this.#rows += rows.length
  }

  /** The next request: rows of the longest-waiting partition up to the byte budget (at least one row); null when nothing waits. */
  take (): Request<R> | null {
    const first = this.#partitions.entries().next()
    if (first.done === true) return null
    const [key, list] = first.value
    let bytes = 0
    let n = 0
    while (n < list.length) {
      const size = this.#sizeOf((list[n] as Entry<R>).row)
      if (n > 0 && bytes + size > this.#maxBytes) break
      bytes += size
      n++
    }
    const entries = list.splice(0, n)
    this.#partitions.delete(key)
    // What is left of the partition waits again, behind the others.
    if (list.length > 0) this.#partitions.set(key, list)
    this.#rows -= entries.length
    return { rows: entries.map(e => e.row), entries }
  }

  /** The request's rows are acknowledged: completes every ticket that has nothing left. */
  complete (request: Request<R>): void {
    for (const { ticket } of request.entries) {
      if (--ticket.left === 0 && !ticket.settled) {
        ticket.settled = true
        ticket.resolve()
      }
    }
  }

  /** The request failed for good: its tickets fail (once each). */
  fail (request: Request<R>, err: unknown): void {
    for (const { ticket } of request.entries) {
      if (ticket.settled) continue
      ticket.settled = true
      ticket.reject(err)
    }
  }

  /** Fails every ticket still waiting and empties the queue. */
  failAll (err: unknown): void {
    for (const list of this.#partitions.values()) this.fail({ rows: [], entries: list }, err)
    this.#partitions.clear()
    this.#rows = 0
  }
}
