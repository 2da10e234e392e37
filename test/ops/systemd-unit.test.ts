// The systemd unit as shipped: `systemd-analyze verify` finds nothing to say, the
// offline security review rates it OK or better, and the settings the daemon relies
// on are there (Type=notify, reload by SIGHUP, a watchdog, a stop timeout above the
// drain budget, no MemoryDenyWriteExecute=, which would break V8's JIT). The example
// config next to it is valid.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../daemon/config/load.js'
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { ensureDebianTool } from '../fixtures/debian.js'

t.setTimeout(600_000) // installing the systemd package when it is missing

const UNIT = join(PROJECT_ROOT, 'systemd', 'finnhubd.service')
const unitText = readFileSync(UNIT, 'utf8')

function settings (key: string): string[] {
  return unitText.split('\n').filter(l => l.startsWith(`${key}=`)).map(l => l.slice(key.length + 1))
}

function seconds (value: string): number {
  const m = /^(\d+)(s|min)?$/.exec(value)
  if (m === null) throw new Error(`unexpected time span ${value}`)
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1)
}

t.before(() => { ensureDebianTool('systemd-analyze', 'systemd') })

t.test('systemd-analyze verify prints nothing', async t => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' })
  t.equal(r.status, 0)
  t.equal(r.stdout + r.stderr, '', 'no warnings')
})

t.test('systemd-analyze security rates the unit OK or better', async t => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8' })
  const m = /Overall exposure level for finnhubd\.service: ([\d.]+) (\w+)/.exec(r.stdout)
  t.ok(m, 'an overall exposure level')
  const level = Number(m?.[1])
  t.comment(`exposure ${level} ${m?.[2] ?? ''}`)
  t.ok(['OK', 'SAFE', 'PERFECT'].includes(m?.[2] ?? ''), `rated ${m?.[2] ?? '?'}`)
  t.notMatch(r.stdout, /✓ MemoryDenyWriteExecute=/, 'V8 keeps its JIT')
})

t.test('the unit has what the daemon relies on', async t => {
  t.same(settings('Type'), ['notify'])
  t.same(settings('ExecReload'), ['/bin/kill -HUP $MAINPID'])
  t.same(settings('MemoryDenyWriteExecute'), [])
  t.match(settings('ExecStart')[0], /dist\/daemon\/cli\.js --config \$\{CONFIGURATION_DIRECTORY\}\/finnhubd\.yaml run$/)
  t.equal(settings('ExecStart')[0]?.split(' -- ')[0], ['/usr/bin/node', ...DAEMON_NODE_FLAGS].join(' '), 'the V8 heap flags of daemon/node-flags.ts, which the bench and the tests run with too')
  t.ok(settings('WatchdogSec').length === 1 && seconds(settings('WatchdogSec')[0] as string) >= 10, 'a watchdog')
  t.same(settings('Restart'), ['on-failure'])
  const budgetS = loadConfig({}).config.shutdown.drainTimeoutMs / 1000
  const stopS = seconds(settings('TimeoutStopSec')[0] ?? '0')
  t.ok(stopS >= budgetS + 5, `TimeoutStopSec (${stopS} s) leaves the drain budget (${budgetS} s) and the client close (5 s) room`)
  for (const key of ['DynamicUser', 'StateDirectory', 'ConfigurationDirectory', 'ProtectSystem', 'NoNewPrivileges', 'PrivateTmp', 'CapabilityBoundingSet', 'SystemCallFilter']) {
    t.ok(settings(key).length > 0, `${key}= is set`)
  }
})

t.test('the example config beside the unit is valid', async t => {
  const { config } = loadConfig({ file: join(PROJECT_ROOT, 'systemd', 'finnhubd.example.yaml') })
  t.same(config.roles, ['ingest', 'process'])
  t.equal(config.http.host, '127.0.0.1')
})
