// The long-running daemon: builds the logger and the metrics registry, starts the
// requested roles, and owns shutdown: the first SIGTERM/SIGINT stops intake and
// drains (close the socket, flush the producer); a second signal exits at once.

import { Registry, collectDefaultMetrics } from 'prom-client'
import type { Config } from './config/schema.js'
import { startIngest, type Ingest } from './ingest.js'
import { createLogger, type Logger } from './log.js'

export interface DaemonOptions {
  config: Config
  roles: ReadonlyArray<'ingest'>
  log?: Logger
  /** Resolves when the daemon should stop (signals in production, a promise in tests). */
  stopSignal?: Promise<string>
  exit?: (code: number) => void
}

export interface RunningDaemon {
  ingest: Ingest | null
  registry: Registry
  log: Logger
  stop: (reason: string) => Promise<void>
  stopped: Promise<void>
}

export async function startDaemon (opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.log ?? createLogger({ level: opts.config.logLevel })
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'finnhubd_' })
  const ingest = opts.roles.includes('ingest') ? await startIngest(opts.config, { log, registry }) : null
  let stopping: Promise<void> | null = null
  let resolveStopped!: () => void
  const stopped = new Promise<void>(resolve => { resolveStopped = resolve })
  const stop = async (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping', { reason })
      await ingest?.stop()
      log.info('stopped')
      resolveStopped()
    })()
    return await stopping
  }
  opts.stopSignal?.then(stop).catch(err => { log.error('shutdown failed', { err }) })
  return { ingest, registry, log, stop, stopped }
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
