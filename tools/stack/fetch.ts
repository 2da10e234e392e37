// Fetches a component's jars from Maven Central with `mvn dependency:copy-dependencies`
// into <stack dir>/lib/<name>, with the Maven cache in <stack dir>/m2 (nothing outside
// the project). A marker holding the pom's hash makes later runs skip Maven, and a
// changed pom (a version bump) fetch again. Stacks in other folders may share the
// cache, so the fetch itself runs under a lock.

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { withLock } from './proc.js'

// Maven colours its output even with -B on some setups; strip it for the error text.
// eslint-disable-next-line no-control-regex -- matching the ESC character is the point
const ANSI_COLOUR = /\x1b\[[0-9;]*m/g

export interface FetchResult { fetched: boolean, ms: number, libDir: string }

export interface FetchOptions {
  name: string
  pom: string
  /** The cache folder: jars go to <dir>/lib/<name>, Maven's repository to <dir>/m2. */
  dir: string
  mvn: string
  log: (line: string) => void
  /** Maven's own timeouts are half an hour per stalled read; a stuck fetch ends sooner. */
  timeoutMs?: number
  /**
   * copy-dependencies (default): the pom's dependencies with theirs; copy: the pom's
   * artifactItems as they are (for an artifact whose own POM cannot be resolved).
   */
  goal?: 'copy-dependencies' | 'copy'
}

export async function fetchJars (opts: FetchOptions): Promise<FetchResult> {
  const libDir = join(opts.dir, 'lib', opts.name)
  const marker = join(libDir, '.complete')
  const pomHash = createHash('sha256').update(readFileSync(opts.pom)).digest('hex')
  const cached = (): boolean => existsSync(marker) && readFileSync(marker, 'utf8').trim() === pomHash
  if (cached()) return { fetched: false, ms: 0, libDir }
  return await withLock(`${libDir}.lock`, pid => opts.log(`waiting for another fetch of ${opts.name} (pid ${pid}) …`), async () => {
    // Whoever held the lock may have just fetched the same pom.
    if (cached()) return { fetched: false, ms: 0, libDir }
    return await runMaven(opts, libDir, marker, pomHash)
  })
}

async function runMaven (opts: FetchOptions, libDir: string, marker: string, pomHash: string): Promise<FetchResult> {
  // Copy into a staging folder and swap it in only when Maven succeeded: a failed or
  // interrupted fetch never leaves a half-filled lib folder that looks complete.
  const staging = `${libDir}.partial`
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  opts.log(`fetching ${opts.name} from Maven Central (first run only) …`)
  const started = Date.now()
  const goal = opts.goal === 'copy' ? ['dependency:copy'] : ['dependency:copy-dependencies', '-DincludeScope=runtime']
  const args = ['-B', '-q', '-f', opts.pom, ...goal, `-DoutputDirectory=${staging}`, `-Dmaven.repo.local=${join(opts.dir, 'm2')}`]
  const timeoutMs = opts.timeoutMs ?? 20 * 60_000
  const output = await new Promise<{ code: number | null, signal: NodeJS.Signals | null, text: string, spawnError: Error | null }>(resolve => {
    let text = ''
    // A missing executable arrives as an 'error' event, not a throw.
    const child = spawn(opts.mvn, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    // Our own timer, not spawn's `timeout`: that one is not cleared when the spawn
    // itself fails (no mvn), and would hold the process for the whole timeout.
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.stdout.on('data', (b: Buffer) => { text = (text + b.toString()).slice(-20_000) })
    child.stderr.on('data', (b: Buffer) => { text = (text + b.toString()).slice(-20_000) })
    child.once('error', err => {
      clearTimeout(timer)
      // A child that never started leaves its pipes open, and they would hold the event loop.
      child.stdout.destroy()
      child.stderr.destroy()
      resolve({ code: null, signal: null, text, spawnError: err })
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, text, spawnError: null })
    })
  })
  if (output.spawnError !== null) {
    throw new FinnhubdError('FINNHUBD_ERR_STACK_DOWNLOAD',
      `cannot run Maven (${opts.mvn}: ${output.spawnError.message}); install Maven 3 (Debian/Ubuntu: apt-get install maven) or set FINNHUBD_MVN`)
  }
  if (output.code !== 0) {
    const last = output.text.replace(ANSI_COLOUR, '').trim().split('\n').slice(-15).join('\n')
    const how = output.signal !== null ? `was stopped after ${Math.round(timeoutMs / 1000)} s` : `failed (exit ${String(output.code)})`
    throw new FinnhubdError('FINNHUBD_ERR_STACK_DOWNLOAD',
      `fetching ${opts.name} with Maven ${how}. Check that Maven Central is reachable from here ` +
      `(your ~/.m2/settings.xml mirrors and proxy, or a corporate repository), then run the command again. Maven said:\n${last}`)
  }
  rmSync(libDir, { recursive: true, force: true })
  renameSync(staging, libDir)
  writeFileSync(marker, pomHash + '\n')
  return { fetched: true, ms: Date.now() - started, libDir }
}
