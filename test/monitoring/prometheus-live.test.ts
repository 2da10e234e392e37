// The monitoring kit against a live daemon: Debian's real Prometheus server (installed
// with the `prometheus` package when missing, as promtool is) scrapes a real finnhubd
// (the compiled dist/ tree, on the local stack, fed by a private simulator) with a config
// derived from monitoring/prometheus.yml: only the target, the intervals (1 s) and the
// rule files' paths change.
//
// Two rule files are loaded: the shipped monitoring/alerts.yml by its path, unchanged,
// and a copy whose `for:` durations are divided by 60 (a minute becomes a second; the
// expressions are untouched), so that alerts can fire and resolve within the test.
//
// It proves: the target is up under the shipped job; both rule files load and every rule
// evaluates without error; every query of the Grafana dashboard, with its variables
// replaced as Grafana does, returns series; and three alerts go inactive → firing →
// inactive on real faults, each private to this test's daemon (the shared stack is
// never paused):
//  - FinnhubdFinnhubDisconnected: the simulator closed (the feed gone), then back;
//  - FinnhubdCassandraErrors: the daemon's Cassandra connections frozen (a TCP proxy
//    that stops reading, as if Cassandra were SIGSTOPped), then passing again;
//  - FinnhubdDown: the daemon itself SIGSTOPped (scrapes time out), then SIGCONTed.
// While each fault lasts, the shipped rule (its full `for:`) is seen pending.
//
// Everything it starts (prometheus, the daemon, the simulator, the proxy) is stopped in
// teardown, the daemon resumed first; its topic and keyspace are dropped.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.js'
import { runMigrate } from '../../daemon/cassandra/migrate-command.js'
import { CQL_DIR } from '../../daemon/paths.js'
import { DaemonProcess } from '../../tools/bench/daemon-process.js'
import { TcpProxy } from '../../tools/chaos/proxy.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { sleep } from '../../tools/stack/proc.js'
import { dropRunData } from '../../tools/verify/verify.js'
import { loadDashboard, MONITORING_DIR, panelQueries, regexValue, substitute } from '../fixtures/dashboard.js'
import { ensureDebianTool } from '../fixtures/debian.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { createTopic, uniqueName } from '../fixtures/kafka.js'
import { freePorts } from '../fixtures/ports.js'
import { durationSeconds, liveConfig, PrometheusServer, shortenedRules, type RuleState } from '../fixtures/prometheus.js'

t.setTimeout(600_000) // installing the prometheus package when it is missing; the run itself takes about a minute

const INTERVAL_S = 1
/** The shipped group's name, and the shortened copy's. */
const SHIPPED = 'finnhubd'
const LIVE = 'finnhubd-live'
const FOR_DIVISOR = 60
const TOKEN = 'prometheus-live'
const SYMBOLS = ['PROM:AAA', 'PROM:BBB', 'PROM:CCC']

