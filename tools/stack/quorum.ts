// The cluster stack's KRaft quorum, asked for real: Kafka's DescribeQuorum through the
// Admin API of the fetched kafka-clients jar (kafka/QuorumStatus.java, run by `java` as a
// single source file; the stack fetches no kafka-tools jar for the metadata-quorum
// command). node-rdkafka cannot ask: librdkafka has no DescribeQuorum.

import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../daemon/paths.js'

export interface KafkaQuorum {
  leaderId: number
  leaderEpoch: number
  highWatermark: number
  /** Caught up: within a few records of the leader (the controller writes a no-op record every 500 ms). */
  voters: Array<{ id: number, logEndOffset: number, caughtUp: boolean }>
}

const QUORUM_PROGRAM = join(PROJECT_ROOT, 'tools', 'stack', 'kafka', 'QuorumStatus.java')

/** How far behind the leader's log a voter may be and still count as caught up. */
export const QUORUM_LAG_RECORDS = 10

/** Reads QuorumStatus.java's output; a string says what was wrong with it. */
export function parseQuorum (text: string): KafkaQuorum | string {
  const head = /^leader=(-?\d+) epoch=(-?\d+) hw=(-?\d+)$/m.exec(text)
  if (head === null) return `no quorum in the answer: ${text.trim().split('\n').slice(-3).join(' | ').slice(0, 300)}`
  const leaderId = Number(head[1])
  const raw = [...text.matchAll(/^voter=(-?\d+) leo=(-?\d+)$/gm)].map(m => ({ id: Number(m[1]), logEndOffset: Number(m[2]) }))
  const leaderLeo = raw.find(v => v.id === leaderId)?.logEndOffset ?? -1
  return {
    leaderId,
    leaderEpoch: Number(head[2]),
    highWatermark: Number(head[3]),
    voters: raw.map(v => ({ ...v, caughtUp: leaderLeo >= 0 && v.logEndOffset >= 0 && leaderLeo - v.logEndOffset <= QUORUM_LAG_RECORDS }))
  }
}

/** The quorum through `bootstrap` (host:port,…); a string when it could not be read (not yet up, no leader). */
export async function kafkaQuorum (java: string, libDir: string, bootstrap: string): Promise<KafkaQuorum | string> {
  return await new Promise(resolve => {
    execFile(java, ['-Xmx128m', '-XX:TieredStopAtLevel=1', '-Dorg.slf4j.simpleLogger.defaultLogLevel=off', '-Dlog4j2.level=OFF', '-cp', `${libDir}/*`, QUORUM_PROGRAM, bootstrap],
      { timeout: 90_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err !== null) resolve(`${err.message.split('\n')[0] ?? ''} ${String(stderr).trim().split('\n').slice(-2).join(' | ')}`.slice(0, 400))
        else resolve(parseQuorum(stdout))
      })
  })
}
