// Records a live Finnhub session (or any server speaking the protocol) to a JSONL
// file the simulator can replay: one line {"at": ms since start, "frame": raw text}
// per text frame received, until a duration or a frame count is reached.

import { createWriteStream } from 'node:fs'
import WebSocket from 'ws'

export interface RecordOptions {
  url: string
  token: string
  symbols: readonly string[]
  out: string
  durationMs?: number
  maxFrames?: number
  signal?: AbortSignal
}

export interface RecordResult { frames: number, trades: number }

export async function recordSession (opts: RecordOptions): Promise<RecordResult> {
  const url = new URL(opts.url)
  url.searchParams.set('token', opts.token)
  const file = createWriteStream(opts.out)
  const ws = new WebSocket(url)
  const result: RecordResult = { frames: 0, trades: 0 }
  let started = 0
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    const finish = (): void => {
      clearTimeout(timer)
      ws.terminate()
      resolve()
    }
    opts.signal?.addEventListener('abort', finish, { once: true })
    ws.once('unexpected-response', (_req, res) => { reject(new Error(`recording refused: HTTP ${res.statusCode ?? 0} from ${opts.url} (check the token)`)) })
    ws.once('error', reject)
    ws.once('open', () => {
      started = Date.now()
      for (const symbol of opts.symbols) ws.send(JSON.stringify({ type: 'subscribe', symbol }))
      if (opts.durationMs !== undefined) timer = setTimeout(finish, opts.durationMs)
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return
      const frame = data.toString('utf8')
      file.write(JSON.stringify({ at: Date.now() - started, frame }) + '\n')
      result.frames++
      const trades = /^\{"type":"trade","data":\[/.test(frame) ? (frame.match(/"s":/g) ?? []).length : 0
      result.trades += trades
      if (opts.maxFrames !== undefined && result.frames >= opts.maxFrames) finish()
    })
    ws.once('close', () => resolve())
  })
  await new Promise<void>(resolve => file.end(() => resolve()))
  return result
}
