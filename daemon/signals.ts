// The one place signals are handled, in the shape of close-with-grace: the first
// SIGTERM/SIGINT asks for a graceful stop, a second one while stopping forces the
// exit (130), and SIGHUP (when the command has a reload) asks for a reload. Every
// long-running command goes through here: the daemon (run, ingest, process), the
// demo, tail and the simulator.

import type { Logger } from './log.js'
import { hardExit } from './systemd/notify.js'

export const EXIT_SECOND_SIGNAL = 130

export type SignalSource = Pick<NodeJS.EventEmitter, 'on' | 'off'>

export interface SignalHandlers {
  /** The first SIGTERM/SIGINT. */
  stop: (signal: NodeJS.Signals) => void
  /** A second SIGTERM/SIGINT: the stop is taking too long for whoever sent it. */
  force: (signal: NodeJS.Signals) => void
  /** SIGHUP; without one SIGHUP is left to whoever else listens. */
  reload?: () => void
}

/** Routes the process's (or `source`'s) signals to `handlers`; returns the uninstaller. */
export function handleSignals (source: SignalSource, handlers: SignalHandlers): () => void {
  let stopping = false
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      handlers.force(signal)
      return
    }
    stopping = true
    handlers.stop(signal)
  }
  const onHup = (): void => handlers.reload?.()
  source.on('SIGTERM', onStop)
  source.on('SIGINT', onStop)
  if (handlers.reload !== undefined) source.on('SIGHUP', onHup)
  return () => {
    source.off('SIGTERM', onStop)
    source.off('SIGINT', onStop)
    if (handlers.reload !== undefined) source.off('SIGHUP', onHup)
  }
}

/**
 * For commands that run their work behind a promise (the demo, tail, the simulator):
 * resolves with the first SIGTERM/SIGINT; a second one exits the process at once.
 */
export function firstStopSignal (log: Logger, exit: (code: number) => void = hardExit,
  source: SignalSource = process): Promise<string> {
  return new Promise(resolve => {
    handleSignals(source, {
      stop: resolve,
      force: signal => {
        log.error('a second signal while stopping: exiting now, in-flight work may be lost', { signal })
        exit(EXIT_SECOND_SIGNAL)
      }
    })
  })
}
