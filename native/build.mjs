// Builds the sd_notify addon (sd_notify(3) and the hard exit) with node-gyp against
// this Node's own headers. Run by `npm ci` / `npm install` (the root package's
// install script) and by `npm run build:native`. A failed build does not fail the
// install: the daemon runs without it, says once that systemd notification is off,
// and its forced exits fall back to process.reallyExit (daemon/systemd/notify.ts);
// the addon's own tests do fail, so CI notices.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

function findNodeGyp () {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  ]
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'))
  } catch {}
  return candidates.find(p => p !== undefined && p !== '' && existsSync(p))
}

const gyp = findNodeGyp()
if (gyp === undefined) {
  console.warn('finnhubd: node-gyp not found; the sd_notify addon is not built and systemd notification will be off')
  process.exit(0)
}
const env = { ...process.env }
// Build against the headers of the Node that runs us (no header download).
const nodedir = join(dirname(process.execPath), '..')
if (env.npm_config_nodedir === undefined && existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = nodedir
const result = spawnSync(process.execPath, [gyp, 'rebuild', '--directory', here], { stdio: 'inherit', env })
if (result.status !== 0) {
  console.warn('finnhubd: building the sd_notify addon (native/) failed; the daemon runs without it: systemd notification will be off and a forced exit can wait on a hung native close')
}
process.exit(0)
