// What a SIGHUP reload changes, pure. The new file is validated in full first (by
// loadConfig); this module compares it with the running configuration key by key
// and splits the differences into those the daemon applies live (HOT_KEYS) and
// those that need a restart. The effective configuration after a reload is the new
// one with every restart-only key kept at its running value, so a later reload
// reports those keys again until the daemon is restarted.

import { deepFreeze } from './load.js'
import type { Config } from './schema.js'
import { REDACTED, SECRET_PATHS } from './secrets.js'

/** Keys applied to the running daemon without a restart. */
export const HOT_KEYS: readonly string[] = [
  'logLevel',
  'finnhub.symbols', // subscribe/unsubscribe diff on the live socket
  'finnhub.url', // reconnect to the new endpoint
  'finnhub.token', // reconnect with the new token (e.g. after a 401)
  // Symbol discovery runs again with these (a subscription diff follows).
  'finnhub.rest.url',
  'finnhub.rest.requestsPerWindow',
  'finnhub.rest.windowMs',
  'finnhub.rest.requestTimeoutMs',
  'finnhub.rest.maxAttempts',
  'finnhub.rest.retryInitialDelayMs',
  'finnhub.rest.retryMaxDelayMs',
  'finnhub.discovery.enabled',
  'finnhub.discovery.exchanges',
  'finnhub.discovery.include',
  'finnhub.discovery.exclude',
  'finnhub.discovery.quoteCheck',
  'finnhub.discovery.maxSymbols',
  'finnhub.discovery.intervalMs',
  'finnhub.discovery.failureRetryMs',
  'workers.batchSize',
  'kafka.commitIntervalMs',
  'kafka.consumeTimeoutMs',
  'shutdown.drainTimeoutMs',
  'overload.shed',
  'overload.backlogSeconds',
  'overload.busyUtilization',
  'overload.maxShare'
]

const SECRET_KEYS = new Set(SECRET_PATHS)

export interface ConfigChange {
  path: string
  from: unknown
  to: unknown
  hot: boolean
}

/** Every leaf key whose value differs (arrays compare as a whole), in schema order. */
export function diffConfig (current: Config, next: Config): ConfigChange[] {
  const out: ConfigChange[] = []
  walk(current, next, [], out)
  return out
}

function walk (a: unknown, b: unknown, path: string[], out: ConfigChange[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    for (const k of keys) walk(a[k], b[k], [...path, k], out)
    return
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return
  const key = path.join('.')
  out.push({ path: key, from: a, to: b, hot: HOT_KEYS.includes(key) })
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** The configuration to run on after a reload: `next` with restart-only changes undone. */
export function effectiveConfig (current: Config, next: Config, changes: readonly ConfigChange[]): Config {
  const copy = structuredClone(next) as unknown as Record<string, unknown>
  for (const c of changes) {
    if (c.hot) continue
    const path = c.path.split('.')
    let node = copy
    for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>
    node[path[path.length - 1] as string] = structuredClone(c.from)
  }
  return deepFreeze(copy as unknown as Config)
}

/** A change as a log field: secrets show only that they changed. */
export function describeChange (c: ConfigChange): { key: string, from: unknown, to: unknown } {
  if (SECRET_KEYS.has(c.path)) return { key: c.path, from: REDACTED, to: REDACTED }
  return { key: c.path, from: c.from, to: c.to }
}
