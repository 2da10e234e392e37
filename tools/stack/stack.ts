// The local stack's verbs. `up` fetches what is missing, starts each component as a
// detached background process (output to <dir>/<name>/<name>.log, pid recorded),
// and returns only once each answers a real client request; a component that dies
// while starting fails fast with its last log lines. `down` signals only the pids
// it recorded, after checking each still runs our config. Both are safe to repeat,
// and they take turns through a lock file in the stack folder.

import { openSync, closeSync, rmSync, mkdirSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { COMPONENTS, PASSWORD_AUTH_FLAG, SKIP_SYNC_FLAG, type Component, type ComponentName } from './components.js'
import { fetchJars } from './fetch.js'
import { findJava } from './java.js'
import { STACK_CASSANDRA_CREDENTIALS, type StackOptions } from './options.js'
import { SECURE_FLAG, SECURE_SASL_MECHANISM, secureStackFiles } from './secure.js'
import { commandLine, isOurs, portFree, portOwner, readPid, removePid, rssBytes, sleep, stopPid, tail, withLock, writePid } from './proc.js'

type Env = Readonly<Record<string, string | undefined>>

export interface ComponentStatus {
  name: ComponentName
  running: boolean
  pid: number | null
  endpoint: string
  ready: boolean
  rssBytes: number | null
  /** Running without fsync (FINNHUBD_STACK_FAST_UNSAFE): fine for tests, not for measurements. */
  fastUnsafe: boolean
  /** Cassandra started with FINNHUBD_CASSANDRA_AUTH=password: clients log in as STACK_CASSANDRA_CREDENTIALS. */
  passwordAuth: boolean
  /** Started by the secure stack (--secure): SASL_SSL SCRAM-SHA-512 (Kafka), TLS + password (Cassandra). */
  secure: boolean
}

export interface UpResult {
  name: ComponentName
  action: 'started' | 'already-running'
  pid: number
  endpoint: string
  fetchMs: number
  readyMs: number
  /** As in ComponentStatus: how the running process was started, whatever the options ask now. */
  passwordAuth: boolean
  secure: boolean
}

/** How clients reach a secure component, for `status` and `up` (names, never passwords). */
export function secureNote (name: ComponentName): string {
  return name === 'kafka' ? `SASL_SSL ${SECURE_SASL_MECHANISM}` : 'TLS + password'
}

const pidFile = (c: Component, o: StackOptions): string => join(c.home(o), `${c.name}.pid`)
export const logFile = (c: Component, o: StackOptions): string => join(c.home(o), `${c.name}.log`)

export function selectComponents (names: readonly string[]): Component[] {
  if (names.length === 0) return [...COMPONENTS]
  return names.map(name => {
    const c = COMPONENTS.find(x => x.name === name)
    if (c === undefined) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `unknown stack component "${name}"; use kafka or cassandra`)
    return c
  })
}

export function runningPid (c: Component, o: StackOptions): number | null {
  const pid = readPid(pidFile(c, o))
  return isOurs(pid, c.marker(o)) ? pid : null
}

const unsafeNote = 'fsync is off (FINNHUBD_STACK_FAST_UNSAFE): a crash can lose acknowledged writes; not for benchmark numbers'

function isFastUnsafe (pid: number): boolean {
  return commandLine(pid)?.includes(SKIP_SYNC_FLAG) ?? false
}

function noteUnsafe (c: Component, pid: number, log: (line: string) => void): void {
  if (isFastUnsafe(pid)) log(`${c.name}: ${unsafeNote}`)
}

// Read from the process, not the options: a node keeps the mode it was started in.
function hasPasswordAuth (pid: number): boolean {
  return commandLine(pid)?.includes(PASSWORD_AUTH_FLAG) ?? false
}

function isSecure (pid: number): boolean {
  return commandLine(pid)?.includes(SECURE_FLAG) ?? false
}

// The user name only: the password is in the docs, not in logs.
const passwordAuthNote = `password authentication is on: log in as user ${STACK_CASSANDRA_CREDENTIALS.username} (CASSANDRA_USER / CASSANDRA_PASSWORD)`

