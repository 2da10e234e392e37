// Cassandra consistency levels against a keyspace's replication, pure: how many
// replicas a level needs, whether a write level and a read level always meet on one
// replica (a candle rebuild reads back what the writes stored: if they may miss each
// other it can miss acknowledged rows and store a wrong candle), and whether the hosts
// that are up can still take a write at the level (the daemon's readiness).

export const WRITE_CONSISTENCIES = ['ONE', 'TWO', 'THREE', 'QUORUM', 'LOCAL_QUORUM', 'EACH_QUORUM', 'ALL', 'LOCAL_ONE'] as const
// Cassandra refuses EACH_QUORUM on reads.
export const READ_CONSISTENCIES = ['ONE', 'TWO', 'THREE', 'QUORUM', 'LOCAL_QUORUM', 'ALL', 'LOCAL_ONE'] as const
export type WriteConsistency = typeof WRITE_CONSISTENCIES[number]
export type ReadConsistency = typeof READ_CONSISTENCIES[number]

/** A keyspace's replication: replication factor per data center (SimpleStrategy: one entry, `*`). */
export type Replication =
  | { class: 'SimpleStrategy', replicationFactor: number }
  | { class: 'NetworkTopologyStrategy', dataCenters: Readonly<Record<string, number>> }

/** The read level used when none is configured: the write level, except EACH_QUORUM (LOCAL_QUORUM meets it in the local DC). */
export function effectiveReadConsistency (write: WriteConsistency, read: ReadConsistency | null): ReadConsistency {
  if (read !== null) return read
  return write === 'EACH_QUORUM' ? 'LOCAL_QUORUM' : write
}

interface Spread {
  /** Replicas in the whole cluster, and in the local DC (SimpleStrategy: the same). */
  total: number
  local: number
  /** Per data center (SimpleStrategy: one). */
  perDc: number[]
}

function spread (replication: Replication, localDc: string): Spread {
  if (replication.class === 'SimpleStrategy') {
    const rf = replication.replicationFactor
    return { total: rf, local: rf, perDc: [rf] }
  }
  const perDc = Object.values(replication.dataCenters)
  return { total: perDc.reduce((a, b) => a + b, 0), local: replication.dataCenters[localDc] ?? 0, perDc }
}

const quorum = (n: number): number => Math.floor(n / 2) + 1

/** Replicas a level is guaranteed to reach: in the whole cluster, and in the local DC. */
function reach (level: WriteConsistency, s: Spread): { total: number, local: number } {
  const single = s.perDc.length === 1 && s.local === s.total
  const anywhere = (n: number): { total: number, local: number } => ({ total: n, local: single ? n : 0 })
  switch (level) {
    case 'ONE': return anywhere(1)
    case 'TWO': return anywhere(2)
    case 'THREE': return anywhere(3)
    case 'QUORUM': return anywhere(quorum(s.total))
    case 'ALL': return { total: s.total, local: s.local }
    case 'LOCAL_ONE': return { total: 1, local: 1 }
    case 'LOCAL_QUORUM': return { total: quorum(s.local), local: quorum(s.local) }
    case 'EACH_QUORUM': return { total: s.perDc.reduce((a, n) => a + quorum(n), 0), local: quorum(s.local) }
  }
}

/** Replicas that must answer for a level, and whether they exist at all (THREE on RF 1 never succeeds). */
export function replicasNeeded (level: WriteConsistency, replication: Replication, localDc: string): { needed: number, available: number, local: boolean } {
  const s = spread(replication, localDc)
  if (level === 'LOCAL_ONE' || level === 'LOCAL_QUORUM') return { needed: reach(level, s).local, available: s.local, local: true }
  if (level === 'EACH_QUORUM') return { needed: quorum(s.local), available: s.local, local: true }
  return { needed: reach(level, s).total, available: s.total, local: false }
}

/**
 * What is wrong with these levels on this replication, as warnings for the config
 * load: a level the replicas cannot meet (every request fails Unavailable), a local
 * data center without replicas, and a write and read level that may miss each other.
 */
export function consistencyWarnings (write: WriteConsistency, read: ReadConsistency, replication: Replication, localDc: string): string[] {
  const out: string[] = []
  const s = spread(replication, localDc)
  const shape = replication.class === 'SimpleStrategy'
    ? `replication factor ${replication.replicationFactor}`
    : `NetworkTopologyStrategy ${JSON.stringify(replication.dataCenters)}`
  if (replication.class === 'NetworkTopologyStrategy' && s.local === 0) {
    out.push(`cassandra.localDataCenter ${localDc} has no replicas in cassandra.replication (${shape}): LOCAL_* levels there cannot be met; ` +
      'set cassandra.localDataCenter to one of the listed data centers or give it replicas')
  }
  for (const [key, level] of [['cassandra.consistency', write], ['cassandra.readConsistency', read]] as const) {
    const need = replicasNeeded(level, replication, localDc)
    if (need.needed > need.available) {
      out.push(`${key} ${level} needs ${need.needed} replicas${need.local ? ' in the local data center' : ''} but the keyspace has ${need.available} (${shape}): ` +
        'every such request will fail with Unavailable; lower the level or raise the replication')
    }
  }
  const w = reach(write, s)
  const r = reach(read, s)
  if (!(w.local + r.local > s.local && s.local > 0) && !(w.total + r.total > s.total)) {
    out.push(`cassandra.consistency ${write} and cassandra.readConsistency ${read} may not meet on one replica (${shape}): ` +
      'a candle rebuild could miss acknowledged rows and store wrong candles; use LOCAL_QUORUM (or QUORUM) for both')
  }
  return out
}

/**
 * Whether writes at `level` are possible with `upLocal` / `upTotal` hosts up, as far as
 * the client can know without the token ring: each row's replicas are among the up
 * hosts only when enough hosts are up; this counts hosts, so it is a necessary
 * condition (a node down that holds none of a row's replicas does not matter, and
 * replicas spread over more nodes than RF are not all needed). Ready when at least
 * one host is up and the up hosts (local ones for LOCAL_* levels) reach the level's
 * replica count, capped by the replication (RF 3 on a 5-node cluster needs 2 for
 * QUORUM, not 3).
 */
export function writesPossible (level: WriteConsistency, replication: Replication, localDc: string,
  up: { local: number, total: number }): { ok: boolean, needed: number, up: number } {
  const need = replicasNeeded(level, replication, localDc)
  const have = need.local ? up.local : up.total
  return { ok: up.total > 0 && have >= need.needed, needed: need.needed, up: have }
}

/** The keyspace's replication from the config: cassandra.replication when set, else SimpleStrategy with replicationFactor. */
export function keyspaceReplication (cassandra: { replication: Replication | null, replicationFactor: number }): Replication {
  return cassandra.replication ?? { class: 'SimpleStrategy', replicationFactor: cassandra.replicationFactor }
}
