// Fetches a component's jars from Maven Central with `mvn dependency:copy-dependencies`
// into <stack dir>/lib/<name>, with the Maven cache in <stack dir>/m2 (nothing outside
// the project). A marker holding the pom's hash makes later runs skip Maven, and a
// changed pom (a version bump) fetch again.

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FinnhubdError } from '../daemon/errors.js'

// Maven colours its output even with -B on some setups; strip it for the error text.
// eslint-disable-next-line no-control-regex -- matching the ESC character is the point
const ANSI_COLOUR = /\x1b\[[0-9;]*m/g

export interface FetchResult { fetched: boolean, ms: number, libDir: string }

export async function fetchJars (opts: { name: string, pom: string, dir: string, mvn: string, log: (line: string) => void }): Promise<FetchResult> {
  const libDir = join(opts.dir, 'lib', opts.name)
  const marker = join(libDir, '.complete')
  const pomHash = createHash('sha256').update(readFileSync(opts.pom)).digest('hex')
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === pomHash) return { fetched: false, ms: 0, libDir }
  rmSync(libDir, { recursive: true, force: true })
  mkdirSync(libDir, { recursive: true })
  opts.log(`fetching ${opts.name} from Maven Central (first run only) …`)
  const started = Date.now()
  const args = ['-B', '-q', '-f', opts.pom, 'dependency:copy-dependencies', '-DincludeScope=runtime',
    `-DoutputDirectory=${libDir}`, `-Dmaven.repo.local=${join(opts.dir, 'm2')}`]
  const output = await new Promise<{ code: number | null, text: string, spawnError: Error | null }>(resolve => {
    let text = ''
    let child
    try {
      child = spawn(opts.mvn, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (err) {
      resolve({ code: null, text, spawnError: err as Error })
      return
    }
    child.stdout.on('data', (b: Buffer) => { text = (text + b.toString()).slice(-20_000) })
    child.stderr.on('data', (b: Buffer) => { text = (text + b.toString()).slice(-20_000) })
    child.once('error', err => resolve({ code: null, text, spawnError: err }))
    child.once('close', code => resolve({ code, text, spawnError: null }))
  })
  if (output.spawnError !== null) {
    throw new FinnhubdError('FINNHUBD_ERR_STACK_DOWNLOAD',
      `cannot run Maven (${opts.mvn}: ${output.spawnError.message}); install Maven 3 (Debian/Ubuntu: apt-get install maven) or set FINNHUBD_MVN`)
  }
  if (output.code !== 0) {
    const last = output.text.replace(ANSI_COLOUR, '').trim().split('\n').slice(-15).join('\n')
    throw new FinnhubdError('FINNHUBD_ERR_STACK_DOWNLOAD',
      `fetching ${opts.name} with Maven failed (exit ${String(output.code)}). Check that Maven Central is reachable from here ` +
      `(your ~/.m2/settings.xml mirrors and proxy, or a corporate repository), then run the command again. Maven said:\n${last}`)
  }
  writeFileSync(marker, pomHash + '\n')
  return { fetched: true, ms: Date.now() - started, libDir }
}