function noteAuth (c: Component, o: StackOptions, pid: number, log: (line: string) => void): boolean {
  if (c.name !== 'cassandra') return false
  const on = hasPasswordAuth(pid)
  if (on && !o.secure) log(`${c.name}: ${passwordAuthNote}`)
  // A node started in the other mode is kept (it answers either way), but said so.
  if (on !== (o.cassandraAuth === 'password')) {
    log(`${c.name}: was started ${on ? 'with' : 'without'} password authentication and keeps it (FINNHUBD_CASSANDRA_AUTH=${o.cassandraAuth} now); ` +
      '`npm run stack -- down cassandra` and `up` again to switch')
  }
  return on
}

function locked<T> (o: StackOptions, log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  return withLock(join(o.dir, 'stack.lock'), pid => log(`waiting for another stack command (pid ${pid}) to finish …`), fn)
}

export async function up (o: StackOptions, env: Env, components: readonly Component[], log: (line: string) => void): Promise<UpResult[]> {
  return await locked(o, log, () => upUnlocked(o, env, components, log))
}

async function upUnlocked (o: StackOptions, env: Env, components: readonly Component[], log: (line: string) => void): Promise<UpResult[]> {
  const results: UpResult[] = []
  let java: string | null = null
  for (const c of components) {
    const existing = runningPid(c, o)
    if (existing !== null) {
      // A secure node answers no plain client, and the other way round: never take one for the other.
      if (isSecure(existing) !== o.secure) {
        throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
          `${c.name} in ${o.dir} runs as the ${o.secure ? 'plain' : 'secure'} stack (pid ${existing}); ` +
          `stop it with \`npm run stack -- down${o.secure ? '' : ' --secure'}\`, or give this stack its own folder (FINNHUBD_STACK_DIR / FINNHUBD_STACK_SECURE_DIR)`)
      }
      // Started by an earlier `up` that may not have seen it ready: wait for that too.
      await waitReady(c, o, existing)
      log(`${c.name}: already running (pid ${existing}) on ${c.endpoint(o)}${o.secure ? ` (${secureNote(c.name)})` : ''}`)
      noteUnsafe(c, existing, log)
      const passwordAuth = noteAuth(c, o, existing, log)
      await c.afterReady?.(o, log)
      results.push({ name: c.name, action: 'already-running', pid: existing, endpoint: c.endpoint(o), fetchMs: 0, readyMs: 0, passwordAuth, secure: o.secure })
      continue
    }
    removePid(pidFile(c, o))
    for (const { port, what } of c.ports(o)) {
      if (!await portFree(port)) {
        const owner = portOwner(port)
        throw new FinnhubdError('FINNHUBD_ERR_STACK_PORT',
          `port ${port} (${what}) is already in use${owner !== null ? ` by ${owner}` : ''}; stop that process, ` +
          'or move the stack with FINNHUBD_KAFKA_PORT / FINNHUBD_KAFKA_CONTROLLER_PORT / FINNHUBD_KAFKA_PROXIED_PORT / FINNHUBD_CASSANDRA_PORT / FINNHUBD_CASSANDRA_STORAGE_PORT')
      }
    }
    java ??= findJava(env, o.javaHome).bin
    const fetched = await fetchJars({ name: c.name, pom: c.pom, dir: o.cacheDir, mvn: o.mvn, log })
    mkdirSync(c.home(o), { recursive: true })
    c.prepare(o, java, fetched.libDir)
    const started = Date.now()
    const pid = launch(c, o, java, fetched.libDir)
    log(`${c.name}: starting (pid ${pid}), waiting until it answers on ${c.endpoint(o)} …`)
    await waitReady(c, o, pid)
    const readyMs = Date.now() - started
    log(`${c.name}: ready on ${c.endpoint(o)}${o.secure ? ` (${secureNote(c.name)})` : ''} after ${(readyMs / 1000).toFixed(1)} s (log: ${logFile(c, o)})`)
    noteUnsafe(c, pid, log)
    const passwordAuth = noteAuth(c, o, pid, log)
    await c.afterReady?.(o, log)
    results.push({ name: c.name, action: 'started', pid, endpoint: c.endpoint(o), fetchMs: fetched.ms, readyMs, passwordAuth, secure: o.secure })
  }
  return results
}

