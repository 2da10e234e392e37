// How finnhubd is started, as a user or systemd starts it: `node -- cli.js` (the
// shebang, the npm scripts, the unit), so that Node does not take our --env-file for
// its own; and a closed stdout (`finnhubd config | head -1`) ends a command quietly
// instead of crashing it with an EPIPE stack trace.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../daemon/paths.js'

const CLI = join(PROJECT_ROOT, 'dist', 'daemon', 'cli.js')

async function run (cmd: string, args: readonly string[], closeStdout = false): Promise<{ code: number | null, out: string, err: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } })
  let out = ''
  let err = ''
  if (closeStdout) child.stdout.destroy()
  else child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr.on('data', (b: Buffer) => { err += b.toString() })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  return { code, out, err }
}

t.test('the executable ends Node\'s options with --, so --env-file is finnhubd\'s', async t => {
  t.equal(readFileSync(CLI, 'utf8').split('\n')[0], '#!/usr/bin/env -S node --')
  chmodSync(CLI, 0o755)
  const missing = await run(CLI, ['--env-file', '/nonexistent/finnhubd.env', 'check-config'])
  t.equal(missing.code, 1, 'finnhubd\'s own error, not Node\'s exit 9')
  t.match(missing.err, /cannot read the env file \/nonexistent\/finnhubd\.env .*\[FINNHUBD_ERR_CONFIG\]/)
  const plain = await run(process.execPath, [CLI, '--env-file', '/nonexistent/finnhubd.env', 'check-config'])
  t.equal(plain.code, 9, 'without --, Node 20 takes the option for itself (why every launcher uses --)')
  const file = join(t.testdir(), 'seed.env')
  writeFileSync(file, 'FINNHUB_TOKEN=from-the-file\n')
  const ok = await run(CLI, ['--env-file', file, 'check-config'])
  t.equal(ok.code, 0)
  t.match(ok.out, /FINNHUB_TOKEN in .*seed\.env/, 'the value is the file\'s, not posing as the environment')
})

t.test('the npm scripts and the systemd unit start it with node [node flags] --', async t => {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  for (const [name, script] of Object.entries(pkg.scripts)) {
    if (script.includes('daemon/cli.js')) t.match(script, /node -- dist\/daemon\/cli\.js/, `npm run ${name}`)
  }
  const unit = readFileSync(join(PROJECT_ROOT, 'systemd', 'finnhubd.service'), 'utf8')
  const execs = unit.split('\n').filter(l => /^Exec(Start|StartPre)=/.test(l))
  t.ok(execs.length >= 2)
  // Node's own flags (the V8 heap sizes, daemon/node-flags.ts) may come before the --, never after it.
  for (const line of execs) t.match(line, /=\/usr\/bin\/node (?:--[a-z-]+=\S+ )*-- \/opt\/finnhubd\/dist\/daemon\/cli\.js /, line)
})

t.test('a closed stdout ends a command quietly (exit 0), never with an EPIPE stack trace', async t => {
  const r = await run(process.execPath, ['--', CLI, 'config'], true)
  t.equal(r.code, 0, r.err.slice(0, 2000))
  t.notMatch(r.err, /EPIPE|Error|at /, 'nothing on stderr about it')
})
