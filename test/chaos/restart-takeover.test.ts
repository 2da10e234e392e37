// Regression (found by the fault suite): a daemon killed with kill -9 and started
// again sat idle until the group's session timeout expired (librdkafka's 45 s then),
// because the broker waited for the dead member before handing its partitions on.
// With kafka.groupInstanceId (static membership) the restarted daemon takes them
// back at once: here the session timeout is two minutes, and everything must still
// be stored within 45 s of the restart.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runChaos } from '../../tools/chaos/run.js'
import { daemonKills } from '../../tools/chaos/scenarios.js'

t.setTimeout(240_000)

t.test('static membership: a killed daemon restarted with the same kafka.groupInstanceId resumes at once', async t => {
  const outDir = mkdtempSync(join(tmpdir(), 'finnhubd-takeover-'))
  t.teardown(() => { rmSync(outDir, { recursive: true, force: true }) })
  const { report } = await runChaos({
    scenarios: [{
      name: 'static-member-kill',
      title: 'kill -9 and restart with a static group member (session timeout 120 s)',
      config: { kafka: { groupInstanceId: 'finnhubd-takeover-test', sessionTimeoutMs: 120_000 } },
      settleTimeoutMs: 45_000,
      run: r => daemonKills(r, 1)
    }],
    ratePerSec: 300,
    outDir,
    log: () => {}
  })
  const s = report.scenarios[0]
  t.ok(s !== undefined)
  for (const c of s?.checks ?? []) t.ok(c.ok, c.what, { detail: c.detail })
  t.equal(s?.lost, 0)
  t.equal(s?.duplicated, 0)
})
