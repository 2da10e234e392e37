// `finnhubd run` as systemd runs it: a child process with NOTIFY_SOCKET bound by the
// test (a real unix datagram socket) and WATCHDOG_USEC set, real signals, the real
// stack and the real simulator. READY=1 comes only once Kafka, Cassandra and Finnhub
// are connected; reloads are framed by RELOADING=1 / READY=1 and never kill the
// daemon; SIGTERM sends STOPPING=1, stores every received trade and exits 0; a
// daemon that cannot connect never says READY=1. Long on purpose (child processes).
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../../daemon/config/schema.js'
import { STAGES } from '../../daemon/metrics/latency.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { spawnDaemon, type DaemonChild, type LogLine } from '../fixtures/daemon-child.js'
import { waitFor } from '../fixtures/kafka.js'
import { listenNotify, type NotifyListener } from '../fixtures/notify-socket.js'
import { cassandraClient, expectedTradeIds, pipelineConfig, readTrades } from '../fixtures/pipeline.js'

t.setTimeout(240_000)

function startChild (t: Test, file: string, notify: NotifyListener): DaemonChild {
  return spawnDaemon(t, file, { PATH: process.env['PATH'] ?? '', NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '1000000' })
}

function configFile (t: Test, config: object): string {
  const file = join(t.testdir(), 'finnhubd.json')
  writeFileSync(file, JSON.stringify(config))
  return file
}

const hasLine = (lines: LogLine[], re: RegExp): boolean => lines.some(l => re.test(String(l['msg'])))

