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
import { allMetrics } from '../fixtures/all-metrics.js'
import { loadDashboard, MONITORING_DIR as DIR, panelQueries, substitute } from '../fixtures/dashboard.js'
import { ensureDebianTool } from '../fixtures/debian.js'

t.setTimeout(600_000) // installing the prometheus package when promtool is missing

const dashboard = loadDashboard()
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

/** Grafana's variables replaced by values, as Grafana does before it queries (all instances). */
const substituted = (expr: string): string => substitute(expr, { __rate_interval: '1m', instance: '.*' })

t.before(() => { ensureDebianTool('promtool', 'prometheus') })

t.test('promtool checks the scrape config and the alert rules', async t => {
  const config = promtool('check', 'config', 'prometheus.yml')
  t.equal(config.status, 0, config.out)
  t.match(config.out, /SUCCESS: 13 rules found/)
})

t.test('the alert rules pass their unit tests', async t => {
  const r = promtool('test', 'rules', 'alerts.test.yml')
  t.equal(r.status, 0, r.out)
  t.match(r.out, /SUCCESS/)
})

/** The alert rules of `alertsYaml` that no case of `testsYaml` expects to fire. */
function unfiredRules (alertsYaml: string, testsYaml: string): { rules: string[], unfired: string[] } {
  const groups = (parseYaml(alertsYaml) as { groups: Array<{ rules: Array<{ alert?: string }> }> }).groups
  const rules = groups.flatMap(g => g.rules.flatMap(r => r.alert === undefined ? [] : [r.alert]))
  const cases = (parseYaml(testsYaml) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string, exp_alerts?: unknown[] }> }> }).tests
  const fired = new Set(cases.flatMap(c => c.alert_rule_test ?? []).filter(a => (a.exp_alerts ?? []).length > 0).map(a => a.alertname))
  return { rules, unfired: rules.filter(name => !fired.has(name)) }
}

t.test('every alert rule has a unit test that expects it to fire', async t => {
  const testsText = readFileSync(join(DIR, 'alerts.test.yml'), 'utf8')
  const { rules, unfired } = unfiredRules(alertsText, testsText)
  t.equal(rules.length, 13, rules.join(', '))
  t.same(unfired, [], 'each rule appears in alerts.test.yml as an alertname with expected alerts')
  const planted = alertsText + '      - alert: FinnhubdPlanted\n        expr: vector(1)\n'
  t.same(unfiredRules(planted, testsText).unfired, ['FinnhubdPlanted'], 'a rule without a firing case is found')
  const quietOnly = testsText.replace(/alertname: FinnhubdDeadLetters\n(\s+)exp_alerts:\n(\s+- exp_labels:.*\n(\s+exp_annotations:\n(\s+\w+: .*\n)+)?)+/, 'alertname: FinnhubdDeadLetters\n$1exp_alerts: []\n')
  t.same(unfiredRules(alertsText, quietOnly).unfired, ['FinnhubdDeadLetters'], 'a rule only ever expected quiet is found')
})

t.test('every dashboard expression parses as PromQL (and a broken one would not)', async t => {
  const exprs = panelQueries(dashboard).map(q => substituted(q.expr))
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
  const ids = dashboard.panels.map(p => p.id)
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
