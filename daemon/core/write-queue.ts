// The trade writer's queue, pure: rows wait per Cassandra partition (symbol, day),
// partitions per group (the replica that owns them), and a request is cut only when
// a request slot is free, from the group that has waited longest: its oldest
// partition's rows first, then the next partitions' of the same group, as many as
// fit the batch byte budget. So a deep queue gives large single-partition batches
// (one mutation for Cassandra), a shallow one gives one request for the rows of many
// partitions instead of a request each; and batches grow by themselves under load
// (while every slot is busy, rows of later consumer batches join the rows already
// waiting), and stay as small as one consumer batch gives when Cassandra keeps up:
// latency at low load, rows per request at high load, with no timer.
//
// Every push() comes with a ticket that completes once all of its rows are in
// completed requests (or fails with the first failed one).

export interface Ticket { left: number, resolve: () => void, reject: (err: unknown) => void, settled: boolean }

interface Entry<R> { row: R, ticket: Ticket }

export interface Request<R> { rows: R[], entries: ReadonlyArray<Entry<R>> }

export interface QueueKeys<R> {
  /** The row's partition. */
  partition: (row: R) => string
  /** The group a request may span (the partition's replica); one group when omitted. */
  group?: (row: R) => string
  /** The row's bytes in a batch. */
  size: (row: R) => number
}

/**
 * Cassandra refuses a batch that spans partitions past batch_size_fail_threshold
 * (50 KiB by default; one partition's batch is exempt, CASSANDRA-10876): a request
 * takes rows of a second partition only while it stays under this.
 */
export const MULTI_PARTITION_MAX_BYTES = 45 * 1024

export class PartitionQueue<R> {
  readonly #keys: QueueKeys<R>
  readonly #maxBytes: number
  readonly #multiMaxBytes: number
  // Map orders are the orders groups and their partitions started waiting: take() serves the oldest first.
  readonly #groups = new Map<string, Map<string, Array<Entry<R>>>>()
  #rows = 0

  constructor (keys: QueueKeys<R>, maxBytes: number, multiPartitionMaxBytes = MULTI_PARTITION_MAX_BYTES) {
    this.#keys = keys
    this.#maxBytes = maxBytes
    this.#multiMaxBytes = Math.min(maxBytes, multiPartitionMaxBytes)
  }

  /** Rows waiting for a request. */
  get pending (): number { return this.#rows }

  /** Queues the rows under one ticket; an empty push completes at once. */
  push (rows: readonly R[], resolve: () => void, reject: (err: unknown) => void): void {
    if (rows.length === 0) { resolve(); return }
    const ticket: Ticket = { left: rows.length, resolve, reject, settled: false }
    const { partition, group } = this.#keys
    for (const row of rows) {
      const g = group === undefined ? '' : group(row)
      let partitions = this.#groups.get(g)
      if (partitions === undefined) this.#groups.set(g, partitions = new Map())
      const key = partition(row)
      const list = partitions.get(key)
      if (list === undefined) partitions.set(key, [{ row, ticket }])
      else list.push({ row, ticket })
    }
    this.#rows += rows.length
  }

  /**
   * The next request: rows of the longest-waiting group up to the byte budget (at
   * least one row), its oldest partition's first; null when nothing waits.
   */
  take (): Request<R> | null {
    const first = this.#groups.entries().next()
    if (first.done === true) return null
    const [g, partitions] = first.value
    const entries: Array<Entry<R>> = []
    let bytes = 0
    for (const [key, list] of partitions) {
      // The first partition up to the budget; the next ones only under the multi-partition bound.
      const budget = entries.length === 0 ? this.#maxBytes : this.#multiMaxBytes
      let n = 0
      while (n < list.length) {
        const size = this.#keys.size((list[n] as Entry<R>).row)
        if (entries.length + n > 0 && bytes + size > budget) break
        bytes += size
        n++
      }
      if (n === 0) break
      for (const e of list.splice(0, n)) entries.push(e)
      partitions.delete(key)
      // What is left of a partition waits again, behind the others of its group.
      if (list.length > 0) { partitions.set(key, list); break }
    }
    this.#groups.delete(g)
    // What is left of the group waits again, behind the other groups.
    if (partitions.size > 0) this.#groups.set(g, partitions)
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
    for (const partitions of this.#groups.values()) for (const list of partitions.values()) this.fail({ rows: [], entries: list }, err)
    this.#groups.clear()
    this.#rows = 0
  }
}
