// Which Kafka offsets may be committed, pure. Every consumed batch is registered
// per partition as a contiguous span (first..last offset of that partition in the
// batch) in consumption order; a span is marked done once every record in it is
// written (or dead-lettered). The committable offset of a partition is the end of
// the done prefix + 1: a finished span behind an unfinished one waits, so a
// commit never passes a record that is not yet stored. A revoked partition's
// state is dropped; spans still in flight for it finish into the void (their rows
// are written idempotently, the new owner re-reads them from the last commit).

export interface Span {
  readonly topic: string
  readonly partition: number
  readonly first: number
  readonly last: number
  done: boolean
}

interface PartitionState {
  spans: Span[]
  /** The offset to commit next (last done + 1); null until something is done. */
  committable: number | null
  /** The value last handed to commit(). */
  committed: number | null
}

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`

export interface CommitPosition { topic: string, partition: number, offset: number }

export class OffsetTracker {
  readonly #partitions = new Map<string, PartitionState>()
  #inFlightRecords = 0

  /** Records registered and not yet done (over all partitions, revoked ones excluded). */
  get inFlight (): number { return this.#inFlightRecords }

  assign (topic: string, partition: number): void {
    const k = key(topic, partition)
    if (!this.#partitions.has(k)) this.#partitions.set(k, { spans: [], committable: null, committed: null })
  }

  /** Forgets a partition; its unfinished spans no longer count or commit. */
  revoke (topic: string, partition: number): void {
    const state = this.#partitions.get(key(topic, partition))
    if (state === undefined) return
    for (const span of state.spans) if (!span.done) this.#inFlightRecords -= span.last - span.first + 1
    this.#partitions.delete(key(topic, partition))
  }

  /** Registers a span of consumed offsets; returns the span to pass to done(), or null for an unassigned partition. */
  track (topic: string, partition: number, first: number, last: number): Span | null {
    const state = this.#partitions.get(key(topic, partition))
    if (state === undefined) return null
    const span: Span = { topic, partition, first, last, done: false }
    state.spans.push(span)
    this.#inFlightRecords += last - first + 1
    return span
  }

  done (span: Span): void {
    if (span.done) return
    span.done = true
    const state = this.#partitions.get(key(span.topic, span.partition))
    // A span of a revoked (or revoked and re-assigned) partition: not ours to commit.
    if (state === undefined || !state.spans.includes(span)) return
    this.#inFlightRecords -= span.last - span.first + 1
    while (state.spans.length > 0 && (state.spans[0] as Span).done) {
      state.committable = (state.spans.shift() as Span).last + 1
    }
  }

  /** Positions that moved since the last call (offset = next record to read), to hand to commit(). */
  takeCommits (filter?: (topic: string, partition: number) => boolean): CommitPosition[] {
    const out: CommitPosition[] = []
    for (const [k, state] of this.#partitions) {
      if (state.committable === null || state.committable === state.committed) continue
      const [topic, partition] = k.split('\u0000') as [string, string]
      if (filter !== undefined && !filter(topic, Number(partition))) continue
      state.committed = state.committable
      out.push({ topic, partition: Number(partition), offset: state.committable })
    }
    return out
  }

  /** After a failed commit: hand every partition's position out again at the next takeCommits(). */
  retryCommits (): void {
    for (const state of this.#partitions.values()) state.committed = null
  }

  /** Assigned partitions, for pause/resume. */
  partitions (): Array<{ topic: string, partition: number }> {
    return [...this.#partitions.keys()].map(k => {
      const [topic, partition] = k.split('\u0000') as [string, string]
      return { topic, partition: Number(partition) }
    })
  }
}
