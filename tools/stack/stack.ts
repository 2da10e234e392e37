// The local stack's verbs. `up` fetches what is missing, starts each component as a
// detached background process (output to <dir>/<name>/<name>.log, pid recorded),
// and returns only once each answers a real client request; a component that dies
// while starting fails fast with its last log lines. `down` signals only the pids
// it recorded, after checking each still runs our config. Both are safe to repeat,
// and they take turns through a lock file in the stack folder. The cluster stack's
// Kafka nodes start together (none is served before a quorum of voters runs), its
// Cassandra nodes one after another, each waited for until the ones before it see
// it (Cassandra refuses concurrent joins); then the Kafka quorum is checked.

import { openSync, closeSync, rmSync, mkdirSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { COMPONENTS, PASSWORD_AUTH_FLAG, SKIP_SYNC_FLAG, stackComponents, type Component, type ComponentName } from './components.js'
import { fetchJars } from './fetch.js'
import { findJava } from './java.js'
import { kafkaQuorum, type KafkaQuorum } from './quorum.js'
import type { NodeKind } from './nodes.js'
import { STACK_CASSANDRA_CREDENTIALS, type StackOptions } from './options.js'
import { SECURE_FLAG, SECURE_SASL_MECHANISM, secureStackFiles } from './secure.js'
import { commandLine, isOurs, launchState, portFree, portOwner, readPid, removePid, rssBytes, sleep, stopPid, tail, withLock, writePid } from './proc.js'

type Env = Readonly<Record<string, string | undefined>>

export interface ComponentStatus {
  name: ComponentName
  kind: NodeKind
  /** Kafka's broker id (node.id), Cassandra's node address: how a fault test maps a node. */
  kafkaBrokerId: number | null
  address: string
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
  return name.startsWith('kafka') ? `SASL_SSL ${SECURE_SASL_MECHANISM}` : 'TLS + password'
}

const pidFile = (c: Component, o: StackOptions): string => join(c.home(o), `${c.name}.pid`)
export const logFile = (c: Component, o: StackOptions): string => join(c.home(o), `${c.name}.log`)

/**
 * The components `names` pick (all when none), in start order. Without options, the
 * single-node stacks' two. For the cluster, `kafka` and `cassandra` pick every node
 * of that kind, `kafka-2` or `cassandra-3` one node.
 */
export function selectComponents (names: readonly string[], o?: StackOptions): Component[] {
  const all = o === undefined ? [...COMPONENTS] : stackComponents(o)
  if (names.length === 0) return all
  const picked = new Set<Component>()
  for (const name of names) {
    const matches = all.filter(x => x.name === name || x.kind === name)
    if (matches.length === 0) {
      throw new FinnhubdError('FINNHUBD_ERR_USAGE',
        `unknown stack component "${name}"; use kafka or cassandra${o?.cluster === true ? ` or one node: ${all.map(x => x.name).join(', ')}` : ''}`)
    }
    for (const c of matches) picked.add(c)
  }
  return all.filter(c => picked.has(c))
}

/** The other nodes of c's kind that run now (by their recorded pids). */
function runningPeers (c: Component, o: StackOptions): Component[] {
  return stackComponents(o).filter(x => x.kind === c.kind && x.name !== c.name && runningPid(x, o) !== null)
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
  let kafkaLib: string | null = null
  for (let i = 0; i < components.length;) {
    // A cluster's Kafka nodes are launched together, then waited for; anything else alone.
    const first = components[i] as Component
    let end = i + 1
    if (o.cluster && first.startsWithPeers) while (end < components.length && (components[end] as Component).kind === first.kind) end++
    const batch = components.slice(i, end)
    i = end
    const launched: Array<{ c: Component, pid: number, started: number, fetchMs: number }> = []
    for (const c of batch) {
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
      for (const { port, host, what } of c.ports(o)) {
        if (!await portFree(port, host)) {
          const owner = portOwner(port)
          throw new FinnhubdError('FINNHUBD_ERR_STACK_PORT',
            `port ${host === '127.0.0.1' ? port : `${host}:${port}`} (${what}) is already in use${owner !== null ? ` by ${owner}` : ''}` +
            `${host !== '127.0.0.1' ? ` (or ${host} cannot be bound: it must be a loopback address, as every 127.0.0.0/8 address is on Linux)` : ''}; ` +
            'stop that process, or move the stack with FINNHUBD_KAFKA_PORT / FINNHUBD_KAFKA_CONTROLLER_PORT / FINNHUBD_KAFKA_PROXIED_PORT / FINNHUBD_CASSANDRA_PORT / FINNHUBD_CASSANDRA_STORAGE_PORT')
        }
      }
      java ??= findJava(env, o.javaHome).bin
      const fetched = await fetchJars({ name: c.kind, pom: c.pom, dir: o.cacheDir, mvn: o.mvn, log })
      if (c.kind === 'kafka') kafkaLib = fetched.libDir
      mkdirSync(c.home(o), { recursive: true })
      c.prepare(o, java, fetched.libDir)
      const pid = launch(c, o, java, fetched.libDir)
      log(`${c.name}: starting (pid ${pid}), waiting until it answers on ${c.endpoint(o)} …`)
      launched.push({ c, pid, started: Date.now(), fetchMs: fetched.ms })
    }
    for (const { c, pid, started, fetchMs } of launched) {
      await waitReady(c, o, pid)
      const readyMs = Date.now() - started
      log(`${c.name}: ready on ${c.endpoint(o)}${o.secure ? ` (${secureNote(c.name)})` : ''} after ${(readyMs / 1000).toFixed(1)} s (log: ${logFile(c, o)})`)
      noteUnsafe(c, pid, log)
      const passwordAuth = noteAuth(c, o, pid, log)
      await c.afterReady?.(o, log)
      results.push({ name: c.name, action: 'started', pid, endpoint: c.endpoint(o), fetchMs, readyMs, passwordAuth, secure: o.secure })
    }
    // In the cluster a node is up only when it and the running others see each other.
    if (o.cluster) {
      for (const c of batch) {
        const pid = runningPid(c, o)
        if (pid === null) continue
        const peers = runningPeers(c, o)
        await waitJoined(c, o, pid, peers)
        if (peers.length > 0) log(`${c.name}: sees ${peers.map(p => p.name).join(' and ')}, and is seen by ${peers.length === 1 ? 'it' : 'them'}`)
      }
    }
  }
  if (o.cluster && components.some(c => c.kind === 'kafka')) {
    java ??= findJava(env, o.javaHome).bin
    kafkaLib ??= (await fetchJars({ name: 'kafka', pom: (components.find(c => c.kind === 'kafka') as Component).pom, dir: o.cacheDir, mvn: o.mvn, log })).libDir
    const quorum = await waitQuorum(o, java, kafkaLib)
    log(`kafka: quorum leader ${quorum.leaderId} (epoch ${quorum.leaderEpoch}), voters ${quorum.voters.map(v => `${v.id}${v.caughtUp ? '' : ' (lagging)'}`).join(', ')}`)
  }
  return results
}

async function waitJoined (c: Component, o: StackOptions, pid: number, peers: readonly Component[]): Promise<void> {
  if (c.joined === undefined) return
  const deadline = Date.now() + c.readyTimeoutMs(o)
  while (Date.now() < deadline) {
    if (!isOurs(pid, c.marker(o))) {
      throw new FinnhubdError('FINNHUBD_ERR_STACK_START', `${c.name} exited while joining the cluster. Last lines of ${logFile(c, o)}:\n${tail(logFile(c, o), 30)}`)
    }
    if (await c.joined(o, peers)) return
    await sleep(1000)
  }
  throw new FinnhubdError('FINNHUBD_ERR_STACK_START',
    `${c.name} answers but did not see ${peers.map(p => p.name).join(', ')} (or they it) within ${Math.round(c.readyTimeoutMs(o) / 1000)} s; ` +
    `it keeps running: \`npm run stack -- logs --cluster\` shows why, \`down --cluster\` stops it. Last lines of ${logFile(c, o)}:\n${tail(logFile(c, o), 20)}`)
}

/** Until every running Kafka node is a voter that has caught up with an elected leader (checked through the brokers). */
async function waitQuorum (o: StackOptions, java: string, libDir: string): Promise<KafkaQuorum> {
  const deadline = Date.now() + o.kafkaReadyTimeoutMs
  let last: string = 'no answer yet'
  while (Date.now() < deadline) {
    const nodes = stackComponents(o).filter(c => c.kind === 'kafka')
    const running = nodes.filter(c => runningPid(c, o) !== null)
    const bootstrap = running.map(c => c.endpoint(o)).join(',')
    if (bootstrap === '') throw new FinnhubdError('FINNHUBD_ERR_STACK_START', 'no Kafka node of the cluster runs, so there is no quorum to check')
    const q = await kafkaQuorum(java, libDir, bootstrap)
    if (typeof q === 'string') last = q
    else if (q.leaderId >= 0 && running.every(c => q.voters.some(v => v.id === c.kafkaBrokerId && v.caughtUp))) return q
    else last = `leader ${q.leaderId}, voters ${q.voters.map(v => `${v.id}${v.caughtUp ? '' : ' (lagging)'}`).join(', ')}`
    await sleep(1000)
  }
  throw new FinnhubdError('FINNHUBD_ERR_STACK_START', `the Kafka quorum did not settle within ${Math.round(o.kafkaReadyTimeoutMs / 1000)} s (last: ${last}); ` +
    '`npm run stack -- logs --cluster kafka` shows why')
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
    const state = launchState(pid, c.marker(o))
    if (state === 'unknown') {
      await sleep(200)
      continue
    }
    if (state === 'gone') {
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
  // The nodes of one kind stop together: a cluster's last Kafka node, stopped alone,
  // would wait for a quorum that is gone before it gives up.
  for (const kind of ['cassandra', 'kafka'] as const) {
    await Promise.all(components.filter(c => c.kind === kind).reverse().map(async c => {
      const pid = runningPid(c, o)
      removePid(pidFile(c, o))
      if (pid === null) {
        log(`${c.name}: not running`)
        return
      }
      const how = await stopPid(pid, c.marker(o), 45_000)
      log(`${c.name}: ${how === 'killed' ? 'did not stop within 45 s and was killed' : 'stopped'} (pid ${pid})`)
    }))
  }
}

export async function status (o: StackOptions, components: readonly Component[]): Promise<ComponentStatus[]> {
  return await Promise.all(components.map(async c => {
    const pid = runningPid(c, o)
    // In the cluster, ready also means it and the running nodes of its kind see each other.
    const ready = pid !== null && await c.probe(o) && (!o.cluster || c.joined === undefined || await c.joined(o, runningPeers(c, o)))
    return {
      name: c.name,
      kind: c.kind,
      kafkaBrokerId: c.kafkaBrokerId,
      address: c.address,
      running: pid !== null,
      pid,
      endpoint: c.endpoint(o),
      ready,
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
    if (o.cluster && stackComponents(o).filter(c => c.kind === 'kafka').every(c => components.some(x => x.name === c.name))) {
      rmSync(join(o.dir, 'kafka-cluster-id'), { force: true })
    }
    if (o.secure && stackComponents(o).every(c => components.some(x => x.name === c.name))) {
      rmSync(secureStackFiles(o).dir, { recursive: true, force: true })
      log(`certificates, passwords and the daemon's config deleted (${secureStackFiles(o).dir}); the next \`up --secure\` makes new ones`)
    }
  })
}

export function logs (o: StackOptions, components: readonly Component[], lines: number): string {
  return components.map(c => `==> ${logFile(c, o)} <==\n${tail(logFile(c, o), lines)}`).join('\n\n')
}

/** One node as a fault test sees it: its pid (null when it does not run), its Kafka broker id or Cassandra address, its endpoint. */
export interface NodeHandle {
  name: ComponentName
  kind: NodeKind
  pid: number | null
  kafkaBrokerId: number | null
  address: string
  endpoint: string
}

/** Every node of the stack by name (the cluster's six, or the single stack's two): which pid to kill -9 or SIGSTOP for which broker id. */
export function nodeHandles (o: StackOptions): NodeHandle[] {
  return stackComponents(o).map(c => ({ name: c.name, kind: c.kind, pid: runningPid(c, o), kafkaBrokerId: c.kafkaBrokerId, address: c.address, endpoint: c.endpoint(o) }))
}

/** Starts one node (`kafka-2`, `cassandra-3`; or every node of a kind), waiting until it and the running others see each other. */
export async function startNode (o: StackOptions, name: ComponentName, env: Env, log: (line: string) => void): Promise<UpResult[]> {
  return await up(o, env, selectComponents([name], o), log)
}

/** Stops one node (or every node of a kind) cleanly, by its recorded pid. */
export async function stopNode (o: StackOptions, name: ComponentName, log: (line: string) => void): Promise<void> {
  await down(o, selectComponents([name], o), log)
}
