// Regression (found by the fault suite): when the daemon's main thread was blocked
// for longer than finnhub.staleAfterMs (a synchronous offset commit over a slow
// network took 5 s), the watchdog fired first when the thread came back, called the
// socket stale and terminated it, throwing away the frames that had arrived
// meanwhile and still waited unread in it: 1,613 trades lost, uncounted. A late
// watchdog now lets the event loop read what waits before it judges.
import t from 'tap'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { validateConfig } from '../../daemon/config/load.js'
import { FinnhubClient } from '../../daemon/finnhub/client.js'
import { createLogger } from '../../daemon/log.js'
import { createIngestCounters } from '../../daemon/metrics/ingest.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import type { SimulatorStats } from '../../tools/simulator/server.js'
import { waitFor } from '../fixtures/kafka.js'

t.test('a main thread blocked past staleAfterMs loses no frame and does not reconnect', async t => {
  // The simulator on a thread of its own keeps sending while this one is blocked.
  const worker = new Worker(join(PROJECT_ROOT, 'dist', 'tools', 'bench', 'sim-worker.js'), { workerData: { token: 'tok', seed: 5, maxTradesPerFrame: 5, tickMs: 5 } })
  const replies = new Map<number, (m: Record<string, unknown>) => void>()
  let url = ''
  worker.on('message', (m: Record<string, unknown>) => {
    if (m['id'] === 0) url = m['url'] as string
    replies.get(m['id'] as number)?.(m)
  })
  let next = 1
  const call = (cmd: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> => new Promise(resolve => {
    const id = next++
    replies.set(id, resolve)
    worker.postMessage({ id, cmd, ...extra })
  })
  t.teardown(async () => { await call('close'); await worker.terminate() })
  t.ok(await waitFor(() => url !== '', 10_000), 'the simulator is up')

  const counters = createIngestCounters()
  const lines: string[] = []
  const client = new FinnhubClient({
    finnhub: validateConfig({ finnhub: { url, token: 'tok', symbols: ['STALL:AAA', 'STALL:BBB'], staleAfterMs: 1000 } }).finnhub,
    log: createLogger({ level: 'info', write: l => lines.push(l) }),
    counters,
    onTrades: () => {}
  })
  t.teardown(() => client.close())
  client.start()
  t.ok(await waitFor(() => client.state === 'open', 10_000), 'connected')
  await call('rate', { rate: 500 })
  t.ok(await waitFor(() => counters.tradesReceived > 100, 10_000), 'trades flow')

  // Blocked for 1.6 s: the watchdog (1 s) is due meanwhile, frames pile up in the socket.
  const until = Date.now() + 1600
  while (Date.now() < until) { /* a blocking call */ }
  await new Promise(resolve => setTimeout(resolve, 1000))
  const { stats } = await call('pause') as { stats: SimulatorStats }
  t.ok(await waitFor(() => counters.tradesReceived === stats.tradesSent, 10_000), `every trade sent arrived (${counters.tradesReceived} of ${stats.tradesSent})`)
  t.equal(counters.reconnects.stale, 0, 'the late watchdog did not call the socket stale')
  t.equal(stats.connections.total, 1, 'one connection throughout')
  t.notMatch(lines.join('\n'), /looks stalled/)
})
