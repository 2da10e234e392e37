// The redundant-ingest scenario (docs/operations.md "Redundant ingest"): the simulator
// broadcasts one stream to every connection; the suite's daemon is member `a` of the
// group `chaos` (ingest and process), a second daemon member `b` (ingest only, its own
// config, state directory and HTTP port). `b` is killed with -9 mid-stream and
// restarted. The account must find the stream stored exactly (nothing lost, nothing
// duplicated, candles exact) with no excuse: b's kill is not one of the run's edges, so a
// trade missing around it counts as lost. b's daemon_down gap is recorded under its
// source, and the group's combined view holds no hole. The process role's counts add up:
// every record consumed is counted once, first or duplicate, and both members
// contributed first copies.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { storedGaps } from '../../daemon/cassandra/gaps.js'
import { combineGaps, sourceTag } from '../../daemon/core/redundancy.js'
import { freePort } from '../bench/daemon-process.js'
import { sleep } from '../stack/proc.js'
import { metricSum } from '../verify/prom-text.js'
import { DaemonLife } from './daemon-life.js'
import { metricByLabel, type Run, type Scenario } from './harness.js'
import { DaemonObserver } from './observer.js'

export const GROUP = { group: 'chaos', members: ['a', 'b'] }

/** The peer daemon: the run's config as ingest member `b`, with its own state directory and HTTP port. */
async function startPeer (r: Run): Promise<DaemonLife> {
  const configFile = join(r.env.outDir, `chaos-${r.id}.peer-b.config.json`)
  const logFile = join(r.env.outDir, `chaos-${r.id}.peer-b.daemon.log`)
  const peer = new DaemonLife({ configFile, logFile, observed: new DaemonObserver(), check: (what, ok, detail) => { r.check(`peer b: ${what}`, ok, detail) }, log: line => { r.log(`peer b: ${line}`) } })
  peer.httpPort = await freePort()
  const base = r.config as Record<string, Record<string, unknown>>
  const config = {
    ...base,
    roles: ['ingest'],
    stateDir: join(r.env.outDir, `chaos-${r.id}.peer-b.state`),
    http: { ...base['http'], port: peer.httpPort },
    redundancy: { ...GROUP, member: 'b' }
  }
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  await peer.start()
  return peer
}

/** Reads the process role's per-source counts until every record consumed is counted (or the timeout). */
async function settledCounts (r: Run, timeoutMs: number): Promise<{ first: Record<string, number>, duplicate: Record<string, number>, consumed: number }> {
  const deadline = Date.now() + timeoutMs
  let last = { first: {} as Record<string, number>, duplicate: {} as Record<string, number>, consumed: NaN }
  while (Date.now() < deadline) {
    const text = await r.metrics()
    last = { first: metricByLabel(text, 'finnhubd_redundant_first_total'), duplicate: metricByLabel(text, 'finnhubd_redundant_duplicate_total'), consumed: metricSum(text, 'finnhubd_kafka_consumed_total') }
    const counted = [...Object.values(last.first), ...Object.values(last.duplicate)].reduce((a, b) => a + b, 0)
    if (counted === last.consumed && metricSum(text, 'finnhubd_process_in_flight_records') === 0) return last
    await sleep(1000)
  }
  return last
}

async function run (r: Run): Promise<void> {
  const peer = await startPeer(r)
  await r.flow(5000)
  r.fault('kill -9 ingest b mid-stream (a covers)')
  await peer.kill()
  await r.flow(4000)
  r.fault('ingest b restarted')
  await peer.start()
  await r.flow(5000)
  // b stops cleanly (its producer flushed) while the stream goes on through a alone.
  await peer.stop()
  await r.flow(2000)
  r.sim.pause()
  const c = await settledCounts(r, 120_000)
  const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)
  r.check('every record consumed is counted once, first or duplicate, per source', sum(c.first) + sum(c.duplicate) === c.consumed,
    `consumed ${c.consumed}; first ${JSON.stringify(c.first)}; duplicate ${JSON.stringify(c.duplicate)}`)
  r.check('both members contributed first copies, and both sent copies already stored',
    (c.first['a'] ?? 0) > 0 && (c.first['b'] ?? 0) > 0 && (c.duplicate['a'] ?? 0) > 0 && (c.duplicate['b'] ?? 0) > 0,
    `first ${JSON.stringify(c.first)}; duplicate ${JSON.stringify(c.duplicate)}`)
  r.check('no record without a source or from another group', (c.first['none'] ?? 0) + (c.first['other'] ?? 0) + (c.duplicate['none'] ?? 0) + (c.duplicate['other'] ?? 0) === 0)
  r.log(`per source: first ${JSON.stringify(c.first)}, duplicate ${JSON.stringify(c.duplicate)}, consumed ${c.consumed}`)
}

async function verify (r: Run): Promise<void> {
  const config = r.directConfig()
  const client = await connectCassandra(config.cassandra)
  try {
    const gaps = await storedGaps(client, config.cassandra, 0, Date.now() + 86_400_000, null, 100_000)
    const ofB = gaps.filter(g => g.source === sourceTag(GROUP.group, 'b'))
    r.check('b\'s downtime is recorded under its source (a daemon_down gap of chaos/b)', ofB.some(g => g.reason === 'daemon_down'),
      gaps.map(g => `${g.source} ${g.reason} ${new Date(g.start).toISOString()}–${g.end === null ? 'open' : new Date(g.end).toISOString()}`).join('; ') || 'no gap rows')
    const combined = combineGaps(gaps, GROUP, Date.now())
    r.check('the group\'s combined view holds no hole (a covered every stretch of b\'s)', combined.holes.length === 0 && combined.alone.length === 0,
      `${combined.holes.length} holes, ${combined.covered.length} covered, ${combined.alone.length} outside the group`)
  } finally {
    await client.shutdown()
  }
}

export const REDUNDANT_INGEST: Scenario = {
  name: 'redundant-ingest',
  title: 'two ingest daemons (a, b) on one broadcast stream; kill -9 of b mid-stream, restarted: the stream stored exactly, no hole',
  simulator: { broadcast: true },
  // No load shedding at a's socket: a shed is a counted, deliberate drop, and on a busy
  // machine it can fall while b is down (a true hole, correctly recorded, but not what
  // this scenario proves). b runs the ingest role alone and never sheds.
  config: { redundancy: { ...GROUP, member: 'a' }, overload: { shed: false } },
  // b's restart records its daemon_down (covered by a): a gap where nothing was lost, explained.
  gapReasons: ['daemon_down'],
  // Each member writes its own copy of a trade into the topic; the store keeps one row.
  copiesPerTrade: 2,
  run,
  verify
}
