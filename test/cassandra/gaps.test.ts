// The real local Cassandra: gaps the ledger (daemon/ingest/gap-ledger.ts) writes through its own
// session read back through `finnhubd query --gaps` and the console's /api/gaps: a closed
// outage of two symbols, a drop span of one, an outage left open; the symbol filter; a
// gap across a month boundary stored in both months and listed once.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { createCassandraClient } from '../../daemon/cassandra/client.js'
import { MAX_GAP_MONTHS, storedGaps, writeGap } from '../../daemon/cassandra/gaps.js'
import { main } from '../../daemon/cli.js'
import { validateConfig } from '../../daemon/config/load.js'
import { WebConsole } from '../../daemon/console/console.js'
import { MAX_GAP_RANGE_MS } from '../../daemon/console/params.js'
import { monthsBetween } from '../../daemon/core/gaps.js'
import { GapLedger } from '../../daemon/ingest/gap-ledger.js'
import { startHttp } from '../../daemon/http.js'
import { createLogger } from '../../daemon/log.js'
import { StageLatency } from '../../daemon/metrics/latency.js'
import { createProcessCounters } from '../../daemon/metrics/process.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { waitFor } from '../fixtures/kafka.js'
import { testEndpoints } from '../fixtures/endpoints.js'

t.setTimeout(120_000)

const { cassandraHost, cassandraPort } = testEndpoints()
const keyspace = `finnhub_gaps_${randomUUID().slice(0, 8)}`
const env = { CASSANDRA_HOST: cassandraHost, CASSANDRA_PORT: String(cassandraPort), CASSANDRA_KEYSPACE: keyspace }
const config = validateConfig({
  finnhub: { symbols: ['AAPL', 'MSFT'] },
  cassandra: { contactPoints: [cassandraHost], port: cassandraPort, keyspace },
  http: { port: 0 }
})
const client = createCassandraClient(config.cassandra)

