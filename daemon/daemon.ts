// The long-running daemon: builds the logger and the metrics registry, starts the
// requested roles, and owns shutdown: the first SIGTERM/SIGINT stops intake and
// drains in order (close the socket, flush the producer, then stop consuming,
// finish in-flight batches, commit, close the pool and the clients); a second
// signal exits at once.

import { Registry, collectDefaultMetrics } from 'prom-client'
import type { Config } from './config/schema.js'
import { startIngest, type Ingest } from './ingest.js'
import { createLogger, type Logger } from './log.js'
import { registerLatencyMetrics, StageLatency } from './metrics/latency.js'
import { startProcess, type ProcessRole } from './process.js'

export type Role = 'ingest' | 'process'

export interface DaemonOptions {
  config: Config
  roles: readonly Role[]
  log?: Logger
  /** Resolves when the daemon should stop (signals in production, a promise in tests). */
  stopSignal?: Promise<string>
  exit?: (code: number) => void
}

export interface RunningDaemon {
  ingest: Ingest | null
  process: ProcessRole | null
  latency: StageLatency
  registry: Registry
  log: Logger
  stop: (reason: string) => Promise<void>
  stopped: Promise<void>
}

export async function startDaemon (opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.log ?? createLogger({ level: opts.config.logLevel })
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'finnhubd_' })
  const latency = new StageLatency()
  registerLatencyMetrics(registry, latency)
  // The processor first: it is ready to drain the topic before trades flow into it.
  const processRole = opts.roles.includes('process') ? await startProcess(opts.config, { log, registry, latency }) : null
  let ingest: Ingest | null = null
  try {
    ingest = opts.roles.includes('ingest') ? await startIngest(opts.config, { log, registry }) : null
  } catch (err) {
    await processRole?.stop()
    throw err
  }
  let stopping: Promise<void> | null = null
  let resolveStopped!: () => void
  const stopped = new Promise<void>(resolve => { resolveStopped = resolve })
  const stop = async (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping', { reason })
      await ingest?.stop()
      await processRole?.stop()
      log.info('stopped')
      resolveStopped()
    })()
    return await stopping
  }
  opts.stopSignal?.then(stop).catch(err => { log.error('shutdown failed', { err }) })
  return { ingest, process: processRole, latency, registry, log, stop, stopped }
}

/** Resolves with the first SIGTERM/SIGINT; a second one exits the process at once. */
export function processSignals (log: Logger, exit: (code: number) => void = code => process.exit(code),
  source: Pick<NodeJS.EventEmitter, 'on'> = process): Promise<string> {
  return new Promise(resolve => {
    let seen = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (seen) {
        log.error('second signal while draining: exiting now, in-flight records may be lost', { signal })
        exit(130)
        return
      }
      seen = true
      resolve(signal)
    }
    source.on('SIGTERM', onSignal)
    source.on('SIGINT', onSignal)
  })
}
