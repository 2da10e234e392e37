// The fault suite on the replicated cluster (`npm run chaos -- --cluster`, the local
// stack's three Kafka and three Cassandra nodes): the leader broker of the trade
// partitions killed, one Cassandra node killed, two stopped, one frozen, process
// daemons of one group killed and added, rolling restarts of either kind. Each scenario
// runs through the real daemons and is accounted for trade by trade like the
// single-node suite (tools/chaos/harness.ts); the report adds per scenario the
// recovery time and the longest time no trade was stored (tools/chaos/no-store.ts).

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Kafka from 'node-rdkafka'
import { topicMetadata } from '../../daemon/kafka/admin.js'
import { freePort } from '../bench/daemon-process.js'
import type { StackOptions } from '../stack/options.js'
import { isAlive, sleep } from '../stack/proc.js'
import { nodeHandles, startNode, stopNode, type NodeHandle } from '../stack/stack.js'
import { metricSum } from '../verify/prom-text.js'
import { DaemonLife } from './daemon-life.js'
import type { Run, Scenario } from './harness.js'
import { DaemonObserver } from './observer.js'

// ---- pure: who leads, which node that is -----------------------------------------

export interface PartitionLeader { id: number, leader: number }

/**
 * The broker leading the most of a topic's partitions (the lowest id on a tie); null
 * when no partition has a leader (-1 in librdkafka's metadata).
 */
export function leadingBroker (partitions: readonly PartitionLeader[]): number | null {
  const count = new Map<number, number>()
  for (const p of partitions) if (p.leader >= 0) count.set(p.leader, (count.get(p.leader) ?? 0) + 1)
  let best: number | null = null
  for (const [id, n] of count) {
    const bestN = best === null ? 0 : count.get(best) ?? 0
    if (n > bestN || (n === bestN && best !== null && id < best)) best = id
  }
  return best
}

/** The stack node that is Kafka broker `brokerId`; throws naming the brokers it knows when none is. */
export function nodeOfBroker (brokerId: number, handles: readonly Pick<NodeHandle, 'name' | 'kafkaBrokerId'>[]): string {
  const node = handles.find(h => h.kafkaBrokerId === brokerId)
  if (node === undefined) {
    throw new Error(`broker ${brokerId} is none of the stack's nodes (${handles.filter(h => h.kafkaBrokerId !== null).map(h => `${h.name}=${h.kafkaBrokerId}`).join(', ')})`)
  }
  return node.name
}

// ---- the cluster's nodes -----------------------------------------------------------

/** The cluster stack's nodes one by one: kill -9, signal, stop, start (started nodes sync their commit log before acknowledging). */
export class ClusterNodes {
  readonly #o: StackOptions
  readonly #log: (line: string) => void

  constructor (stack: StackOptions | null, log: (line: string) => void) {
    if (stack?.cluster !== true) throw new Error('a cluster scenario needs the cluster stack: npm run chaos -- --cluster')
    // A node killed with -9 keeps what it acknowledged (commitlog_sync: group), as in the single-node suite.
    // A broker recovering its logs after a kill -9, or a Cassandra node replaying its commit
    // log, on two shared cores takes longer than the stack's default wait.
    this.#o = { ...stack, cassandraCommitlogSync: 'group', kafkaReadyTimeoutMs: Math.max(stack.kafkaReadyTimeoutMs, 300_000), cassandraReadyTimeoutMs: Math.max(stack.cassandraReadyTimeoutMs, 420_000) }
    this.#log = log
  }

