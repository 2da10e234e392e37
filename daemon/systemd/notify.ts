// systemd integration: sd_notify(3) through our own N-API addon (native/), since
// Node has no unix datagram socket. Without $NOTIFY_SOCKET (not started by systemd)
// every call is a no-op. Without the addon (its build failed at install) the daemon
// still runs and says once that systemd notification is off. A failed send is
// logged (rate-limited) and never thrown: notification must not stop the pipeline.
//
// The watchdog pings at half of $WATCHDOG_USEC from a timer of the main event loop,
// so a blocked loop stops pinging and systemd restarts the daemon; `healthy()` can
// withhold pings further (e.g. while a forced exit is under way).
//
// The same addon gives the daemon its hard exit (`hardExit`): a forced stop must end
// the process even when a native close hangs in Node's own teardown.

import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Logger } from '../log.js'
import { PROJECT_ROOT } from '../paths.js'

export interface NotifyAddon {
  notify: (socketPath: string, message: string) => void
  monotonicUsec: () => bigint
  /** _exit(2): never returns. Absent from an addon built before it existed. */
  hardExit?: (code: number) => never
}

export const ADDON_PATH = join(PROJECT_ROOT, 'native', 'build', 'Release', 'sd_notify.node')

/** The built addon, or the reason it could not be loaded. */
export function loadNotifyAddon (path = ADDON_PATH): NotifyAddon | Error {
  try {
    return createRequire(import.meta.url)(path) as NotifyAddon
  } catch (err) {
    return err as Error
  }
}

let cachedAddon: NotifyAddon | Error | null = null

/**
 * Ends the process now with `code`, for the forced exits (a second signal, the stop
 * budget's hard timer, a fatal error): whatever was written to stdout/stderr before
 * the call is out (writes to files, pipes and sockets are synchronous on Linux).
 *
 * process.exit() is not bounded: it runs the 'exit' listeners, then Node 20's
 * DefaultProcessExitHandlerInternal, which stops the worker threads, then
 * uv_library_shutdown() joins libuv's thread pool — where node-rdkafka runs its
 * disconnect (rd_kafka_consumer_close) — and only then exit(3) with its atexit
 * handlers. A close that never returns holds the process there for good. The addon's
 * _exit skips all of it.
 *
 * Without the addon (its build failed) Node has no exit that skips that teardown:
 * process.reallyExit (the internal half of process.exit) only skips the 'exit'
 * listeners, RunAtExit and env->Exit still run and still join the thread pool. It is
 * still the better fallback (a stuck 'exit' listener cannot hold it), and the signal
 * listeners go first, so the next SIGTERM/SIGINT — systemd's, after TimeoutStopSec,
 * sends SIGKILL anyway — meets Node's default action and ends the process at once.
 */
export function hardExit (code: number, addon: NotifyAddon | Error = (cachedAddon ??= loadNotifyAddon())): never {
  if (!(addon instanceof Error) && typeof addon.hardExit === 'function') {
    try {
      addon.hardExit(code)
    } catch {
      // A code out of 0..255: refused by the addon; the fallback below still exits.
    }
  }
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.removeAllListeners(signal)
  const reallyExit = (process as unknown as { reallyExit?: (code: number) => never }).reallyExit
  if (typeof reallyExit === 'function') reallyExit.call(process, code)
  process.exit(code)
}

export interface NotifierOptions {
  env: Readonly<Record<string, string | undefined>>
  log: Logger
  /** Defaults to the built addon; tests pass the result of loadNotifyAddon() for another path. */
  addon?: NotifyAddon | Error
  pid?: number
}

export class SystemdNotifier {
  readonly #socket: string | null
  readonly #addon: NotifyAddon | null
  readonly #log: Logger
  readonly #watchdogUsec: number | null
  #watchdogTimer: NodeJS.Timeout | null = null
  #sent = 0

  constructor (opts: NotifierOptions) {
    this.#log = opts.log.child({ component: 'systemd' })
    const socket = opts.env['NOTIFY_SOCKET'] ?? ''
    this.#socket = socket === '' ? null : socket
    const addon = opts.addon ?? loadNotifyAddon()
    this.#addon = addon instanceof Error ? null : addon
    if (this.#socket !== null && addon instanceof Error) {
      this.#log.warn('systemd notification is off: the sd_notify addon (native/) is not built; run `npm run build:native` to see why. ' +
        'Under Type=notify systemd will wait for READY=1 until its start timeout', { err: addon.message })
    }
    this.#watchdogUsec = watchdogUsec(opts.env, opts.pid ?? process.pid)
  }

  /** True when notifications reach systemd (socket set and addon loaded). */
  get enabled (): boolean { return this.#socket !== null && this.#addon !== null }
  /** The watchdog interval systemd asked for, in ms, or null. */
  get watchdogMs (): number | null { return this.#watchdogUsec === null ? null : this.#watchdogUsec / 1000 }
  /** Messages sent so far. */
  get sent (): number { return this.#sent }

  ready (status?: string): void { this.#send(withStatus('READY=1', status)) }
  status (status: string): void { this.#send(withStatus(null, status)) }
  stopping (status?: string): void { this.#send(withStatus('STOPPING=1', status)) }

  /** RELOADING=1 with the monotonic timestamp systemd ≥ 253 requires; READY=1 ends the reload. */
  reloading (status?: string): void {
    if (!this.enabled) return
    const usec = (this.#addon as NotifyAddon).monotonicUsec()
    this.#send(withStatus(`RELOADING=1\nMONOTONIC_USEC=${usec}`, status))
  }

  /** Starts WATCHDOG=1 pings at half the interval systemd asked for (none when it asked for none). */
  startWatchdog (healthy: () => boolean = () => true): void {
    if (!this.enabled || this.#watchdogUsec === null || this.#watchdogTimer !== null) return
    const everyMs = Math.max(1, Math.floor(this.#watchdogUsec / 2000))
    this.#watchdogTimer = setInterval(() => { if (healthy()) this.#send('WATCHDOG=1') }, everyMs)
    this.#watchdogTimer.unref()
    this.#log.info('systemd watchdog on', { pingEveryMs: everyMs })
  }

  stopWatchdog (): void {
    if (this.#watchdogTimer !== null) clearInterval(this.#watchdogTimer)
    this.#watchdogTimer = null
  }

  #send (message: string): void {
    if (!this.enabled) return
    try {
      (this.#addon as NotifyAddon).notify(this.#socket as string, message)
      this.#sent++
    } catch (err) {
      this.#log.limited('warn', 'sd-notify', 'could not notify systemd through NOTIFY_SOCKET', { err, socket: this.#socket, message: message.split('\n')[0] })
    }
  }
}

function withStatus (head: string | null, status: string | undefined): string {
  // One line: a newline inside STATUS= would start another assignment.
  const tail = status === undefined ? null : `STATUS=${status.replace(/\s*\n\s*/g, ' ')}`
  return [head, tail].filter(s => s !== null).join('\n')
}

/** $WATCHDOG_USEC when it is meant for this process ($WATCHDOG_PID unset or ours), else null. */
export function watchdogUsec (env: Readonly<Record<string, string | undefined>>, pid: number): number | null {
  const usec = env['WATCHDOG_USEC']
  if (usec === undefined || !/^\d+$/.test(usec) || Number(usec) === 0) return null
  const forPid = env['WATCHDOG_PID']
  if (forPid !== undefined && forPid !== '' && Number(forPid) !== pid) return null
  return Number(usec)
}
