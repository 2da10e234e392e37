// The fault suite's report: a table of every scenario (JSON beside it), with the
// totals of faults injected and bad inputs tried.

import type { ScenarioResult } from './harness.js'
import { candlesExact, candleSummary, type GapRow } from './verdict.js'

export interface ChaosReport {
  startedAt: string
  seconds: number
  /** Run on the replicated cluster (npm run chaos -- --cluster). */
  cluster?: boolean
  ratePerSec: number
  machine: { cpus: number, node: string }
  totals: { scenarios: number, passed: number, faults: number, badInputs: number, sent: number, stored: number, lost: number, duplicated: number, dropped: number }
  scenarios: ScenarioResult[]
}

export function totalsOf (results: readonly ScenarioResult[]): ChaosReport['totals'] {
  const sum = (f: (r: ScenarioResult) => number): number => results.reduce((a, r) => a + f(r), 0)
  return {
    scenarios: results.length,
    passed: results.filter(r => r.ok).length,
    faults: sum(r => r.faults),
    badInputs: sum(r => r.badInputs),
    sent: sum(r => r.sent),
    stored: sum(r => r.stored),
    lost: sum(r => r.lost),
    duplicated: sum(r => r.duplicated),
    dropped: sum(r => r.droppedTotal)
  }
}

const n = (x: number): string => x.toLocaleString('en-US')

/** The gap rows of a scenario in one cell: reason: trades never stored inside / stored inside, each. */
export function gapCell (s: Pick<ScenarioResult, 'gaps'>): string {
  return s.gaps.map(g => `${g.reason}: ${n(g.lostInside)} / ${n(g.storedInside)}`).join(', ') || 'none'
}

/** One gap row beside the simulator's account. */
export function gapLine (g: GapRow): string {
  const at = (iso: string | null): string => iso === null ? 'open' : iso.slice(11, 23)
  return `${g.reason} ${at(g.start)} → ${at(g.end)}, ${g.symbols} symbols, dropped ${g.dropped ?? 'unknown'}; ` +
    `${n(g.lostInside)} trades sent and never stored inside, ${n(g.storedInside)} stored strictly inside`
}

export function renderChaosMarkdown (r: ChaosReport): string {
  const t = r.totals
  const lines = [
    `# finnhubd fault suite${r.cluster === true ? ' on the three-broker / three-node cluster' : ''} — ${r.startedAt}`,
    '',
    `${t.passed} of ${t.scenarios} scenarios passed in ${r.seconds} s at ${n(r.ratePerSec)} trades/s; ` +
      `**${n(t.faults)} faults injected, ${n(t.badInputs)} bad inputs tried**; ${n(t.sent)} trades sent, ${n(t.stored)} stored, ` +
      `**${n(t.lost)} lost, ${n(t.duplicated)} duplicated**, ${n(t.dropped)} dropped with a counted reason.`,
    '',
    '| scenario | result | faults | bad inputs | sent | in Kafka | stored | lost | dup | dropped (reason) | in flight at kill/stop | never stored | gap rows (reason: never stored inside / stored inside) | candles exact (per resolution) | recovery ms | longest no-store s | peak RSS MiB | longest stall ms |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|---|--:|---|--:|--:|--:|'
  ]
  for (const s of r.scenarios) {
    const dropped = Object.entries(s.dropped).filter(([, v]) => v > 0).map(([k, v]) => `${n(v)} ${k}`).join(', ') || '0'
    lines.push(`| ${s.name} | ${s.ok ? 'pass' : '**FAIL**'} | ${s.faults} | ${n(s.badInputs)} | ${n(s.sent)} | ${n(s.inKafka)} | ${n(s.stored)} | ${n(s.lost)} | ${n(s.duplicated)} | ${dropped} | ${n(s.inFlightAtEdges)} | ${n(s.lostUpstream)} | ${gapCell(s)} | ${candlesExact(s.candles) ? candleSummary(s.candles) : `**${candleSummary(s.candles)}**`} | ${s.recoveryMs.join(', ') || '–'} | ${((s.longestNoStoreMs ?? 0) / 1000).toFixed(1)} | ${s.peakRssMiB} | ${Math.round(s.maxStallS * 1000)} |`)
  }
  lines.push('', '## Scenarios', '')
  for (const s of r.scenarios) {
    lines.push(`- **${s.name}**: ${s.title} (${s.seconds} s)`)
    lines.push(`  - candles exact: ${candleSummary(s.candles)}`)
    for (const g of s.gaps) lines.push(`  - gap row: ${gapLine(g)}`)
    for (const c of s.checks) lines.push(`  - ${c.ok ? '✓' : '✗'} ${c.what}${c.detail !== '' ? ` — ${c.detail.split('\n')[0]}` : ''}`)
  }
  lines.push('', 'Columns: *lost* = in Kafka and not stored, plus trades missing from Kafka beyond the counted drops; ' +
    '*dup* = Kafka records beyond one per trade plus stored rows for no trade sent; *never stored* = trades the simulator sent that ' +
    'are not stored, for any reason (counted drops and in flight included); *gap rows* = the gaps table\'s rows (cql/006) with how many of ' +
    'those trades lie inside each and how many stored trades lie strictly inside; *in flight at kill/stop* = trades sent in the 3 s ' +
    'before a kill -9 or SIGTERM of the daemon (up to its exit) that never reached Kafka: held in its socket buffer or memory when it ' +
    'died or stopped reading (Finnhub has no replay), so never accepted; *recovery* = from the fault healed to GET /readyz 200 (a restarted daemon: its start to ready; a rolling restart: each node from its start to ready, Kafka with every replica in sync); *longest no-store* = the longest interval in which the daemons\' stored-trade counter did not rise while trades were being sent (per 0.5 s scrape; a daemon down counts until its successor\'s first scrape); ' +
    '*candles exact* = per resolution, the stored candles (candles_1m … candles_1d) equal to their recomputation from the stored ' +
    'trades, of those recomputed (+ rows for a period with no stored trade); *longest stall* = the longest event-loop delay of the daemon (per 0.5 s scrape).', '')
  return lines.join('\n')
}
