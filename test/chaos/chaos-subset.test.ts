// The fault suite's fast subset (tools/chaos/scenarios.ts SUBSET), inside `npm test`:
// one daemon kill -9, one Finnhub drop and stall, one Cassandra pause (its connections frozen in the suite's
// proxy), one poison batch, one malformed flood, a short hostile topic — each against the real simulator,
// the real daemon process and the shared stack, accounted for trade by trade. The
// whole suite is `npm run chaos`.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runChaos } from '../../tools/chaos/run.js'
import { gapLine } from '../../tools/chaos/report.js'
import { HOSTILE_CLASSES, SUBSET } from '../../tools/chaos/scenarios.js'
import { candleSummary } from '../../tools/chaos/verdict.js'

// Five scenarios of ~20 s each, plus set-up: far past tap's 30 s default, on purpose.
t.setTimeout(420_000)

t.test('the fast subset: nothing lost, nothing duplicated, every bad input counted', async t => {
  const outDir = mkdtempSync(join(tmpdir(), 'finnhubd-chaos-'))
  t.teardown(() => { rmSync(outDir, { recursive: true, force: true }) })
  const lines: string[] = []
  const { report, files } = await runChaos({ scenarios: SUBSET, ratePerSec: 300, outDir, log: line => { lines.push(line) } })
  for (const s of report.scenarios) {
    t.test(s.name, async t => {
      for (const c of s.checks) t.ok(c.ok, c.what, { detail: c.detail })
      t.equal(s.lost, 0, 'lost')
      t.equal(s.duplicated, 0, 'duplicated')
      t.ok(s.sent > 1000, `trades flowed (${s.sent} sent)`)
      t.equal(s.stored + s.inFlightAtEdges, s.sent, 'every trade sent is stored or was in flight at a kill')
      t.ok(s.faults >= 1, 'a fault was injected')
      t.same(s.candles.map(c => c.resolution), ['1m', '5m', '15m', '1h', '1d'], 'every resolution checked')
      t.ok(s.candles.every(c => c.expected > 0 && c.exact === c.expected && c.extra === 0), `every candle exact: ${candleSummary(s.candles)}`)
      for (const g of s.gaps) t.comment(`${s.name} gap row: ${gapLine(g)} (of ${s.lostUpstream} never stored)`)
      const reasons = s.gaps.map(g => g.reason).sort()
      if (s.name === 'daemon-kill-once') {
        t.same(reasons, ['daemon_down'], 'the kill leaves one daemon_down gap')
        t.equal(s.gaps[0]?.lostInside, s.lostUpstream, 'holding every trade sent and never stored')
      } else if (s.name === 'finnhub-drop-stall') {
        t.same(reasons, ['disconnected', 'stalled'], 'a disconnected and a stalled gap')
        t.ok(s.gaps.every(g => g.storedInside === 0 && g.dropped === null), 'nothing stored inside them; dropped unknown')
      } else {
        t.same(reasons, [], 'no gap where nothing was lost')
      }
    })
  }
  t.equal(report.totals.scenarios, SUBSET.length)
  t.equal(report.totals.passed, SUBSET.length, lines.filter(l => l.includes('CHECK FAILED')).join('\n'))
  t.equal(report.totals.badInputs, 20 + 700 + 3 * HOSTILE_CLASSES, 'the poison batch (4 kinds × 5), the flood (5 rounds of 140) and the hostile topic (3 rounds of every class) were tried')
  const md = readFileSync(files[0] as string, 'utf8')
  t.match(md, /\| scenario \| result \| faults \|/)
  t.match(md, /\| 1m [\d,]+\/[\d,]+, 5m [\d,]+\/[\d,]+, 15m [\d,]+\/[\d,]+, 1h [\d,]+\/[\d,]+, 1d [\d,]+\/[\d,]+ \|/, 'the table gives the candles per resolution')
  for (const s of SUBSET) t.match(md, new RegExp(`\\| ${s.name} \\| pass \\|`))
})