  pid (name: string): number {
    const pid = nodeHandles(this.#o).find(h => h.name === name)?.pid ?? null
    if (pid === null) throw new Error(`${name} is not running`)
    return pid
  }

  signal (name: string, sig: NodeJS.Signals): void { process.kill(this.pid(name), sig) }

  async kill (name: string): Promise<void> {
    const pid = this.pid(name)
    process.kill(pid, 'SIGKILL')
    while (isAlive(pid)) await sleep(50)
  }

  /** Starts a node and waits until it answers and it and the running others see each other; returns the ms. */
  async start (name: string): Promise<number> {
    const at = Date.now()
    await startNode(this.#o, name, process.env, this.#log)
    return Date.now() - at
  }

  /** Stops a node cleanly. */
  async stop (name: string): Promise<void> { await stopNode(this.#o, name, this.#log) }

  /** The node leading most of `topic`'s partitions, from the brokers' metadata. */
  async leaderOf (bootstrap: string, topic: string): Promise<{ name: string, brokerId: number, leads: number, of: number }> {
    const partitions = await partitionLeaders(bootstrap, topic)
    const brokerId = leadingBroker(partitions)
    if (brokerId === null) throw new Error(`no partition of ${topic} has a leader`)
    return { name: nodeOfBroker(brokerId, nodeHandles(this.#o)), brokerId, leads: partitions.filter(p => p.leader === brokerId).length, of: partitions.length }
  }
}

/** Each partition's leader (node-rdkafka getMetadata: partitions[].leader is the broker's node id). */
export async function partitionLeaders (bootstrap: string, topic: string): Promise<PartitionLeader[]> {
  const client = new Kafka.Producer({ 'metadata.broker.list': bootstrap, 'client.id': 'finnhubd-chaos-leader' })
  await new Promise<void>((resolve, reject) => client.connect({ timeout: 15_000 }, err => { if (err !== null && err !== undefined) reject(err); else resolve() }))
  try {
    const md = await new Promise<Kafka.Metadata>((resolve, reject) => {
      client.getMetadata({ topic, timeout: 15_000 }, (err, data) => { if (err !== null && err !== undefined) reject(err); else resolve(data) })
    })
    return (md.topics.find(t => t.name === topic)?.partitions ?? []).map(p => ({ id: p.id, leader: p.leader }))
  } finally {
    await new Promise<void>(resolve => client.disconnect(() => resolve()))
  }
}

/** Waits until every partition of the run's topic has all its replicas in sync again; returns the ms (a failed check at the timeout). */
async function isrFull (r: Run, timeoutMs = 180_000): Promise<number> {
  const at = Date.now()
  const kafka = r.directConfig().kafka
  while (Date.now() - at < timeoutMs) {
    try {
      const [md] = await topicMetadata(kafka, [kafka.topic])
      if (md !== undefined && md.partitions.length > 0 && md.partitions.every(p => p.isrs.length === p.replicas.length)) return Date.now() - at
    } catch { /* a broker coming back: ask again */ }
    await sleep(1000)
  }
  r.check('every partition\'s replicas in sync again', false, `not within ${timeoutMs / 1000} s`)
  return Date.now() - at
}

// ---- what the store did in a window ------------------------------------------------

/** Trade rows stored (every daemon of the run) between `from` and `to` (Date.now()), from the store watch's samples. */
function storedBetween (r: Run, from: number, to: number): number {
  const at = (t: number): number => {
    let v = 0
    for (const s of r.storeWatch.samples) if (s.at <= t) v = s.stored
    return v
  }
  return at(to) - at(from)
}

async function poisonCount (r: Run, lives: readonly DaemonLife[]): Promise<number> {
  let n = 0
  for (const l of [r.life, ...lives]) {
    if (!l.started || !l.daemon.running) continue
    try { n += metricSum(await l.daemon.metrics(), 'finnhubd_poison_records_total') || 0 } catch { /* down */ }
  }
  return n
}

// ---- process daemons of one group --------------------------------------------------

/**
 * A process-only daemon in the run's consumer group: the run's config with roles
 * [process], its own state directory, HTTP port and log; with `staticMember` its
 * kafka.groupInstanceId (static membership) is its name. Not started yet.
 */
export async function processDaemon (r: Run, name: string, staticMember: boolean): Promise<DaemonLife> {
  const configFile = join(r.env.outDir, `chaos-${r.id}.${name}.config.json`)
  const logFile = join(r.env.outDir, `chaos-${r.id}.${name}.daemon.log`)
  const life = new DaemonLife({ configFile, logFile, observed: new DaemonObserver(), check: (what, ok, detail) => { r.check(`${name}: ${what}`, ok, detail) }, log: line => { r.log(`${name}: ${line}`) } })
  life.httpPort = await freePort()
  const base = r.config as Record<string, Record<string, unknown>>
  const config = {
    ...base,
    roles: ['process'],
    stateDir: join(r.env.outDir, `chaos-${r.id}.${name}.state`),
    http: { ...base['http'], port: life.httpPort },
    kafka: { ...base['kafka'], ...(staticMember ? { groupInstanceId: `chaos-${name}` } : {}) }
  }
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  r.otherDaemons.push(life)
  return life
}

async function consumed (life: DaemonLife): Promise<number> {
  try { return metricSum(await life.daemon.metrics(), 'finnhubd_kafka_consumed_total') || 0 } catch { return 0 }
}

function processGroup (staticMember: boolean): Scenario {
  const lives: DaemonLife[] = []
  return {
    name: staticMember ? 'cluster-process-group-static' : 'cluster-process-group',
    title: `ingest in its own daemon, two process daemons in one group (static membership ${staticMember ? 'on' : 'off'}); kill -9 of one, restarted; a third added under load`,
    cluster: true,
    config: { roles: ['ingest'] },
    run: async r => {
      lives.length = 0
      const [p1, p2] = [await processDaemon(r, 'p1', staticMember), await processDaemon(r, 'p2', staticMember)]
      lives.push(p1, p2)
      await p1.start()
      await p2.start()
      await r.flow(10_000)
      const [c1, c2] = [await consumed(p1), await consumed(p2)]
      r.check('both process daemons share the load', c1 > 0 && c2 > 0, `p1 consumed ${c1}, p2 ${c2}`)
      r.fault('kill -9 process daemon p1 mid-stream')
      await p1.kill()
      // Static membership: p1's partitions wait for its session timeout (10 s) or its return.
      await r.flow(staticMember ? 6000 : 12_000)
      r.fault('process daemon p1 restarted')
      r.recoveryMs.push(await p1.start())
      await r.flow(10_000)
      r.fault('a third process daemon p3 added under load')
      const p3 = await processDaemon(r, 'p3', staticMember)
      lives.push(p3)
      r.recoveryMs.push(await p3.start())
      await r.flow(15_000)
      const c3 = await consumed(p3)
      r.check('the third process daemon took a share', c3 > 0, `p3 consumed ${c3}`)
    },
    verify: async r => {
      r.check('no record was dead-lettered', await poisonCount(r, lives) === 0)
      for (const l of lives) if (l.daemon.running) await l.stop()
    },
    after: async () => {
      for (const l of lives) if (l.started && l.daemon.running) l.daemon.signal('SIGKILL')
    }
  }
}

// ---- the scenarios -----------------------------------------------------------------

const nodesOf = (r: Run): ClusterNodes => new ClusterNodes(r.env.stack, line => r.log(line))

async function leaderKill (r: Run): Promise<void> {
  const nodes = nodesOf(r)
  const topic = r.directConfig().kafka.topic
  const leader = await nodes.leaderOf(r.env.kafkaBootstrap, topic)
  r.fault(`kill -9 ${leader.name} (broker ${leader.brokerId}, leader of ${leader.leads} of ${leader.of} partitions)`)
  await nodes.kill(leader.name)
  const killed = Date.now()
  await r.flow(20_000)
  r.check('trades are stored while the leader is down (a new leader took over)', storedBetween(r, killed + 10_000, Date.now()) > 0)
  r.fault(`${leader.name} restarted`)
  await nodes.start(leader.name)
  const ms = await isrFull(r)
  r.log(`every replica in sync again ${ms} ms after ${leader.name} answered`)
  await r.recovered()
}

async function cassandraNodeKill (r: Run, outageMs: number): Promise<void> {
  const nodes = nodesOf(r)
  r.fault(`kill -9 cassandra-2 for ${outageMs / 1000} s`)
  await nodes.kill('cassandra-2')
  const killed = Date.now()
  await r.flow(outageMs)
  r.check('writes go on at LOCAL_QUORUM with one node down', storedBetween(r, killed + 10_000, Date.now()) > 0)
  r.check('no record was dead-lettered', await poisonCount(r, []) === 0)
  r.fault('cassandra-2 restarted')
  const ms = await nodes.start('cassandra-2')
  r.log(`cassandra-2 up and seen by the others after ${ms} ms`)
  await r.recovered()
}

async function cassandraTwoDown (r: Run): Promise<void> {
  const nodes = nodesOf(r)
  r.fault('cassandra-2 and cassandra-3 stopped: no quorum')
  await Promise.all([nodes.stop('cassandra-2'), nodes.stop('cassandra-3')])
  const down = Date.now()
  await r.flow(25_000)
  r.check('nothing is stored while two of three nodes are down (writes pause)', storedBetween(r, down + 5000, Date.now()) === 0,
    `${storedBetween(r, down + 5000, Date.now())} rows stored`)
  r.check('no record was dead-lettered (Unavailable is transient)', await poisonCount(r, []) === 0)
  r.fault('cassandra-2 started again: quorum back')
  const back = Date.now()
  await nodes.start('cassandra-2')
  await r.recovered()
  await r.flow(5000)
  r.check('writes resume when one node returns', storedBetween(r, back, Date.now()) > 0)
  r.fault('cassandra-3 started again')
  await nodes.start('cassandra-3')
}

async function cassandraFreeze (r: Run, ms: number): Promise<void> {
  const nodes = nodesOf(r)
  r.fault(`SIGSTOP cassandra-3 for ${ms / 1000} s (half-open: its sockets stay open, nothing answers)`)
  nodes.signal('cassandra-3', 'SIGSTOP')
  const at = Date.now()
  try {
    await r.flow(ms)
  } finally {
    nodes.signal('cassandra-3', 'SIGCONT')
  }
  r.check('writes go on while one node hangs', storedBetween(r, at + 10_000, Date.now()) > 0)
  r.check('no record was dead-lettered', await poisonCount(r, []) === 0)
  await r.recovered()
}

async function rolling (r: Run, kind: 'kafka' | 'cassandra'): Promise<void> {
  const nodes = nodesOf(r)
  for (const i of [1, 2, 3]) {
    const name = `${kind}-${i}`
    r.fault(`rolling restart: ${name} stopped and started`)
    await nodes.stop(name)
    const at = Date.now()
    await nodes.start(name)
    if (kind === 'kafka') await isrFull(r)
    r.recoveryMs.push(Date.now() - at)
    r.log(`${name} back and ${kind === 'kafka' ? 'every replica in sync' : 'seen by the others'} after ${Date.now() - at} ms`)
    await r.flow(3000)
  }
}

export const CLUSTER_SCENARIOS: Scenario[] = [
  {
    name: 'cluster-kafka-leader-kill',
    title: 'kill -9 of the broker leading the trade partitions mid-stream, restarted 20 s later',
    cluster: true,
    run: leaderKill
  },
  {
    name: 'cluster-cassandra-node-kill',
    title: 'kill -9 of one Cassandra node for 60 s: writes go on at LOCAL_QUORUM; the node comes back',
    cluster: true,
    run: async r => { await cassandraNodeKill(r, 60_000) }
  },
  {
    name: 'cluster-cassandra-two-down',
    title: 'two Cassandra nodes stopped for 25 s: writes pause, nothing committed; resume when one returns',
    cluster: true,
    run: cassandraTwoDown
  },
  {
    name: 'cluster-cassandra-node-freeze',
    title: 'one Cassandra node half-open for 30 s (SIGSTOP: connections open, nothing answers; not the TCP proxy)',
    cluster: true,
    run: async r => { await cassandraFreeze(r, 30_000) }
  },
  processGroup(false),
  processGroup(true),
  {
    name: 'cluster-kafka-rolling',
    title: 'rolling restart of the three brokers under load (each back with every replica in sync before the next)',
    cluster: true,
    run: async r => { await rolling(r, 'kafka') }
  },
  {
    name: 'cluster-cassandra-rolling',
    title: 'rolling restart of the three Cassandra nodes under load (each back and seen by the others before the next)',
    cluster: true,
    settleTimeoutMs: 300_000,
    run: async r => { await rolling(r, 'cassandra') }
  }
]

/** The one cluster scenario of npm run test:cluster: one Cassandra node killed for 20 s. */
export const CLUSTER_SUBSET: Scenario[] = [{
  name: 'cluster-cassandra-node-kill-short',
  title: 'kill -9 of one Cassandra node for 20 s: writes go on at LOCAL_QUORUM; the node comes back',
  cluster: true,
  run: async r => { await cassandraNodeKill(r, 20_000) }
}]
