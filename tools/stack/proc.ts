// Process bookkeeping for the stack: pid files, "is this pid still ours" (its
// command line names our stack folder, so a recycled pid is never signalled),
// stopping by pid only, memory, who holds a port, and a lock file so two stack
// commands at once cannot both launch a component and lose track of one.

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname } from 'node:path'
import { FinnhubdError } from '../../daemon/core/errors.js'

export function readPid (file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

export function writePid (file: string, pid: number): void {
  writeFileSync(file, `${pid}\n`)
}

export function removePid (file: string): void {
  rmSync(file, { force: true })
}

export function commandLine (pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return null
  }
}

/** True when `pid` is alive and its command line contains `marker` (our config path). */
export function isOurs (pid: number | null, marker: string): pid is number {
  if (pid === null) return false
  const cmd = commandLine(pid)
  return cmd !== null && cmd.includes(marker)
}

/**
 * A just-launched process as a start-up wait sees it: `ours` once its command line
 * carries the marker; `gone` when it has exited (or the pid runs something else);
 * `unknown` while it lives with no command line to read yet (mid-exec the kernel
 * shows an empty one: taken for an exit, a live node was once left running untracked).
 */
export function launchState (pid: number, marker: string): 'ours' | 'gone' | 'unknown' {
  const cmd = commandLine(pid)
  if (cmd !== null && cmd.includes(marker)) return 'ours'
  if (!exists(pid) || isZombie(pid)) return 'gone'
  return cmd === null || cmd === '' ? 'unknown' : 'gone'
}

function exists (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A kB field of /proc/<pid>/status (VmRSS, VmHWM, …) in bytes; null when the process or the field is not there. */
export function statusBytes (pid: number, field: string): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

export function rssBytes (pid: number): number | null {
  return statusBytes(pid, 'VmRSS')
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** SIGTERM, wait up to graceMs for the process to go, then SIGKILL. Returns how it ended. */
export async function stopPid (pid: number, marker: string, graceMs: number): Promise<'stopped' | 'killed' | 'gone'> {
  if (!isOurs(pid, marker)) return 'gone'
  process.kill(pid, 'SIGTERM')
  const until = Date.now() + graceMs
  while (Date.now() < until) {
    if (!isOurs(pid, marker)) return 'stopped'
    await sleep(100)
  }
  try { process.kill(pid, 'SIGKILL') } catch { return 'stopped' }
  // While it exits, its command line is already empty but it is not a zombie yet:
  // wait until it is really gone (bounded, in case the pid were reused at once).
  const killUntil = Date.now() + 10_000
  while (isAlive(pid) && Date.now() < killUntil) await sleep(50)
  return 'killed'
}

/** True while a process with this pid exists and has not exited (zombies count as gone). */
export function isAlive (pid: number): boolean {
  return commandLine(pid) !== null && !isZombie(pid)
}

function isZombie (pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return true
  }
}

/** Resolves true when nothing listens on host:port (we could bind it); loopback by default. */
export function portFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise(resolve => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => { server.close(() => resolve(true)) })
  })
}

/** "pid 123 (java …)" for the listener on a TCP port, from `ss`, when it can tell. */
export function portOwner (port: number): string | null {
  let out: string
  try {
    out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
  } catch {
    return null
  }
  const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(out)
  if (match === null) return null
  const cmd = commandLine(Number(match[2]))
  return `pid ${match[2]} (${cmd !== null && cmd !== '' ? cmd.slice(0, 120) : match[1]})`
}

export function tail (file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8')
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd()
  } catch {
    return `(no log at ${file})`
  }
}

/**
 * Runs `fn` while holding `file` (created exclusively, our pid inside). A holder
 * that is gone leaves a stale file, which is taken over; a live one is waited for,
 * at most `maxWaitMs`, since the commands that hold it have their own time limits.
 */
export async function withLock<T> (file: string, onWait: (holder: number) => void, fn: () => Promise<T>, maxWaitMs = 15 * 60_000): Promise<T> {
  mkdirSync(dirname(file), { recursive: true })
  const until = Date.now() + maxWaitMs
  let told = false
  for (;;) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = readPid(file)
    // An empty file is either being written right now or left by a crash mid-write.
    const stale = holder === null ? Date.now() - mtimeMs(file) > 2000 : !isAlive(holder)
    if (stale) {
      rmSync(file, { force: true })
      continue
    }
    if (Date.now() >= until) {
      throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
        `another stack command (pid ${String(holder)}) has held ${file} for too long; let it finish or stop it, ` +
        'then run the command again (if that pid is not a finnhubd stack command, delete the file)')
    }
    if (!told && holder !== null) {
      onWait(holder)
      told = true
    }
    await sleep(100)
  }
  try {
    return await fn()
  } finally {
    if (readPid(file) === process.pid) rmSync(file, { force: true })
  }
}

function mtimeMs (file: string): number {
  return statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0
}
