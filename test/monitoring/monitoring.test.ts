// The monitoring kit (monitoring/): the Prometheus config and alert rules pass
// promtool (Debian's `prometheus` package, installed when missing), the alert rules'
// unit tests pass, every PromQL expression of the Grafana dashboard parses, every
// finnhubd_* metric the kit names is one the daemon exports, and the exported names
// follow Prometheus conventions.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { allMetrics } from '../fixtures/all-metrics.js'
import { ensureDebianTool } from '../fixtures/debian.js'

t.setTimeout(600_000) // installing the prometheus package when promtool is missing

const DIR = join(PROJECT_ROOT, 'monitoring')
interface Target { expr: string, datasource: { uid: string } }
interface Panel { title: string, datasource: { uid: string }, targets: Target[] }
const dashboard = JSON.parse(readFileSync(join(DIR, 'grafana', 'dashboards', 'finnhubd.json'), 'utf8')) as { uid: string, panels: Panel[], templating: { list: Array<{ definition: string }> } }
const alertsText = readFileSync(join(DIR, 'alerts.yml'), 'utf8')

function promtool (...args: string[]): { status: number | null, out: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' })
  return { status: r.status, out: r.stdout + r.stderr }
}

/** Each expression as a recording rule, so `promtool check rules` parses it. */
function checkExpressions (exprs: readonly string[]): { status: number | null, out: string } {
  const file = join(t.testdir(), 'exprs.yml')
  const rules = exprs.map((expr, i) => ({ record: `finnhubd_dashboard_check:${i}`, expr }))
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }))
  return promtool('check', 'rules', file)
}

/** Grafana's variables replaced by values, as Grafana does before it queries. */
const substituted = (expr: string): string => expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*')

t.before(() => { ensureDebianTool('promtool', 'prometheus') })

t.test('promtool checks the scrape config and the alert rules', async t => {
  const config = promtool('check', 'config', 'prometheus.yml')
  t.equal(config.status, 0, config.out)
  t.match(config.out, /SUCCESS: 11 rules found/)
})

t.test('the alert rules pass their unit tests', async t => {
  const r = promtool('test', 'rules', 'alerts.test.yml')
  t.equal(r.status, 0, r.out)
  t.match(r.out, /SUCCESS/)
})

t.test('every dashboard expression parses as PromQL (and a broken one would not)', async t => {
  const exprs = dashboard.panels.flatMap(p => p.targets.map(tg => substituted(tg.expr)))
  t.ok(exprs.length >= 20, `${exprs.length} expressions`)
  const r = checkExpressions(exprs)
  t.equal(r.status, 0, r.out)
  const broken = checkExpressions(['sum(rate(finnhubd_trades_received_total[1m])'])
  t.not(broken.status, 0, 'the check can fail')
})

t.test('the dashboard uses the provisioned datasource by its fixed uid', async t => {
  const provisioned = parseYaml(readFileSync(join(DIR, 'grafana', 'provisioning', 'datasources', 'finnhubd.yaml'), 'utf8')) as { datasources: Array<{ uid: string, type: string }> }
  const uid = provisioned.datasources[0]?.uid
  t.equal(provisioned.datasources[0]?.type, 'prometheus')
  for (const p of dashboard.panels) {
    t.equal(p.datasource.uid, uid, p.title)
    for (const tg of p.targets) t.equal(tg.datasource.uid, uid)
  }
  const providers = parseYaml(readFileSync(join(DIR, 'grafana', 'provisioning', 'dashboards', 'finnhubd.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> }
  t.match(providers.providers[0]?.options.path, /monitoring\/grafana\/dashboards$/)
  const ids = dashboard.panels.map(p => (p as unknown as { id: number }).id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
})

t.test('every metric the kit names is exported by the daemon, with conventional names', async t => {
  const { metrics, standard, own } = await allMetrics()
  const exported = new Set(metrics.map(m => m.name))
  const texts = [alertsText, ...dashboard.panels.flatMap(p => p.targets.map(tg => tg.expr)), ...dashboard.templating.list.map(v => v.definition)]
  const named = new Set(texts.flatMap(x => x.match(/finnhubd_[a-z0-9_]+/g) ?? []))
  t.ok(named.size >= 20, `${named.size} metrics named`)
  for (const name of named) t.ok(exported.has(name), `${name} is exported`)
  t.ok(own.length >= 25, 'metrics of our own (docs/metrics.md lists them: test/docs.test.ts)')
  for (const m of metrics) {
    if (standard.has(m.name)) continue
    t.match(m.name, /^finnhubd_[a-z][a-z0-9_]*$/)
    if (String(m.type) === 'counter') t.match(m.name, /_total$/, `${m.name}: a counter ends in _total`)
    else t.notMatch(m.name, /_total$/, `${m.name}: only counters end in _total`)
    t.notMatch(m.name, /_(ms|milliseconds|kb|mb)$/, `${m.name}: base units`)
  }
})
