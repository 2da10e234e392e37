// The real daemon (`finnhubd --config FILE run`, the compiled dist/ tree, as systemd
// runs it, with the unit's V8 heap flags: daemon/node-flags.ts) as a child process of
// the bench and the fault suite: its log to a file, its HTTP endpoints, its memory
// from /proc, and whether it exited on its own.
// With `{ inspect: true }` it runs under `--inspect=127.0.0.1:0` (a free port on the
// loopback only) and `inspectorUrl()` gives the DevTools WebSocket URL Node prints on
// stderr (tools/bench/cpu-budget.ts profiles the main thread through it).

import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Stage, StageSnapshot } from '../../daemon/metrics/latency.js'
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { statusBytes } from '../stack/proc.js'

export interface DaemonOptions {
  /** Start with `--inspect=127.0.0.1:0`: the inspector on a free loopback port. */
  inspect?: boolean
  /** The installation whose dist/ runs (another build of finnhubd, e.g. an older commit's worktree, for an A/B); this one by default. */
  root?: string
}

/** The line Node prints on stderr when its inspector listens. */
const INSPECTOR_LINE = /Debugger listening on (ws:\/\/\S+)/

export class DaemonProcess {
  readonly child: ChildProcess
  readonly url: string
  exitCode: number | null = null
  /** The signal that ended it (null while running or after a normal exit). */
  exitSignal: NodeJS.Signals | null = null
  readonly exited: Promise<number | null>
  /** Signals this side sent, so an exit nobody asked for can be told apart. */
  readonly signalsSent: NodeJS.Signals[] = []
  readonly #inspector: Promise<string>

  constructor (configFile: string, httpPort: number, logFile: string, cpuProfDir: string | null = null, options: DaemonOptions = {}) {
    const log = createWriteStream(logFile, { flags: 'a' })
    const profile = cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`]
    const inspect = options.inspect === true ? ['--inspect=127.0.0.1:0'] : []
    this.child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...profile, ...inspect, '--', join(options.root ?? PROJECT_ROOT, 'dist', 'daemon', 'cli.js'), '--config', configFile, 'run'], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout?.pipe(log)
    this.child.stderr?.pipe(log)
    this.url = `http://127.0.0.1:${httpPort}`
    this.exited = new Promise(resolve => {
      this.child.once('close', (code, signal) => { this.exitCode = code; this.exitSignal = signal; resolve(code) })
    })
    this.#inspector = options.inspect === true
      ? inspectorUrlFrom(this.child)
      : Promise.reject(new Error('the daemon was started without { inspect: true }'))
    this.#inspector.catch(() => {}) // asked for or not, never an unhandled rejection
  }

  /** The inspector's WebSocket URL (ws://127.0.0.1:PORT/UUID); rejects when started without `inspect` or when the daemon exits before printing it. */
  async inspectorUrl (): Promise<string> { return await this.#inspector }

  get pid (): number { return this.child.pid ?? 0 }
  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }

  signal (sig: NodeJS.Signals): void {
    this.signalsSent.push(sig)
    this.child.kill(sig)
  }

  /** SIGTERM (SIGKILL after `killAfterMs`), then its exit code once it has exited; at once when it is not running. */
  async stop (killAfterMs = 15_000): Promise<number | null> {
    if (!this.running) return await this.exited
    this.signal('SIGTERM')
    const killer = setTimeout(() => { if (this.running) this.signal('SIGKILL') }, killAfterMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(killer)
    }
  }

  /** GET a path of the daemon's HTTP server (getText: tried again on a network error while the daemon runs). */
  async get (path: string): Promise<string> {
    return await getText(this.url + path, () => this.running, `the daemon (pid ${this.pid})`)
  }

  async metrics (): Promise<string> { return await this.get('/metrics') }
  async latency (): Promise<Record<Stage, StageSnapshot>> {
    return (JSON.parse(await this.get('/latency')) as { stages: Record<Stage, StageSnapshot> }).stages
  }

  /** GET /readyz answered 200 (false while starting, not ready, or gone). */
  async ready (): Promise<boolean> {
    try {
      return (await fetch(this.url + '/readyz', { signal: AbortSignal.timeout(2000) })).status === 200
    } catch {
      return false
    }
  }

  /** Peak and current resident memory of the daemon, from /proc (MiB). */
  memory (): { peakMiB: number, rssMiB: number } {
    const mib = (field: string): number => Math.round((statusBytes(this.pid, field) ?? NaN) / 1048576)
    return { peakMiB: mib('VmHWM'), rssMiB: mib('VmRSS') }
  }
}

/**
 * The text of a GET. A request that fails at the network level (a kept-alive socket the
 * server closed as it was reused, which a saturated event loop makes likely) is tried
 * again while `alive()` says the server's process runs: a bench or fault run must not
 * end on one lost scrape. After `tries` attempts, or once the process has exited, it
 * fails with an error that names the URL, the server and why.
 */
export async function getText (url: string, alive: () => boolean, what: string, tries = 5, backoffMs = 200): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url)
      return await res.text()
    } catch (err) {
      if (attempt >= tries || !alive()) {
        const cause = (err as { cause?: { message?: string } }).cause?.message
        throw new Error(`GET ${url} from ${what} failed ${attempt} time${attempt === 1 ? '' : 's'}${alive() ? '' : ' and it has exited'}: ` +
          `${(err as Error).message}${cause !== undefined ? ` (${cause})` : ''}`, { cause: err })
      }
      await new Promise(resolve => setTimeout(resolve, backoffMs * attempt))
    }
  }
}

/** Reads a child's stderr (alongside whatever else reads it) until Node's inspector line; rejects if the stream ends first. */
export async function inspectorUrlFrom (child: ChildProcess): Promise<string> {
  const stderr = child.stderr
  if (stderr === null) throw new Error('the child\'s stderr is not piped')
  return await new Promise((resolve, reject) => {
    let seen = ''
    const done = (): void => { stderr.off('data', onData); stderr.off('end', onEnd) }
    const onData = (chunk: Buffer | string): void => {
      seen = (seen + chunk.toString()).slice(-4096)
      const m = INSPECTOR_LINE.exec(seen)
      if (m?.[1] !== undefined) { done(); resolve(m[1]) }
    }
    const onEnd = (): void => { done(); reject(new Error('the process ended before its inspector listened')) }
    stderr.on('data', onData)
    stderr.once('end', onEnd)
  })
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}