t.test('READY after connecting, watchdog pings, reloads framed by RELOADING/READY, STOPPING and a full drain on SIGTERM', async t => {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 1200, seed: 21, keepSent: true })
  await sim.start()
  t.teardown(() => sim.close())
  const notify = await listenNotify(t)
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: ['AAPL', 'MSFT'] }, http: { port: 0 } })
  const raw = { ...JSON.parse(JSON.stringify(config)) as Config, logLevel: 'info' }
  const file = configFile(t, raw)
  let atReady: { subscriptions: string[][], sent: number } | null = null
  notify.onMessage(m => { if (atReady === null && /^READY=1/.test(m.text)) atReady = { subscriptions: sim.subscriptions(), sent: sim.stats().tradesSent } })
  const child = startChild(t, file, notify)

  const ready = await notify.next(/^READY=1/, 60_000)
  t.ok(ready, 'READY=1 arrives')
  t.same(atReady, { subscriptions: [['AAPL', 'MSFT']], sent: (atReady as { sent: number } | null)?.sent }, 'at READY=1 the Finnhub socket is open and subscribed')
  const beforeReady = notify.messages.slice(0, notify.messages.indexOf(ready as never))
  t.ok(beforeReady.every(m => /^STATUS=/.test(m.text)), 'nothing but STATUS= before READY=1')
  t.ok(hasLine(child.lines, /^process started$/) && hasLine(child.lines, /^ingest started$/), 'Kafka and Cassandra were connected before READY=1')

  const serving = child.lines.find(l => l['msg'] === 'serving HTTP')
  const url = String(serving?.['url'])
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'HTTP on loopback')
  const readyz = await fetch(`${url}/readyz`)
  t.equal(readyz.status, 200)
  t.match(await readyz.json(), { status: 'ready', checks: { finnhub: { ok: true, detail: 'open' }, cassandra: { ok: true } } })
  t.match(await (await fetch(`${url}/metrics`)).text(), /^finnhubd_trades_received_total \d+/m)

  // WATCHDOG_USEC=1 s: a ping every 500 ms.
  const firstPing = await notify.next(/^WATCHDOG=1$/, 5_000)
  t.ok(firstPing, 'the watchdog pings')
  await new Promise(resolve => setTimeout(resolve, 2_100))
  const pings = notify.messages.filter(m => m.text === 'WATCHDOG=1' && m.at >= (firstPing as { at: number }).at)
  t.ok(pings.length >= 4 && pings.length <= 7, `about one ping per 500 ms over 2.1 s (got ${pings.length})`)

  // The hot path's histograms, live after a few seconds of trades: every stage is exported and served.
  const metricsText = await (await fetch(`${url}/metrics`)).text()
  for (const stage of STAGES) t.match(metricsText, new RegExp(`^finnhubd_stage_latency_seconds\\{stage="${stage}",quantile="0\\.99"\\} \\d`, 'm'), `${stage} p99 exported`)
  const latency = await (await fetch(`${url}/latency`)).json() as { stages: Record<string, { count: number }> }
  for (const stage of STAGES) t.ok((latency.stages[stage]?.count ?? 0) > 0, `${stage}: GET /latency has its histogram`)

  const reloadWith = async (content: string): Promise<{ reloading: number, readyAfter: boolean }> => {
    writeFileSync(file, content)
    const from = notify.messages.length
    process.kill(child.pid, 'SIGHUP')
    const reloading = await notify.next(/^RELOADING=1\nMONOTONIC_USEC=\d+/, 10_000, from)
    const readyAgain = await notify.next(/^READY=1/, 10_000, from)
    return { reloading: reloading === undefined ? -1 : notify.messages.indexOf(reloading), readyAfter: readyAgain !== undefined && notify.messages.indexOf(readyAgain) > notify.messages.indexOf(reloading as never) }
  }

  // A valid change applies on the live socket.
  const valid = await reloadWith(JSON.stringify({ ...raw, finnhub: { ...raw.finnhub, symbols: ['AAPL', 'TSLA'] } }))
  t.ok(valid.reloading >= 0 && valid.readyAfter, 'RELOADING=1 then READY=1')
  t.ok(await waitFor(() => JSON.stringify(sim.subscriptions()) === '[["AAPL","TSLA"]]', 10_000), 'the simulator sees MSFT unsubscribed and TSLA subscribed')

  // Invalid files: syntax error, unknown key, bad value. The daemon keeps running on the old config.
  const invalid: Array<[string, RegExp]> = [
    ['{"finnhub": {', /is not valid JSON/],
    [JSON.stringify({ ...raw, kafka: { ...raw.kafka, lingerMss: 5 } }), /unknown key "kafka\.lingerMss"/],
    [JSON.stringify({ ...raw, workers: { ...raw.workers, batchSize: -1 } }), /workers\.batchSize: .*got -1/]
  ]
  for (const [content, reason] of invalid) {
    const before = child.lines.length
    const r = await reloadWith(content)
    t.ok(r.reloading >= 0 && r.readyAfter, 'framed by RELOADING=1 / READY=1 even when refused')
    t.ok(await waitFor(() => child.lines.slice(before).some(l => /^reload refused/.test(String(l['msg'])) && reason.test(String(l['reason'])))), `refused: ${String(reason)}`)
    t.equal((await fetch(`${url}/healthz`)).status, 200, 'still alive')
  }
  t.same(sim.subscriptions(), [['AAPL', 'TSLA']], 'still on the last valid symbols')

  // SIGTERM under load.
  const from = notify.messages.length
  process.kill(child.pid, 'SIGTERM')
  t.equal(await child.exited, 0, 'exits 0')
  t.ok(await notify.next(/^STOPPING=1/, 5_000, from), 'STOPPING=1')
  const stopped = child.lines.find(l => l['msg'] === 'ingest stopped')
  const received = Number(stopped?.['received'])
  t.ok(received > 1000, `trades were flowing (${received} received)`)
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const sent = sim.sent()
  const stored = await readTrades(client, config, ['AAPL', 'MSFT', 'TSLA'], sent.map(s => s.t))
  const ids = new Set(stored.map(s => s.trade_id))
  t.equal(ids.size, received, 'every trade received before SIGTERM is in Cassandra after it')
  t.equal([...ids].filter(id => !expectedTradeIds(sent).has(id)).length, 0, 'each one a trade the simulator sent')
  t.ok(hasLine(child.lines, /^stopped$/), 'the drain is logged')
})

t.test('a daemon that cannot reach Kafka never sends READY=1 and exits 1 with the reason', async t => {
  const notify = await listenNotify(t, { abstract: true })
  const file = configFile(t, { kafka: { bootstrapServers: ['127.0.0.1:1'], connectTimeoutMs: 1500 }, http: { port: 0 } })
  const child = startChild(t, file, notify)
  t.equal(await child.exited, 1)
  t.notOk(notify.messages.some(m => /READY=1/.test(m.text)), 'no READY=1')
  t.ok(child.lines.some(l => /(cannot reach Kafka at 127\.0\.0\.1:1|cannot create the Kafka topic).*kafka\.bootstrapServers.*FINNHUBD_ERR_KAFKA_UNREACHABLE/.test(String(l['stderr']))), 'the reason on stderr')
})
