// `npm run bench -- latency` end to end, in its smallest mode (--smoke), on the real
// stack, with two variants of this build (all five candle resolutions, and one-minute
// candles only): every variant has its start-up, steady and half-load rows with
// latency, CPU and candle rows by resolution, and every trade sent over the fresh
// daemons of the run is stored exactly once. The figures themselves are not judged
// here (the bench reports speed, tests check behaviour).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { parseVariant, type LatencyReport } from '../../tools/bench/latency.js'

t.setTimeout(300_000)

t.test('--variant NAME=ROOT[,key=value…]: the build and its overrides, refused by name when malformed', async t => {
  t.same(parseVariant('after=.'), { name: 'after', root: PROJECT_ROOT, set: [] })
  t.same(parseVariant('one=.,candles.resolutions=["1m"],workers.maxQueue=4'), { name: 'one', root: PROJECT_ROOT, set: ['candles.resolutions=["1m"]', 'workers.maxQueue=4'] })
  t.throws(() => parseVariant('nameonly'), /--variant takes NAME=ROOT/)
  t.throws(() => parseVariant('x='), /no installation root/)
})

t.test('npm run bench -- latency --smoke: rows for every variant and phase, every trade stored once', async t => {
  const out = mkdtempSync(join(tmpdir(), 'finnhubd-bench-latency-'))
  const stderr: string[] = []
  const code = await new Promise<number | null>(resolve => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'tools', 'bench', 'run.js'), 'latency', '--smoke', '--out', out,
      '--variant', 'all=.', '--variant', 'one=.,candles.resolutions=["1m"]'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.resume()
    child.stderr.on('data', (b: Buffer) => stderr.push(b.toString()))
    child.once('close', resolve)
  })
  t.equal(code, 0, 'the bench exits 0')
  if (code !== 0) t.comment(stderr.join('').slice(-3000))
  const files = readdirSync(out)
  const json = files.find(f => f.endsWith('-latency.json'))
  t.ok(json !== undefined && files.some(f => f.endsWith('-latency.md')), `JSON and Markdown reports (${files.join(', ')})`)
  const r = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as LatencyReport
  t.same(r.rows.map(x => `${x.variant} ${x.phase}`), ['all start-up', 'all steady', 'all half load', 'one start-up', 'one steady', 'one half load'], 'three rows a variant, in order')
  for (const x of r.rows) {
    t.ok(x.storedPerSec > 0 && x.latencyMs.count > 0 && x.latencyMs.p99 >= x.latencyMs.p50, `${x.variant} ${x.phase}: stored and measured`)
    t.ok(x.perSecond.length > 0, `${x.variant} ${x.phase}: per-second samples`)
  }
  const steadyAll = r.rows.find(x => x.variant === 'all' && x.phase === 'steady')
  const steadyOne = r.rows.find(x => x.variant === 'one' && x.phase === 'steady')
  t.same(Object.keys(steadyAll?.candleRowsPerSec ?? {}).sort(), ['15m', '1d', '1h', '1m', '5m'], 'all five resolutions written')
  t.ok((steadyAll?.candleRowsPerSec['1h'] ?? 0) > 0, 'longer candles written')
  t.equal(steadyOne?.candleRowsPerSec['1h'] ?? 0, 0, 'the one-minute variant writes no longer candles')
  t.equal(r.readySeconds.length, 2, 'one fresh daemon per variant')
  t.equal(r.account.lost, 0, 'nothing lost')
  t.equal(r.account.duplicated, 0, 'nothing duplicated')
  t.ok(r.account.stored > 0 && r.account.stored + r.account.notStored === r.account.distinctTrades && r.account.notStored === r.account.countedDrops,
    `every distinct trade sent stored, or dropped and counted (${r.account.distinctTrades} distinct, ${r.account.countedDrops} counted drops)`)
})