function launch (c: Component, o: StackOptions, java: string, libDir: string): number {
  const out = openSync(logFile(c, o), 'a')
  try {
    const child = spawn(java, c.args(o, libDir), { cwd: c.home(o), detached: true, stdio: ['ignore', out, out] })
    if (child.pid === undefined) throw new FinnhubdError('FINNHUBD_ERR_STACK_START', `${c.name} did not start: ${java} could not be run`)
    child.unref()
    writePid(pidFile(c, o), child.pid)
    return child.pid
  } finally {
    closeSync(out)
  }
}

async function waitReady (c: Component, o: StackOptions, pid: number): Promise<void> {
  const deadline = Date.now() + c.readyTimeoutMs(o)
  while (Date.now() < deadline) {
    if (!isOurs(pid, c.marker(o))) {
      removePid(pidFile(c, o))
      throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
        `${c.name} exited while starting. Last lines of ${logFile(c, o)}:\n${tail(logFile(c, o), 30)}`)
    }
    if (await c.probe(o)) return
    await sleep(500)
  }
  await stopPid(pid, c.marker(o), 10_000)
  removePid(pidFile(c, o))
  throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
    `${c.name} did not answer on ${c.endpoint(o)} within ${Math.round(c.readyTimeoutMs(o) / 1000)} s and was stopped. ` +
    `Last lines of ${logFile(c, o)}:\n${tail(logFile(c, o), 30)}`)
}

export async function down (o: StackOptions, components: readonly Component[], log: (line: string) => void): Promise<void> {
  await locked(o, log, () => downUnlocked(o, components, log))
}

async function downUnlocked (o: StackOptions, components: readonly Component[], log: (line: string) => void): Promise<void> {
  // Cassandra first: nothing depends on it stopping last, and its drain takes longest.
  for (const c of [...components].reverse()) {
    const pid = runningPid(c, o)
    removePid(pidFile(c, o))
    if (pid === null) {
      log(`${c.name}: not running`)
      continue
    }
    const how = await stopPid(pid, c.marker(o), 45_000)
    log(`${c.name}: ${how === 'killed' ? 'did not stop within 45 s and was killed' : 'stopped'} (pid ${pid})`)
  }
}

export async function status (o: StackOptions, components: readonly Component[]): Promise<ComponentStatus[]> {
  return await Promise.all(components.map(async c => {
    const pid = runningPid(c, o)
    return {
      name: c.name,
      running: pid !== null,
      pid,
      endpoint: c.endpoint(o),
      ready: pid !== null && await c.probe(o),
      rssBytes: pid === null ? null : rssBytes(pid),
      fastUnsafe: pid !== null && isFastUnsafe(pid),
      passwordAuth: pid !== null && hasPasswordAuth(pid),
      secure: pid !== null && isSecure(pid)
    }
  }))
}

export async function wipe (o: StackOptions, components: readonly Component[], log: (line: string) => void): Promise<void> {
  await locked(o, log, async () => {
    await downUnlocked(o, components, log)
    for (const c of components) {
      rmSync(c.home(o), { recursive: true, force: true })
      log(`${c.name}: data and logs deleted (downloaded jars kept in ${join(o.cacheDir, 'lib')})`)
    }
    // The whole secure stack wiped: its certificates and passwords go too (one component
    // alone keeps them: the other still uses them).
    if (o.secure && COMPONENTS.every(c => components.includes(c))) {
      rmSync(secureStackFiles(o).dir, { recursive: true, force: true })
      log(`certificates, passwords and the daemon's config deleted (${secureStackFiles(o).dir}); the next \`up --secure\` makes new ones`)
    }
  })
}

export function logs (o: StackOptions, components: readonly Component[], lines: number): string {
  return components.map(c => `==> ${logFile(c, o)} <==\n${tail(logFile(c, o), lines)}`).join('\n\n')
}
