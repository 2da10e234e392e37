// The bench's simulator, on a thread of its own (its own event loop, so the
// bench's scrapes and bookkeeping never delay a tick). Open loop: it sends at the
// rate it is told whatever the daemon does, stamps each trade's `t` with its
// intended send time, and logs its generation calls so the bench can rebuild
// every frame it sent afterwards (exact loss/duplicate accounting).

import { parentPort, workerData } from 'node:worker_threads'
import { FinnhubSimulator } from '../simulator/server.js'

export interface SimWorkerData { token: string, seed: number, maxTradesPerFrame: number, tickMs: number }
export type SimCommand =
  | { id: number, cmd: 'rate', rate: number }
  | { id: number, cmd: 'pause' | 'stats' | 'generation' | 'subscriptions' | 'close' }

const data = workerData as SimWorkerData
const port = parentPort as NonNullable<typeof parentPort>
const sim = new FinnhubSimulator({
  token: data.token,
  ratePerSec: 1,
  seed: data.seed,
  maxTradesPerFrame: data.maxTradesPerFrame,
  tickMs: data.tickMs,
  logGeneration: true,
  // No fault injection in the bench; a slow daemon must show up as latency, not as a dropped socket.
  maxBufferedBytes: 1024 * 1024 * 1024
})
sim.pause()
await sim.start()
port.postMessage({ id: 0, url: sim.url })

port.on('message', (m: SimCommand) => {
  switch (m.cmd) {
    case 'rate':
      sim.setRate(m.rate)
      sim.resume()
      port.postMessage({ id: m.id })
      break
    case 'pause':
      sim.pause()
      port.postMessage({ id: m.id, stats: sim.stats() })
      break
    case 'stats':
      port.postMessage({ id: m.id, stats: sim.stats() })
      break
    case 'subscriptions':
      port.postMessage({ id: m.id, subscriptions: sim.subscriptions() })
      break
    case 'generation':
      port.postMessage({ id: m.id, options: sim.generatorOptions(), calls: sim.generation() })
      break
    case 'close':
      sim.close().then(() => { port.postMessage({ id: m.id }); port.close() }, () => { port.close() })
      break
  }
})