t.before(async () => {
  await runMigrate(config, CQL_DIR, () => {})
  await client.connect()
})
t.teardown(async () => {
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`)
  await client.shutdown()
})

async function cli (...args: string[]): Promise<{ code: number, lines: string[] }> {
  const lines: string[] = []
  const code = await main(['query', '--gaps', ...args], { env, out: l => lines.push(l), err: l => lines.push(l) })
  return { code, lines }
}

t.test('gaps the ledger writes read back through query --gaps and /api/gaps', async t => {
  const stateDir = mkdtempSync(join(tmpdir(), 'finnhubd-gaps-'))
  t.teardown(() => { rmSync(stateDir, { recursive: true, force: true }) })
  // The clock a little ahead of real time stays in this month (a gap row goes into each month it spans).
  const base = Date.now() - 600_000
  let now = base
  const ledger = new GapLedger({ config, stateDir, log: createLogger({ level: 'fatal' }), now: () => now })
  t.teardown(() => ledger.stop(now))
  ledger.up(['AAPL', 'MSFT'])
  ledger.received(now, [{ s: 'AAPL', t: base - 1_000 }, { s: 'MSFT', t: base - 500 }], 2)
  now += 1_000
  ledger.down('disconnected', ['AAPL', 'MSFT'])
  now += 4_000
  ledger.up(['AAPL', 'MSFT'])
  ledger.received(now, [{ s: 'MSFT', t: now - 10 }], 1)
  now += 1_000
  ledger.dropped('shed_overload', [{ s: 'AAPL', t: now - 20 }, { s: 'AAPL', t: now - 5 }, { s: 'AAPL', t: now - 1 }])
  now += 10_000
  ledger.tick()
  ledger.down('stalled', ['AAPL', 'MSFT'])
  // The outage: from the watermark to the earlier of the subscription and the first trade
  // after; the stall from the same watermark (dropped trades do not move it).
  const outageEnd = base + 4_990
  const dropStart = base + 5_980
  const dropEnd = base + 5_999
  const stallStart = outageEnd
  for (;;) {
    ledger.tick()
    if (await waitFor(() => ledger.counters.pendingWrites === 0, 1_000)) break
  }
  t.equal(ledger.counters.writeErrors, 0, 'written on the first attempt')

  const all = await cli('--since', new Date(base - 60_000).toISOString())
  t.equal(all.code, 0)
  t.same(all.lines, [
    `${new Date(base - 500).toISOString()} → ${new Date(outageEnd).toISOString()}  5.490 s  disconnected  dropped unknown  AAPL,MSFT`,
    `${new Date(stallStart).toISOString()} → open  stalled  dropped unknown  AAPL,MSFT`,
    `${new Date(dropStart).toISOString()} → ${new Date(dropEnd).toISOString()}  0.019 s  shed_overload  dropped 3  AAPL`
  ], 'each gap once, by start: the outage, the stall still open, the drop span counted')
  const reasons = (lines: string[]): string[] => lines.map(l => / {2}(disconnected|stalled|shed_overload) {2}/.exec(l)?.[1] ?? l)
  t.same(reasons((await cli('MSFT', '--since', new Date(base - 60_000).toISOString())).lines), ['disconnected', 'stalled'], 'of MSFT: not the AAPL-only drop span')
  t.same(reasons((await cli('--since', new Date(base + 10_000).toISOString())).lines), ['stalled'], 'since after the closed ones: the open gap, which reaches to now')
  t.match((await cli('NOPE', '--since', new Date(base - 60_000).toISOString())).lines, [/^no gaps for NOPE since /])

  const registry = new Registry()
  const latency = new StageLatency()
  const webConsole = new WebConsole({
    config: () => config,
    token: null,
    startedAt: Date.now(),
    roles: ['process'],
    ingest: null,
    process: { counters: createProcessCounters(), cassandra: client },
    latency,
    readiness: () => ({ ready: true, checks: {} }),
    log: createLogger({ level: 'fatal' })
  })
  const http = await startHttp({ host: '127.0.0.1', port: 0, registry, latency, readiness: () => ({ ready: true, checks: {} }), log: createLogger({ level: 'fatal' }), console: webConsole })
  t.teardown(async () => { await webConsole.close(); await http.close() })
  const from = new Date(base - 60_000).toISOString()
  const to = new Date(base + 3_600_000).toISOString()
  const res = await fetch(`${http.url}/api/gaps?from=${from}&to=${to}`)
  t.equal(res.status, 200)
  const body = await res.json() as { symbol: string | null, from: string, to: string, gaps: Array<Record<string, unknown>> }
  t.match(body, { symbol: null, from, to })
  t.match(body.gaps, [
    { reason: 'disconnected', start: base - 500, end: outageEnd, symbols: ['AAPL', 'MSFT'], dropped: null, id: /\/disconnected\// },
    { reason: 'stalled', start: stallStart, end: null, symbols: ['AAPL', 'MSFT'], dropped: null },
    { reason: 'shed_overload', start: dropStart, end: dropEnd, symbols: ['AAPL'], dropped: 3 }
  ])
  t.equal(body.gaps.length, 3)
  const msft = await (await fetch(`${http.url}/api/gaps?symbol=MSFT&from=${from}&to=${to}`)).json() as { gaps: Array<{ reason: string }> }
  t.same(msft.gaps.map(g => g.reason), ['disconnected', 'stalled'], 'of a symbol')
  const before = await (await fetch(`${http.url}/api/gaps?from=${new Date(base - 120_000).toISOString()}&to=${new Date(base - 60_000).toISOString()}`)).json() as { gaps: unknown[] }
  t.same(before.gaps, [], 'none before the first')
  const between = await (await fetch(`${http.url}/api/gaps?from=${new Date(outageEnd + 1).toISOString()}&to=${new Date(dropStart).toISOString()}`)).json() as { gaps: unknown[] }
  t.match(between.gaps, [{ reason: 'stalled' }], 'between two closed gaps: only the open one, which reaches to now')
  t.equal(between.gaps.length, 1)
})

t.test('a gap across a month boundary is stored in both months and listed once from either', async t => {
  const start = Date.parse('2025-01-31T23:59:00Z')
  const end = Date.parse('2025-02-01T00:01:00Z')
  const gap = { id: '2025-01-31T23:59:01.000Z/disconnected/test.0', reason: 'disconnected' as const, start, end, symbols: ['AAPL'], dropped: null, openedAt: start + 1_000 }
  await writeGap(client, keyspace, gap, 'test', end + 5_000)
  const months = await client.execute(`SELECT month FROM ${keyspace}.gaps WHERE month IN ('2025-01', '2025-02') AND gap_id = ?`, [gap.id], { prepare: true })
  t.same(months.rows.map(r => r['month'] as string).sort(), ['2025-01', '2025-02'])
  t.same((await storedGaps(client, config.cassandra, Date.parse('2025-01-01T00:00:00Z'), Date.parse('2025-03-01T00:00:00Z'), null, 10)).map(g => g.id), [gap.id], 'listed once over both months')
  t.same((await storedGaps(client, config.cassandra, Date.parse('2025-02-01T00:00:30Z'), Date.parse('2025-02-02T00:00:00Z'), 'AAPL', 10)).map(g => g.id), [gap.id], 'found from February alone')
  t.same((await storedGaps(client, config.cassandra, Date.parse('2025-02-01T00:00:30Z'), Date.parse('2025-02-02T00:00:00Z'), 'MSFT', 10)), [], 'not for another symbol')
  t.same((await storedGaps(client, config.cassandra, end + 1, Date.parse('2025-02-02T00:00:00Z'), null, 10)), [], 'nor after its end')
})

t.test('the longest range the console serves is read whole: every month partition of it', async t => {
  const to = Date.parse('2026-12-31T23:59:59Z')
  t.ok(monthsBetween(to - MAX_GAP_RANGE_MS, to).length <= MAX_GAP_MONTHS, `${monthsBetween(to - MAX_GAP_RANGE_MS, to).length} months ≤ ${MAX_GAP_MONTHS}`)
  const old = { id: '2019-03-01T00:00:00.000Z/stalled/test.1', reason: 'stalled' as const, start: Date.parse('2019-03-01T00:00:00Z'), end: Date.parse('2019-03-01T00:05:00Z'), symbols: ['AAPL'], dropped: null, openedAt: Date.parse('2019-03-01T00:00:01Z') }
  await writeGap(client, keyspace, old, 'test', old.end)
  t.same((await storedGaps(client, config.cassandra, to - MAX_GAP_RANGE_MS, to, null, 10)).map(g => g.id).filter(id => id === old.id), [old.id], 'a gap 8 years back is found')
})
