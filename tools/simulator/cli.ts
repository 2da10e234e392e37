// `finnhubd simulate [options]` runs the simulator until SIGINT/SIGTERM, printing a
// stats line every few seconds; `finnhubd simulate record …` records a session. The
// REST API (symbol discovery) is on the same port, rate-limited like Finnhub's.
// Both answer --help with their own usage.

import { commandArgs } from '../../daemon/args.js'
import { FinnhubdError } from '../../daemon/core/errors.js'
import { recordSession } from './record.js'
import { FinnhubSimulator } from './server.js'

export interface SimulateIo {
  env: Readonly<Record<string, string | undefined>>
  out: (line: string) => void
  err: (line: string) => void
  /** Aborted to stop; defaults to never (the process's signal handlers end it). */
  signal?: AbortSignal
  statsEveryMs?: number
}

export const SIMULATE_USAGE = `usage: finnhubd simulate [--host H] [--port N] [--token T] [--rate TRADES_PER_S]
         [--max-trades-per-frame N] [--seed N] [--max-total N] [--replay FILE] [--speed X]
         [--rest-requests-per-minute N]
       finnhubd simulate record --help

A Finnhub-protocol WebSocket server (and its REST API, for symbol discovery) on loopback,
until SIGINT/SIGTERM; a stats line every 5 s.

options:
  --host H                      address to listen on (default 127.0.0.1)
  --port N                      port (default 8765; 0 picks a free one)
  --token T                     the token clients must send in ?token= (default $FINNHUB_TOKEN, else sandbox)
  --rate TRADES_PER_S           synthetic trades per second, in all (default 1000)
  --max-trades-per-frame N      trades batched into one frame at most (default 20)
  --seed N                      the generator's seed: the same seed sends the same trades (default 1)
  --max-total N                 stop generating after N trades
  --replay FILE                 replay a recorded session (simulate record) instead of generating
  --speed X                     replay speed, 2 = twice as fast (default 1)
  --rest-requests-per-minute N  the REST rate limit, answered with 429 above it (default 30)`

export const RECORD_USAGE = `usage: finnhubd simulate record --symbols A,B --out FILE [--url URL] [--token T] [--duration-ms N]

Records a live session from Finnhub (FINNHUB_TOKEN) into FILE, for \`finnhubd simulate --replay FILE\`.

options:
  --symbols A,B      the symbols to subscribe to (required)
  --out FILE         where the frames go (required)
  --url URL          the WebSocket endpoint (default wss://ws.finnhub.io)
  --token T          the Finnhub token (default $FINNHUB_TOKEN)
  --duration-ms N    how long to record (default 60000)`

function number (name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--${name} takes a number ≥ ${min}, got "${raw}"`)
  return value
}

export async function runSimulateCli (args: readonly string[], io: SimulateIo): Promise<number> {
  if (args[0] === 'record') return await runRecord(args.slice(1), io)
  const { values } = commandArgs({
    args: [...args],
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      token: { type: 'string' },
      rate: { type: 'string' },
      'max-trades-per-frame': { type: 'string' },
      seed: { type: 'string' },
      replay: { type: 'string' },
      speed: { type: 'string' },
      'max-total': { type: 'string' },
      'rest-requests-per-minute': { type: 'string' }
    },
    strict: true
  }, { usage: SIMULATE_USAGE, command: 'finnhubd simulate' })
  const restPerMinute = number('rest-requests-per-minute', values['rest-requests-per-minute'], 30, 1)
  if (!Number.isInteger(restPerMinute)) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--rest-requests-per-minute takes a whole number, got "${values['rest-requests-per-minute'] ?? ''}"`)
  const sim = new FinnhubSimulator({
    host: values.host ?? '127.0.0.1',
    port: number('port', values.port, 8765, 0),
    token: values.token ?? io.env['FINNHUB_TOKEN'] ?? 'sandbox',
    ratePerSec: number('rate', values.rate, 1000, 0.001),
    maxTradesPerFrame: number('max-trades-per-frame', values['max-trades-per-frame'], 20, 1),
    seed: number('seed', values.seed, 1, 0),
    ...(values.replay !== undefined ? { replayFile: values.replay } : {}),
    replaySpeed: number('speed', values.speed, 1, 0.001),
    ...(values['max-total'] !== undefined ? { maxTotalTrades: number('max-total', values['max-total'], 0, 0) } : {}),
    rest: { rateLimit: { requests: restPerMinute, perMs: 60_000 } }
  })
  await sim.start()
  io.out(`finnhubd simulate: listening on ${sim.url} (token required in ?token=), REST on ${sim.restUrl} (?token= or X-Finnhub-Token)`)
  const timer = setInterval(() => {
    const s = sim.stats()
    io.out(`connections ${s.connections.current}  trades sent ${s.tradesSent}  frames ${s.framesSent}  401s ${s.unauthorized}  slow-consumer drops ${s.slowConsumerDrops}  REST requests ${s.restRequests} (429s ${s.rest429})`)
  }, io.statsEveryMs ?? 5000)
  await new Promise<void>(resolve => {
    if (io.signal === undefined) return
    if (io.signal.aborted) resolve()
    io.signal.addEventListener('abort', () => resolve(), { once: true })
  })
  clearInterval(timer)
  await sim.close()
  io.out(`finnhubd simulate: stopped after ${sim.stats().tradesSent} trades`)
  return 0
}

async function runRecord (args: readonly string[], io: SimulateIo): Promise<number> {
  const { values } = commandArgs({
    args: [...args],
    options: { url: { type: 'string' }, symbols: { type: 'string' }, out: { type: 'string' }, 'duration-ms': { type: 'string' }, token: { type: 'string' } },
    strict: true
  }, { usage: RECORD_USAGE, command: 'finnhubd simulate record' })
  if (values.out === undefined || values.symbols === undefined) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', 'simulate record needs --symbols A,B and --out FILE; see `finnhubd simulate record --help`')
  }
  const result = await recordSession({
    url: values.url ?? 'wss://ws.finnhub.io',
    token: values.token ?? io.env['FINNHUB_TOKEN'] ?? '',
    symbols: values.symbols.split(',').map(s => s.trim()).filter(s => s !== ''),
    out: values.out,
    durationMs: number('duration-ms', values['duration-ms'], 60_000, 1),
    ...(io.signal !== undefined ? { signal: io.signal } : {})
  })
  io.out(`recorded ${result.frames} frames (${result.trades} trades) to ${values.out}`)
  return 0
}
