// Which replica a (symbol, day) partition's writes are grouped under and routed to:
// its first replica in the driver's token map, remembered per partition (forgotten
// when the ring changes). The trade writer and the candle book batch statements per
// group, so every mutation of a batch is local to the coordinator it is routed to.

import type cassandra from 'cassandra-driver'

export interface ReplicaGroup {
  /** The first replica's address; '' without a token map (one group, routed as the driver likes). */
  group: string
  /** The partition's routing key, for the request's `routingKey` (absent for group ''). */
  routingKey: Buffer | undefined
}

const LIMIT = 10_000

export class ReplicaGroups {
  readonly #client: Partial<Pick<cassandra.Client, 'getReplicas' | 'on'>> | undefined
  readonly #keyspace: string
  readonly #groups = new Map<string, ReplicaGroup>()

  constructor (client: cassandra.Client | undefined, keyspace: string) {
    this.#client = client
    this.#keyspace = keyspace
    if (typeof this.#client?.on === 'function') {
      for (const event of ['hostAdd', 'hostRemove']) this.#client.on.call(client, event, () => { this.#groups.clear() })
    }
  }

  /** The group of `partition` (any string naming it); `routingKey` is made only the first time. */
  of (partition: string, routingKey: () => Buffer): ReplicaGroup {
    let g = this.#groups.get(partition)
    if (g === undefined) {
      let key: Buffer | undefined
      let hosts: Array<{ address: string }> | null | undefined
      try {
        key = routingKey()
        hosts = this.#client?.getReplicas?.(this.#keyspace, key)
      } catch {
        // A key no partition can have (a component over 65,535 bytes): Cassandra refuses its statement, and it alone.
        hosts = null
      }
      const first = hosts?.[0]
      g = first === undefined ? { group: '', routingKey: undefined } : { group: first.address, routingKey: key }
      if (this.#groups.size >= LIMIT) this.#groups.clear()
      this.#groups.set(partition, g)
    }
    return g
  }
}

/** The routing key of a (symbol text, day date) partition from the two values' bytes: each as [uint16 length][bytes][0]. */
export function compositeKey (symbol: Uint8Array, day: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(symbol.length + day.length + 6)
  let at = out.writeUInt16BE(symbol.length, 0)
  out.set(symbol, at)
  at += symbol.length
  out[at++] = 0
  at = out.writeUInt16BE(day.length, at)
  out.set(day, at)
  at += day.length
  out[at] = 0
  return out
}
