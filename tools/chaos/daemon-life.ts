// The daemon's lives over a fault scenario: each one started as its own process (on the
// scenario's config file and HTTP port), waited for until ready, and ended by kill -9 or
// SIGTERM. Each end leaves a window of trades that may have been in flight (the edges the
// account allows for); an exit nobody asked for is recorded as unexpected.

import { DaemonProcess } from '../bench/daemon-process.js'
import { sleep } from '../stack/proc.js'
import type { DaemonObserver } from './observer.js'

/** Trades sent this long before a kill or stop of the daemon (and up to its exit) may be in flight. */
export const EDGE_BEFORE_MS = 3000

/** A kill or a stop of the daemon, and the window of send times it may have cost. */
export interface Edge { what: string, from: number, to: number }

export interface DaemonLifeOptions {
  configFile: string
  logFile: string
  /** What the suite watches of the daemon: each life's counters are folded in at its end. */
  observed: DaemonObserver
  check: (what: string, ok: boolean, detail?: string) => void
  log: (line: string) => void
}

export class DaemonLife {
  /** The current (or last) daemon process. */
  daemon!: DaemonProcess
  /** The HTTP port every life listens on (set before the first start). */
  httpPort = 0
  readonly edges: Edge[] = []
  readonly unexpectedExits: string[] = []
  readonly #o: DaemonLifeOptions

  /** Whether a daemon was ever started (daemon is set). */
  get started (): boolean { return this.daemon !== undefined }

  constructor (options: DaemonLifeOptions) { this.#o = options }

  /** Starts a daemon and waits until it is ready; returns the ms that took. */
  async start (): Promise<number> {
    const started = Date.now()
    const daemon = new DaemonProcess(this.#o.configFile, this.httpPort, this.#o.logFile)
    this.daemon = daemon
    daemon.child.once('close', (code, signal) => {
      const asked = daemon.signalsSent.some(sig => sig === 'SIGKILL' || sig === 'SIGTERM')
      if (!asked) this.unexpectedExits.push(`exit code ${code}, signal ${signal}`)
    })
    const ms = await this.waitReady(90_000)
    this.#o.log(`daemon pid ${daemon.pid} ready after ${ms} ms`)
    return Date.now() - started
  }

  /** Waits until GET /readyz answers 200; returns the ms it took (a failed check when it never does). */
  async waitReady (timeoutMs = 120_000): Promise<number> {
    const started = Date.now()
    while (Date.now() - started < timeoutMs) {
      if (!this.daemon.running) break
      if (await this.daemon.ready()) return Date.now() - started
      await sleep(100)
    }
    this.#o.check('daemon ready again', false, `not ready within ${timeoutMs} ms`)
    return Date.now() - started
  }

  async kill (): Promise<void> {
    this.#o.observed.endOfLife(this.daemon)
    const at = Date.now()
    this.daemon.signal('SIGKILL')
    await this.daemon.exited
    this.edges.push({ what: 'kill -9', from: at - EDGE_BEFORE_MS, to: Date.now() })
  }

  /** SIGTERM; checks the exit code is 0 and reads the daemon's own final counts. */
  async stop (): Promise<void> {
    this.#o.observed.endOfLife(this.daemon)
    const at = Date.now()
    this.daemon.signal('SIGTERM')
    const code = await this.daemon.exited
    this.edges.push({ what: 'SIGTERM', from: at - EDGE_BEFORE_MS, to: Date.now() })
    this.#o.check('SIGTERM: exit code 0', code === 0, `exit code ${code}, signal ${this.daemon.exitSignal}`)
    this.#o.observed.finalDrops(this.#o.logFile)
  }
}