const dir = mkdtempSync(join(tmpdir(), 'finnhubd-prometheus-'))
const endpoints = testEndpoints()
const id = uniqueName('prom').replace(/-/g, '_')
const topic = `finnhubd.${id}`
const [httpPort, promPort, proxyPort, simPort] = await freePorts(4) as [number, number, number, number]
const instance = `127.0.0.1:${httpPort}`
const daemonConfig = {
  logLevel: 'warn',
  finnhub: { url: `ws://127.0.0.1:${simPort}`, token: TOKEN, symbols: SYMBOLS, reconnectInitialDelayMs: 200, reconnectMaxDelayMs: 1000 },
  kafka: { bootstrapServers: [endpoints.kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: `g_${id}`, statsIntervalMs: 500, commitIntervalMs: 500 },
  // Through the proxy, so the test can freeze this daemon's Cassandra and no one else's.
  // Few concurrent writes: a frozen Cassandra then fails only a few requests a second
  // for the seconds the fault lasts, far from the rule's other arm (more than 1 error a
  // second averaged over 5 minutes), which would hold the alert firing after the fault.
  cassandra: { contactPoints: [endpoints.cassandraHost], port: proxyPort, keyspace: `t_${id}`, requestTimeoutMs: 2000, retryMaxDelayMs: 1000, maxConcurrentWrites: 4 },
  workers: { poolSize: 1 },
  http: { port: httpPort }
}
/** The same config with the direct Cassandra port and the default timeout (a DROP KEYSPACE may take longer than 2 s), for the test's own migrate and clean-up. */
const direct = validateConfig({ ...daemonConfig, cassandra: { ...daemonConfig.cassandra, port: endpoints.cassandraPort, requestTimeoutMs: undefined } })

let sim: FinnhubSimulator | null = null
const proxy = new TcpProxy(endpoints.cassandraPort)
let daemon: DaemonProcess | null = null
let prom: PrometheusServer | null = null

const startSimulator = async (): Promise<void> => {
  sim = new FinnhubSimulator({ token: TOKEN, ratePerSec: 200, port: simPort, pingIntervalMs: 1000 })
  await sim.start()
}

t.before(async () => {
  ensureDebianTool('prometheus', 'prometheus')
  await startSimulator()
  await proxy.listen(proxyPort)
  await runMigrate(direct, CQL_DIR, () => {})
  await createTopic(endpoints.kafkaBootstrap, topic, 3)
  const configFile = join(dir, 'finnhubd.json')
  writeFileSync(configFile, JSON.stringify(daemonConfig))
  daemon = new DaemonProcess(configFile, httpPort, join(dir, 'finnhubd.log'))
  const until = Date.now() + 90_000
  while (!await daemon.ready()) {
    if (!daemon.running || Date.now() > until) throw new Error(`the daemon did not become ready: ${tail(join(dir, 'finnhubd.log'))}`)
    await sleep(200)
  }
  const liveRules = join(dir, 'alerts.live.yml')
  writeFileSync(liveRules, shortenedRules(readFileSync(join(MONITORING_DIR, 'alerts.yml'), 'utf8'), FOR_DIVISOR, '-live'))
  const promConfig = join(dir, 'prometheus.yml')
  writeFileSync(promConfig, liveConfig(readFileSync(join(MONITORING_DIR, 'prometheus.yml'), 'utf8'), {
    target: instance,
    ruleFiles: [join(MONITORING_DIR, 'alerts.yml'), liveRules],
    intervalS: INTERVAL_S
  }))
  prom = new PrometheusServer(promConfig, join(dir, 'data'), promPort, join(dir, 'prometheus.log'))
  await prom.ready()
})

t.teardown(async () => {
  const steps: Array<[string, () => Promise<unknown> | undefined]> = [
    // A daemon left SIGSTOPped would never act on the SIGTERM.
    ['resume the daemon', async () => { if (daemon?.running === true) daemon.signal('SIGCONT') }],
    ['proxy passes', async () => { proxy.setMode('pass') }],
    ['stop prometheus', async () => await prom?.stop()],
    ['stop the daemon', async () => await daemon?.stop()],
    ['close the simulator', async () => await sim?.close()],
    ['close the proxy', async () => await proxy.close()],
    ['drop the keyspace and topics', async () => { await dropRunData(direct, [], [topic, `${topic}.dlq`]) }],
    ['remove the temp folder', async () => { rmSync(dir, { recursive: true, force: true }) }]
  ]
  for (const [what, step] of steps) {
    try { await step() } catch (err) { t.comment(`teardown: ${what}: ${(err as Error).message}`) }
  }
})

function tail (file: string): string {
  try { return readFileSync(file, 'utf8').slice(-3000) } catch { return '' }
}

function server (): PrometheusServer {
  if (prom === null) throw new Error('prometheus did not start')
  return prom
}

/** Polls `check` until it returns a value other than undefined; undefined after `timeoutMs`. */
async function until<T> (check: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined || Date.now() > deadline) return value
    await sleep(200)
  }
}

/**
 * Watches the shortened copy of alert `name` (and the shipped rule beside it) until its
 * state is `want`; returns whether it got there, the states it went through (repeats
 * collapsed), and every state the shipped rule was seen in meanwhile.
 */
async function watchAlert (name: string, want: RuleState, timeoutMs: number): Promise<{ reached: boolean, states: RuleState[], shipped: Set<RuleState>, labels: Record<string, string> }> {
  const states: RuleState[] = []
  const shipped = new Set<RuleState>()
  let labels: Record<string, string> = {}
  const reached = await until(async () => {
    const groups = await server().alertGroups()
    const live = groups.find(g => g.name === LIVE)?.rules.find(r => r.name === name)
    const original = groups.find(g => g.name === SHIPPED)?.rules.find(r => r.name === name)
    if (live === undefined || original === undefined) throw new Error(`alert ${name} is not loaded in both groups`)
    if (states.at(-1) !== live.state) states.push(live.state)
    shipped.add(original.state)
    labels = live.alerts.find(a => a.state === 'firing')?.labels ?? labels
    return live.state === want ? true : undefined
  }, timeoutMs)
  return { reached: reached === true, states, shipped, labels }
}

/** Runs `fault` and expects alert `name` to go from inactive to firing, then back to inactive after `heal`. */
async function faultFires (t: Test, name: string, severity: string, fault: () => Promise<void> | void, heal: () => Promise<void> | void): Promise<void> {
  const before = await watchAlert(name, 'inactive', 20_000)
  t.ok(before.reached, `${name} is inactive before the fault`, { states: before.states })
  let firing
  try {
    await fault()
    firing = await watchAlert(name, 'firing', 30_000)
  } finally {
    await heal()
  }
  t.ok(firing.reached, `${name} fires during the fault`, { states: firing.states, daemonLog: firing.reached ? '' : tail(join(dir, 'finnhubd.log')) })
  t.match(firing.labels, { alertname: name, instance, severity }, 'with the daemon\'s instance and the rule\'s severity')
  t.ok(firing.shipped.has('pending'), `the shipped ${name} (its full for:) is pending meanwhile`, { seen: [...firing.shipped] })
  const after = await watchAlert(name, 'inactive', 45_000)
  t.ok(after.reached, `${name} is inactive again once the fault is healed`, { states: after.states })
}

