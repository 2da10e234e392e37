// `npm run chaos [-- --only a,b] [--subset] [--rate N] [--list]`: the fault suite
// against the local stack (started when it is not running). Every scenario runs
// while trades flow; each is accounted for trade by trade. The report table goes to
// tools/bench/results/<time>-chaos.md and .json; the exit code is 1 when any scenario failed
// (or the suite could not run: one line that says why), 2 for a usage error.

import { mkdirSync, realpathSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { commandArgs, runEntry } from '../../daemon/args.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { clusterEndpoints } from '../stack/nodes.js'
import { stackEndpoints, stackOptions } from '../stack/options.js'
import { selectComponents, up } from '../stack/stack.js'
import { runScenario, type ChaosEnv, type Scenario, type ScenarioResult } from './harness.js'
import { renderChaosMarkdown, totalsOf, type ChaosReport } from './report.js'
import { candleSummary } from './verdict.js'
import { SCENARIOS, SUBSET } from './scenarios.js'
import { CLUSTER_SCENARIOS, CLUSTER_SUBSET } from './cluster.js'

const progress = (line: string): void => { process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`) }

export interface ChaosRunOptions {
  scenarios: readonly Scenario[]
  ratePerSec: number
  outDir: string
  log: (line: string) => void
  /** The replicated cluster stack (three brokers, three Cassandra nodes) instead of the single-node one. */
  cluster?: boolean
}

/** Runs the scenarios one after the other on the local stack; returns the report (also written as files). */
export async function runChaos (opts: ChaosRunOptions): Promise<{ report: ChaosReport, files: string[] }> {
  const started = Date.now()
  const cluster = opts.cluster === true
  const stack = stackOptions(process.env, cluster ? { cluster: true } : {})
  await up(stack, process.env, selectComponents([], stack), opts.log)
  const endpoints = stackEndpoints(stack)
  const nodes = clusterEndpoints(stack)
  mkdirSync(opts.outDir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
  const env: ChaosEnv = {
    kafkaBootstrap: cluster ? nodes.kafkaBootstrap : endpoints.kafkaBootstrap,
    cassandraHost: endpoints.cassandraHost,
    ...(cluster ? { cassandraContactPoints: nodes.cassandraContactPoints, cluster: true } : {}),
    cassandraPort: endpoints.cassandraPort,
    stack,
    ratePerSec: opts.ratePerSec,
    outDir: opts.outDir,
    log: opts.log
  }
  const results: ScenarioResult[] = []
  for (const [i, scenario] of opts.scenarios.entries()) {
    opts.log(`scenario ${i + 1}/${opts.scenarios.length}: ${scenario.name} — ${scenario.title}`)
    const result = await runScenario(env, scenario, `${stamp.replace('-', '_')}_${i}`)
    opts.log(`${scenario.name}: ${result.ok ? 'pass' : 'FAIL'} — sent ${result.sent}, stored ${result.stored}, lost ${result.lost}, duplicated ${result.duplicated}, dropped ${result.droppedTotal}, in flight at kill/stop ${result.inFlightAtEdges}, candles exact ${candleSummary(result.candles)}`)
    results.push(result)
  }
  const report: ChaosReport = {
    startedAt: new Date(started).toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    ...(cluster ? { cluster: true } : {}),
    ratePerSec: opts.ratePerSec,
    machine: { cpus: cpus().length, node: process.version },
    totals: totalsOf(results),
    scenarios: results
  }
  const base = join(opts.outDir, `${stamp}-chaos${cluster ? '-cluster' : ''}`)
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${base}.md`, renderChaosMarkdown(report))
  return { report, files: [`${base}.md`, `${base}.json`] }
}

const USAGE = `usage: npm run chaos [-- [--cluster] [--only NAME,NAME] [--subset] [--rate N] [--list]]

The fault suite, against the local stack (started when it is not running): each scenario
(Kafka or Cassandra killed, stopped, slowed; the daemon killed, restarted, reloaded; bad
input from Finnhub) runs while trades flow and is accounted for trade by trade: sent,
stored, lost, duplicated. The report goes to tools/bench/results/<time>-chaos.md and .json.
Exit 0 when every scenario passed, 1 when one failed, 2 for a usage error.

options:
  --only NAME,NAME   run only these scenarios (--list names them)
  --cluster          the cluster scenarios, on the local stack's three-broker / three-node
                     cluster (npm run stack -- up --cluster; started when not running):
                     topics replication factor 3 / min.insync.replicas 2, keyspaces
                     NetworkTopologyStrategy {datacenter1: 3}, writes at LOCAL_QUORUM
  --subset           the fast subset that runs inside npm test (with --cluster: the one
                     cluster scenario of npm run test:cluster)
  --rate N           trades per second while the faults happen (default 300)
  --list             list the scenarios and exit`

async function main (): Promise<number> {
  const { values } = commandArgs({
    args: process.argv.slice(2),
    options: {
      only: { type: 'string' },
      subset: { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      rate: { type: 'string', default: '300' },
      list: { type: 'boolean', default: false }
    },
    strict: true
  }, { usage: USAGE, command: 'npm run chaos --' })
  const cluster = values.cluster === true
  const all = cluster ? (values.subset === true ? CLUSTER_SUBSET : CLUSTER_SCENARIOS) : values.subset === true ? SUBSET : SCENARIOS
  const known = cluster ? [...CLUSTER_SCENARIOS, ...CLUSTER_SUBSET] : [...SCENARIOS, ...SUBSET]
  if (values.list === true) {
    for (const s of known) process.stdout.write(`${s.name.padEnd(cluster ? 34 : 20)} ${s.title}\n`)
    return 0
  }
  const only = values.only?.split(',').map(s => s.trim()).filter(s => s !== '') ?? []
  const unknown = only.filter(name => !known.some(s => s.name === name))
  if (unknown.length > 0) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `unknown scenario ${unknown.join(', ')}; --list${cluster ? ' --cluster' : ''} shows them`)
  const ratePerSec = Number(values.rate)
  if (!Number.isFinite(ratePerSec) || ratePerSec <= 0) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--rate takes trades per second > 0, got ${values.rate}`)
  const scenarios = only.length > 0 ? known.filter(s => only.includes(s.name)) : all
  const { report, files } = await runChaos({ scenarios, ratePerSec, outDir: join(PROJECT_ROOT, 'tools', 'bench', 'results'), log: progress, cluster })
  process.stdout.write(renderChaosMarkdown(report) + '\n')
  progress(`report: ${files.join(' and ')}`)
  return report.totals.passed === report.totals.scenarios ? 0 : 1
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runEntry(main, { prefix: 'finnhubd chaos', command: 'npm run chaos --' })
}
