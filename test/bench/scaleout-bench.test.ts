// `npm run bench -- scaleout` end to end, in its smallest mode (--smoke), on the real
// stack: an ingest-only daemon and one, then two process-only daemons in one group.
// Every run has its steady and drain windows, the stored rows per daemon, the CPU of
// every daemon and every JVM of the stack, and every trade sent or pre-filled is
// stored. The figures themselves are not judged here (the bench reports speed, tests
// check behaviour).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import type { ScaleoutReport } from '../../tools/bench/scaleout-report.js'

t.setTimeout(400_000)

t.test('npm run bench -- scaleout --smoke: one and two process daemons, every trade stored', async t => {
  const out = mkdtempSync(join(tmpdir(), 'finnhubd-bench-scaleout-'))
  const stderr: string[] = []
  const code = await new Promise<number | null>(resolve => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'tools', 'bench', 'run.js'), 'scaleout', '--smoke', '--process-daemons', '1,2', '--out', out],
      { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.resume()
    child.stderr.on('data', (b: Buffer) => stderr.push(b.toString()))
    child.once('close', resolve)
  })
  t.equal(code, 0, 'the bench exits 0')
  if (code !== 0) t.comment(stderr.join('').slice(-3000))
  const files = readdirSync(out)
  const json = files.find(f => f.endsWith('-scaleout.json'))
  t.ok(json !== undefined && files.some(f => f.endsWith('-scaleout.md')), `JSON and Markdown reports (${files.join(', ')})`)
  const r = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as ScaleoutReport
  t.same(r.runs.map(x => x.processDaemons), [1, 2], 'a run per count, in order')
  for (const x of r.runs) {
    const n = x.processDaemons
    t.ok(x.steady.storedPerSec > 0 && x.steady.latencyMs.count > 0 && x.steady.latencyMs.p99 >= x.steady.latencyMs.p50, `${n}: steady stored and measured`)
    t.equal(x.steady.leftAfterDrain, 0, `${n}: every trade sent stored or counted as dropped`)
    t.equal(x.steady.storedPerSecByDaemon.length, n, `${n}: rows per process daemon`)
    t.equal(x.drain.stored, x.drain.trades, `${n}: the pre-filled topic drained into Cassandra, every trade once`)
    t.ok(x.drain.rowsWritten >= x.drain.stored, `${n}: rows written (${x.drain.rowsWritten}) cover the rows stored`)
    t.ok(x.drain.storedPerSec > 0, `${n}: a drain rate (${x.drain.storedPerSec}/s)`)
    const names = x.steady.cpu.map(c => c.name)
    t.same(names.filter(c => c.startsWith('process-')), Array.from({ length: n }, (_, i) => `process-${i + 1}`), `${n}: CPU of each process daemon`)
    t.ok(names.includes('ingest') && names.includes('bench') && names.some(c => c.startsWith('kafka')) && names.some(c => c.startsWith('cassandra')),
      `${n}: CPU of the ingest daemon, the bench and the stack's JVMs (${names.join(', ')})`)
    t.ok(x.steady.cpu.every(c => Number.isFinite(c.percent) && c.percent >= 0), `${n}: every process's CPU read`)
    t.ok(x.steady.machineBusyPercent > 0 && x.steady.machineBusyPercent <= 100, `${n}: the machine's busy share`)
  }
  t.match(readFileSync(join(out, (json ?? '').replace(/\.json$/, '.md')), 'utf8'), /\| 2 \| drain \|/)
})
