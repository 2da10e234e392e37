// One cluster fault scenario through the real daemon (npm run test:cluster; the whole
// cluster suite is npm run chaos -- --cluster): on the local stack's three-broker /
// three-node cluster (brought up when it does not run), one Cassandra node killed with
// -9 for 20 s while trades flow at LOCAL_QUORUM, then started again. Every trade is
// accounted for: nothing lost, nothing duplicated, every candle exact; writes went on
// while the node was down.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLUSTER_SUBSET } from '../../tools/chaos/cluster.js'
import { runChaos } from '../../tools/chaos/run.js'
import { candleSummary } from '../../tools/chaos/verdict.js'

// The cluster's start (minutes on two cores), the node's restart and the account.
t.setTimeout(30 * 60_000)

t.test('one Cassandra node killed for 20 s on the cluster: every trade stored exactly once', async t => {
  const outDir = mkdtempSync(join(tmpdir(), 'finnhubd-chaos-cluster-'))
  t.teardown(() => { rmSync(outDir, { recursive: true, force: true }) })
  const lines: string[] = []
  const { report } = await runChaos({ scenarios: CLUSTER_SUBSET, ratePerSec: 300, outDir, log: line => { lines.push(line) }, cluster: true })
  const [s] = report.scenarios
  if (s === undefined) throw new Error('no scenario ran')
  for (const c of s.checks) t.ok(c.ok, c.what, { detail: c.detail })
  t.equal(s.lost, 0, 'lost')
  t.equal(s.duplicated, 0, 'duplicated')
  t.equal(s.droppedTotal, 0, 'nothing dropped')
  t.ok(s.sent > 1000, `trades flowed (${s.sent} sent)`)
  t.equal(s.stored, s.sent, 'every trade sent is stored')
  t.ok(s.candles.length > 0 && s.candles.every(c => c.expected > 0 && c.exact === c.expected && c.extra === 0), `every candle exact: ${candleSummary(s.candles)}`)
  t.ok(s.checks.some(c => c.what.startsWith('writes go on at LOCAL_QUORUM') && c.ok), 'writes went on with the node down')
  t.comment(`recovery ${s.recoveryMs.join(', ')} ms; longest no-store ${(s.longestNoStoreMs / 1000).toFixed(1)} s; ${s.seconds} s`)
  t.equal(report.totals.passed, 1, lines.filter(l => l.includes('CHECK FAILED')).join('\n'))
})
