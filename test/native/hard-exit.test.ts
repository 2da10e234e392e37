// The addon's hardExit (native/src/sd_notify.c): _exit(2) with the code, skipping
// Node's teardown ('exit' listeners, the thread-pool join), refusing a code it cannot
// pass on; and daemon/systemd/notify.ts's hardExit, which uses it and falls back to
// process.reallyExit for an addon without it (built before it existed, or not at all).
import t from 'tap'
import { spawn } from 'node:child_process'
import { ADDON_PATH, loadNotifyAddon } from '../../daemon/systemd/notify.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'

function node (source: string): Promise<{ code: number | null, out: string, err: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr.on('data', (b: Buffer) => { err += b.toString() })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return new Promise(resolve => child.once('close', code => resolve({ code, out, err })))
}

t.test('the addon refuses codes outside 0..255 instead of exiting with something else', async t => {
  const addon = loadNotifyAddon()
  if (addon instanceof Error) throw new Error(`the addon is not built (npm run build:native): ${addon.message}`)
  t.type(addon.hardExit, 'function', 'built with hardExit')
  const hardExit = addon.hardExit as unknown as (code: unknown) => never
  for (const bad of [-1, 256, 1.5, '3', undefined]) t.throws(() => hardExit(bad), { code: 'EINVAL', message: /exit code from 0 to 255/ }, `refuses ${String(bad)}`)
})

t.test('hardExit exits with the code, after what was written, without running exit listeners', async t => {
  const r = await node(`
    import { createRequire } from 'node:module'
    const addon = createRequire(import.meta.url)(${JSON.stringify(ADDON_PATH)})
    process.on('exit', () => { process.stdout.write('exit listener ran\\n') })
    process.stdout.write('last line\\n')
    addon.hardExit(7)
    process.stdout.write('after hardExit\\n')
  `)
  t.same(r, { code: 7, out: 'last line\n', err: '' })
})

t.test("notify.ts's hardExit: the addon's when it has one, else reallyExit (no exit listeners either)", async t => {
  const notify = JSON.stringify(new URL('dist/daemon/systemd/notify.js', `file://${PROJECT_ROOT}/`).href)
  const withAddon = await node(`
    const { hardExit } = await import(${notify})
    process.on('exit', () => { process.stdout.write('exit listener ran\\n') })
    process.stdout.write('bye\\n')
    hardExit(3)
  `)
  t.same(withAddon, { code: 3, out: 'bye\n', err: '' })
  const stale = await node(`
    const { hardExit } = await import(${notify})
    process.on('exit', () => { process.stdout.write('exit listener ran\\n') })
    process.on('SIGTERM', () => {})
    hardExit(5, { notify () {}, monotonicUsec: () => 0n })
  `)
  t.same(stale, { code: 5, out: '', err: '' }, 'an addon built before hardExit: the fallback, still without exit listeners')
  const refused = await node(`
    const { hardExit } = await import(${notify})
    hardExit(300)
  `)
  t.equal(refused.code, 300 & 0xff, 'a code the addon refuses still exits (as the OS truncates it)')
})