t.test('the derived config and the shortened rules pass promtool', async t => {
  const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal([...(r.stdout + r.stderr).matchAll(/SUCCESS: 13 rules found/g)].length, 2, 'both rule files, 13 rules each')
  t.equal(durationSeconds('1h30m'), 5400)
  t.throws(() => durationSeconds('5 minutes'), /not a Prometheus duration/)
  t.throws(() => liveConfig('scrape_configs: []\n', { target: instance, ruleFiles: [], intervalS: 1 }), /one job/)
})

t.test('Prometheus scrapes the live daemon under the shipped job', async t => {
  const target = await until(async () => (await server().targets()).find(tg => tg.health === 'up'), 15_000)
  t.ok(target, 'the target is up', { targets: await server().targets() })
  t.equal(target?.labels['job'], 'finnhubd')
  t.equal(target?.labels['instance'], instance)
  t.equal(target?.scrapeUrl, `http://${instance}/metrics`)
  t.equal((await server().targets()).length, 1, 'one target: the daemon')
})

t.test('both rule files load, and every rule evaluates without error', async t => {
  const shippedRules = readFileSync(join(MONITORING_DIR, 'alerts.yml'), 'utf8')
  const names = [...shippedRules.matchAll(/^\s+- alert: (\w+)$/gm)].map(m => m[1] as string)
  t.equal(names.length, 13)
  const evaluated = await until(async () => {
    const groups = await server().alertGroups()
    const rules = groups.flatMap(g => g.rules)
    return rules.length === 2 * names.length && rules.every(r => r.health === 'ok') ? groups : undefined
  }, 15_000)
  t.ok(evaluated, 'all rules evaluated with health ok', { groups: await server().alertGroups() })
  const shipped = evaluated?.find(g => g.name === SHIPPED)
  const live = evaluated?.find(g => g.name === LIVE)
  t.equal(shipped?.file, join(MONITORING_DIR, 'alerts.yml'), 'the shipped file, by its path')
  t.same(shipped?.rules.map(r => r.name), names)
  t.same(live?.rules.map(r => r.name), names, 'the copy has the same rules')
  for (const rule of shipped?.rules ?? []) {
    const copy = live?.rules.find(r => r.name === rule.name)
    t.equal(copy?.query, rule.query, `${rule.name}: the same expression`)
    t.equal(copy?.duration, rule.duration === 0 ? 0 : Math.max(1, rule.duration / FOR_DIVISOR), `${rule.name}: for: ${rule.duration} s shortened to ${copy?.duration ?? '?'} s`)
  }
})

t.test('every dashboard query returns series from the live daemon', async t => {
  const dashboard = loadDashboard()
  // The instance variable as Grafana fills it: label_values(finnhubd_ws_connected, instance).
  const variable = dashboard.templating.list.find(v => v.name === 'instance')
  t.equal(variable?.definition, 'label_values(finnhubd_ws_connected, instance)')
  t.same(await server().labelValues('instance', 'finnhubd_ws_connected'), [instance], 'the instance variable offers the daemon')
  // Grafana's $__rate_interval: at least four scrape intervals.
  const values = { __rate_interval: `${4 * INTERVAL_S}s`, instance: regexValue(instance) }
  const queries = panelQueries(dashboard).map(q => ({ ...q, expr: substitute(q.expr, values) }))
  t.ok(queries.length >= 20, `${queries.length} queries`)
  // Until each query has series (rates need two scrapes in their window, the consumer
  // lag the first statistics of the assigned partitions).
  const empty = async (): Promise<string[]> => {
    const out: string[] = []
    for (const q of queries) if ((await server().query(q.expr)).length === 0) out.push(`${q.panel} (${q.refId}): ${q.expr}`)
    return out
  }
  let missing = await empty()
  await until(async () => { missing = await empty(); return missing.length === 0 ? true : undefined }, 20_000)
  t.same(missing, [], 'no dashboard query is empty')
  // Values, not just series: trades flow in and are stored.
  const stored = await server().query(`sum(rate(finnhubd_cassandra_rows_written_total{instance="${instance}"}[${values.__rate_interval}]))`)
  t.ok(Number(stored[0]?.value[1]) > 0, 'rows are stored per second', { stored })
})

t.test('the feed gone: FinnhubdFinnhubDisconnected fires, and resolves once it is back', async t => {
  await faultFires(t, 'FinnhubdFinnhubDisconnected', 'warning',
    async () => { await sim?.close() },
    startSimulator)
})

t.test('Cassandra frozen for this daemon: FinnhubdCassandraErrors fires, and resolves once it answers', async t => {
  await faultFires(t, 'FinnhubdCassandraErrors', 'critical',
    () => { proxy.setMode('freeze') },
    () => { proxy.setMode('pass') })
})

t.test('the daemon frozen (SIGSTOP, scrapes time out): FinnhubdDown fires, and resolves after SIGCONT', async t => {
  await faultFires(t, 'FinnhubdDown', 'critical',
    () => { daemon?.signal('SIGSTOP') },
    () => { daemon?.signal('SIGCONT') })
  t.ok(daemon?.running, 'the daemon runs on')
})
