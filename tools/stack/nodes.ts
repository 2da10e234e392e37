// The stack's nodes, from its options: one Kafka and one Cassandra node for the
// single-node stacks, three of each for the cluster stack (options.cluster). Each node
// has its own name, folder and listeners; the config builders and the processes in
// components.ts are made per node from these, so one builder serves both shapes.
// Pure: no I/O.

import { join } from 'node:path'
import { CLUSTER_PORT_STEP, CLUSTER_SIZE, type StackOptions } from './options.js'

export type NodeKind = 'kafka' | 'cassandra'

export interface KafkaNode {
  kind: 'kafka'
  /** `kafka` in a single-node stack, `kafka-1` … `kafka-3` in the cluster. */
  name: string
  /** KRaft node.id: the broker id clients see in metadata (1 … 3). */
  id: number
  home: string
  port: number
  controllerPort: number
  proxiedPort: number
  proxyPort: number
}

export interface CassandraNode {
  kind: 'cassandra'
  /** `cassandra` in a single-node stack, `cassandra-1` … `cassandra-3` in the cluster. */
  name: string
  /** 1 … 3: node n listens on 127.0.0.n. */
  index: number
  address: string
  home: string
  port: number
  storagePort: number
  /** Its one token (num_tokens 1): the ring split into equal thirds, so each node owns a third. */
  token: string
  /** The seed every node gossips with first: node 1's storage endpoint. */
  seed: string
}

export type StackNode = KafkaNode | CassandraNode

const RING_SIZE = 2n ** 64n
const RING_MIN = -(2n ** 63n)

/**
 * Murmur3's ring split evenly among `count` nodes with one token each:
 * -9223372036854775808, -3074457345618258603, 3074457345618258602 for three.
 */
export function evenTokens (count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(RING_MIN + (RING_SIZE * BigInt(i)) / BigInt(count)))
}

const nodeCount = (o: Pick<StackOptions, 'cluster'>): number => o.cluster ? CLUSTER_SIZE : 1

export function kafkaNodes (o: StackOptions): KafkaNode[] {
  return Array.from({ length: nodeCount(o) }, (_, i) => {
    const name = o.cluster ? `kafka-${i + 1}` : 'kafka'
    const step = i * CLUSTER_PORT_STEP
    return {
      kind: 'kafka',
      name,
      id: i + 1,
      home: join(o.dir, name),
      port: o.kafkaPort + step,
      controllerPort: o.kafkaControllerPort + step,
      proxiedPort: o.kafkaProxiedPort + step,
      proxyPort: o.kafkaProxyPort + step
    }
  })
}

export function cassandraNodes (o: StackOptions): CassandraNode[] {
  const count = nodeCount(o)
  // The single node keeps the token it always had (0), so its data stays valid.
  const tokens = o.cluster ? evenTokens(count) : ['0']
  return Array.from({ length: count }, (_, i) => {
    const name = o.cluster ? `cassandra-${i + 1}` : 'cassandra'
    return {
      kind: 'cassandra',
      name,
      index: i + 1,
      address: `127.0.0.${i + 1}`,
      home: join(o.dir, name),
      port: o.cassandraPort,
      storagePort: o.cassandraStoragePort,
      token: tokens[i] ?? '0',
      seed: `127.0.0.1:${o.cassandraStoragePort}`
    }
  })
}

/** KRaft's static quorum: every node is a voter (id@host:controllerPort, comma-separated). */
export function kafkaVoters (o: StackOptions): string {
  return kafkaNodes(o).map(n => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')
}

export interface ClusterEndpoints {
  /** Every broker's client listener, for bootstrap.servers. */
  kafkaBootstrap: string
  /** Every node's address, for cassandra-driver's contactPoints (with cassandraPort). */
  cassandraContactPoints: string[]
  cassandraPort: number
  /** Each node by name: its Kafka broker id or Cassandra address, and its client endpoint. */
  nodes: Array<{ name: string, kind: NodeKind, endpoint: string, kafkaBrokerId: number | null, address: string }>
}

/** Where clients reach every node of a stack (the cluster's three of each, or the single stack's one). */
export function clusterEndpoints (o: StackOptions): ClusterEndpoints {
  const kafka = kafkaNodes(o)
  const cassandra = cassandraNodes(o)
  return {
    kafkaBootstrap: kafka.map(n => `127.0.0.1:${n.port}`).join(','),
    cassandraContactPoints: cassandra.map(n => n.address),
    cassandraPort: o.cassandraPort,
    nodes: [
      ...kafka.map(n => ({ name: n.name, kind: n.kind, endpoint: `127.0.0.1:${n.port}`, kafkaBrokerId: n.id, address: '127.0.0.1' })),
      ...cassandra.map(n => ({ name: n.name, kind: n.kind, endpoint: `${n.address}:${n.port}`, kafkaBrokerId: null, address: n.address }))
    ]
  }
}
