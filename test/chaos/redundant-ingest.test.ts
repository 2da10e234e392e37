// Redundant ingest end to end (tools/chaos/redundant.ts): the simulator broadcasts one
// stream to two ingest daemons of one group (a, which also processes, and b); b is
// killed with -9 mid-stream and restarted. The stream must be stored exactly with no
// kill window excused, b's downtime recorded as its own gap and no hole in the group's
// combined view, and the process role's per-source counts must add up.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runChaos } from '../../tools/chaos/run.js'
import { REDUNDANT_INGEST } from '../../tools/chaos/redundant.js'

t.setTimeout(300_000)

t.test('two ingest daemons, one killed and restarted: 0 lost, 0 duplicated, candles exact, no hole', async t => {
  const outDir = mkdtempSync(join(tmpdir(), 'finnhubd-redundant-'))
  t.teardown(() => { rmSync(outDir, { recursive: true, force: true }) })
  const { report } = await runChaos({ scenarios: [REDUNDANT_INGEST], ratePerSec: 300, outDir, log: () => {} })
  const s = report.scenarios[0]
  if (s === undefined) throw new Error('no result')
  for (const c of s.checks) t.ok(c.ok, c.what, { detail: c.detail })
  t.equal(s.lost, 0, 'lost')
  t.equal(s.droppedTotal, 0, 'nothing dropped with a counted reason either')
  t.equal(s.duplicated, 0, 'duplicated')
  t.equal(s.inFlightAtEdges, 0, 'nothing excused as in flight: b\'s kill is covered by a')
  t.ok(s.sent > 1000, `trades flowed (${s.sent} sent)`)
  t.equal(s.stored, s.sent, 'every trade sent is stored')
  t.equal(s.faults, 2, 'the kill and the restart')
})
