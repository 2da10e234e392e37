// What /readyz answers and the console shows: one check per dependency, ready when
// all are ok. Its own module: the daemon builds it, the HTTP endpoint and the console
// read it, and neither needs the other for that.

/** One Kafka broker or Cassandra host as a client sees it. */
export interface NodeState { node: string, up: boolean, state: string, datacenter?: string, rack?: string }
/** nodes: each broker / host of the dependency, when the client knows them. */
export interface Check { ok: boolean, detail: string, nodes?: NodeState[] }
export interface Readiness { ready: boolean, checks: Record<string, Check> }
