// `finnhubd simulate`: a WebSocket server that speaks the Finnhub trade protocol on
// loopback, for the demo, the tests and the bench. It checks the token (401 on the
// handshake otherwise), keeps subscriptions per connection, pings, and sends trades
// for the subscribed symbols open loop: a clock tick works out how many trades are
// due since the connection's start and sends them, however fast the client reads.
// A client that falls more than maxBufferedBytes behind is dropped (as a real server
// would), so the simulator's memory stays bounded. Fault switches: stall (silence
// with the socket open; trades due meanwhile are never sent, like a stalled
// upstream), drop connections, error and malformed frames, re-sent trades, and
// 401/429 on the next handshakes. Every trade sent is counted exactly. The same
// HTTP server answers Finnhub's REST API under /api/v1 (rest.ts), for symbol discovery.

import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, WebSocket } from 'ws'
import { TradeGenerator, tradeFrameText, type GeneratedTrade, type GenerationCall, type GeneratorOptions } from './generator.js'
import { REST_BASE_PATH, RestApi, type ListedSymbol, type RestFaultStatus, type RestMarket, type RestOptions, type RestRequest } from './rest.js'

export { DEFAULT_LISTINGS, DEFAULT_RATE_LIMIT } from './rest.js'
export type { ListedSymbol, RestFaultStatus, RestListings, RestMarket, RestOptions, RestRateLimit, RestRequest } from './rest.js'

export interface SimulatorOptions {
  host?: string
  port?: number
  token: string
  /** Trades per second on each connection, scheduled by the clock. */
  ratePerSec: number
  maxTradesPerFrame?: number
  pingIntervalMs?: number
  seed?: number
  duplicateFillRatio?: number
  zeroVolumeRatio?: number
  nullConditionsRatio?: number
  /** Replay a recorded session (JSONL of {at, frame}) instead of generating. */
  replayFile?: string
  replaySpeed?: number
  /** Stop generating after this many trades in total, over all connections. */
  maxTotalTrades?: number
  /** Remember every trade sent, for content checks. */
  keepSent?: boolean
  /**
   * Log each generation call (symbols, count, t) instead of every trade: a few
   * bytes per tick, from which regenerate() rebuilds every frame sent, exactly
   * (the bench's loss/duplicate accounting over millions of trades).
   */
  logGeneration?: boolean
  maxSymbolsPerConnection?: number
  maxBufferedBytes?: number
  tickMs?: number
  /** The REST API: listings (default DEFAULT_LISTINGS) and rate limit (default 30 a minute). */
  rest?: RestOptions
  /**
   * One stream for every connection (redundant ingest): trades are generated once, at
   * ratePerSec over the union of the symbols subscribed anywhere, from the first
   * subscription on, and each frame goes to every open connection subscribed to its
   * symbols, filtered to them (identical frames when they subscribe alike). The record
   * of sent trades and tradesSent count the stream once. Generation only (no replayFile).
   */
  broadcast?: boolean
}

export interface SentTrade {
  s: string
  p: number
  t: number
  v: number
  c: string[] | null
  resent: boolean
  /** Which frame carried it (0-based over all connections): identical trades of one frame are separate fills. */
  frame: number
}

export interface SimulatorStats {
  tradesSent: number
  framesSent: number
  resentTrades: number
  bySymbol: Record<string, number>
  connections: { current: number, total: number }
  unauthorized: number
  rejected429: number
  subscribeCount: number
  unsubscribeCount: number
  errorFramesSent: number
  malformedFramesSent: number
  pingsSent: number
  slowConsumerDrops: number
  restRequests: number
  /** REST 429s: the rate limit's and forced ones. */
  rest429: number
}

interface RecordedFrame { at: number, frame: string }

interface Connection {
  ws: WebSocket
  symbols: Set<string>
  symbolList: string[]
  startedAt: number
  scheduled: number
  replayIndex: number
  recent: GeneratedTrade[]
}

const RECENT_KEPT = 1000

export class FinnhubSimulator {
  readonly #opts: Required<Omit<SimulatorOptions, 'replayFile' | 'maxTotalTrades' | 'rest'>> & Pick<SimulatorOptions, 'replayFile' | 'maxTotalTrades'>
  readonly #rest: RestApi
  readonly #generator: TradeGenerator
  readonly #connections = new Set<Connection>()
  readonly #sent: SentTrade[] = []
  readonly #generation: GenerationCall[] = []
  readonly #replay: RecordedFrame[] | null
  #http: Server | null = null
  #wss: WebSocketServer | null = null
  #tick: NodeJS.Timeout | null = null
  #ping: NodeJS.Timeout | null = null
  #port = 0
  #stalledUntil = 0
  #paused = false
  #rejectNext: Array<401 | 429> = []
  readonly #stats: SimulatorStats = {
    tradesSent: 0,
    framesSent: 0,
    resentTrades: 0,
    bySymbol: {},
    connections: { current: 0, total: 0 },
    unauthorized: 0,
    rejected429: 0,
    subscribeCount: 0,
    unsubscribeCount: 0,
    errorFramesSent: 0,
    malformedFramesSent: 0,
    pingsSent: 0,
    slowConsumerDrops: 0,
    restRequests: 0,
    rest429: 0
  }

  constructor (options: SimulatorOptions) {
    this.#opts = {
      host: '127.0.0.1',
      port: 0,
      maxTradesPerFrame: 20,
      pingIntervalMs: 60_000,
      seed: 1,
      duplicateFillRatio: 0.01,
      zeroVolumeRatio: 0.01,
      nullConditionsRatio: 0.1,
      replaySpeed: 1,
      keepSent: false,
      logGeneration: false,
      maxSymbolsPerConnection: 50,
      maxBufferedBytes: 64 * 1024 * 1024,
      tickMs: 5,
      broadcast: false,
      ...options
    }
    if (this.#opts.broadcast && this.#opts.replayFile !== undefined) throw new TypeError('simulator: broadcast generates one stream; it does not replay a recording (drop replayFile or broadcast)')
    this.#generator = new TradeGenerator(this.generatorOptions())
    this.#replay = options.replayFile === undefined ? null : loadRecording(options.replayFile)
    this.#rest = new RestApi(options.token, options.rest ?? {}, this.#stats)
  }

  get url (): string { return `ws://${this.#opts.host}:${this.#port}` }

  get restUrl (): string { return `http://${this.#opts.host}:${this.#port}${REST_BASE_PATH}` }

  async start (): Promise<void> {
    const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false })
    const http = createServer((req, res) => {
      if (!this.#rest.handle(req, res)) res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n')
    })
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => { this.#handshake(wss, req, socket, head) })
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(this.#opts.port, this.#opts.host, () => resolve())
    })
    const address = http.address()
    this.#port = typeof address === 'object' && address !== null ? address.port : 0
    this.#http = http
    this.#wss = wss
    this.#tick = setInterval(() => { this.#onTick() }, this.#opts.tickMs)
    this.#ping = setInterval(() => { this.#sendPings() }, this.#opts.pingIntervalMs)
  }

  stats (): SimulatorStats {
    return { ...this.#stats, bySymbol: { ...this.#stats.bySymbol }, connections: { ...this.#stats.connections } }
  }

  sent (): readonly SentTrade[] { return this.#sent }

  /** The generation calls so far (with logGeneration), in order: regenerate() replays them. */
  generation (): readonly GenerationCall[] { return this.#generation }

  /** The generator's settings, for regenerate(). */
  generatorOptions (): GeneratorOptions {
    return {
      seed: this.#opts.seed,
      maxTradesPerFrame: this.#opts.maxTradesPerFrame,
      duplicateFillRatio: this.#opts.duplicateFillRatio,
      zeroVolumeRatio: this.#opts.zeroVolumeRatio,
      nullConditionsRatio: this.#opts.nullConditionsRatio
    }
  }

  /** Changes the rate of every connection (and of later ones), open loop from now: no burst, no catch-up. */
  setRate (ratePerSec: number): void {
    if (!(ratePerSec > 0)) throw new RangeError(`rate must be > 0 trades/s (pause() stops sending), got ${ratePerSec}`)
    this.#opts.ratePerSec = ratePerSec
    this.#restartClocks()
  }

  /** The symbols each open connection is subscribed to now, sorted. */
  subscriptions (): string[][] {
    return [...this.#connections].map(c => [...c.symbols].sort())
  }

  stall (ms: number): void { this.#stalledUntil = Date.now() + ms }

  dropConnections (): void {
    for (const conn of this.#connections) conn.ws.terminate()
  }

  sendError (msg: string): void {
    this.#broadcast(JSON.stringify({ type: 'error', msg }))
    this.#stats.errorFramesSent++
  }

  sendMalformed (frames: ReadonlyArray<string | Buffer>): void {
    for (const frame of frames) {
      for (const conn of this.#connections) if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(frame, { binary: typeof frame !== 'string' })
      this.#stats.malformedFramesSent++
    }
  }

  sendRaw (text: string): void { this.#broadcast(text) }

  /** Sends the last `n` trades of each connection again, in a new frame. */
  resendRecent (n: number): void {
    for (const conn of this.#connections) {
      const again = conn.recent.slice(-n)
      if (again.length === 0 || conn.ws.readyState !== WebSocket.OPEN) continue
      conn.ws.send(tradeFrameText(again))
      const frame = this.#stats.framesSent++
      this.#stats.resentTrades += again.length
      if (this.#opts.keepSent) for (const tr of again) this.#sent.push({ s: tr.s, p: tr.p, t: tr.t, v: tr.v, c: tr.c, resent: true, frame })
    }
  }

  rejectNextHandshakes (status: 401 | 429, count: number): void {
    for (let i = 0; i < count; i++) this.#rejectNext.push(status)
  }

  /** The next `count` REST requests get `status` whatever their token; they spend no rate quota. */
  failRest (status: RestFaultStatus, count: number, retryAfterSec = 1): void { this.#rest.failRest(status, count, retryAfterSec) }

  /** Every REST request arriving in the next `ms` gets `status` (a 429 storm, an outage). */
  failRestFor (status: RestFaultStatus, ms: number, retryAfterSec = 1): void { this.#rest.failRestFor(status, ms, retryAfterSec) }

  /** Every REST request so far, in arrival order; paths never carry the token. */
  restRequests (): ReadonlyArray<RestRequest> { return this.#rest.requests() }

  setListing (market: RestMarket, exchange: string, symbols: ReadonlyArray<ListedSymbol>): void { this.#rest.setListing(market, exchange, symbols) }

  /** Sets a symbol's price; 0 makes its quote all zeros, as for a dead symbol. */
  setQuote (symbol: string, price: number): void { this.#rest.setQuote(symbol, price) }

  pause (): void { this.#paused = true }

  /** Whether sending is paused (pause() without a resume since). */
  get paused (): boolean { return this.#paused }

  resume (): void {
    if (!this.#paused) return
    this.#paused = false
    // Open loop restarts from now: no burst for the paused time.
    this.#restartClocks()
  }

  /** Every connection schedules from now on, as if it had just opened. */
  #restartClocks (): void {
    for (const conn of this.#connections) { conn.startedAt = Date.now(); conn.scheduled = 0 }
  }

  async close (): Promise<void> {
    if (this.#tick !== null) clearInterval(this.#tick)
    if (this.#ping !== null) clearInterval(this.#ping)
    this.#tick = null
    this.#ping = null
    for (const conn of this.#connections) conn.ws.terminate()
    this.#wss?.close()
    const http = this.#http
    this.#http = null
    if (http !== null) await new Promise<void>(resolve => { http.close(() => resolve()); http.closeAllConnections() })
  }

  #handshake (wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const reject = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`)
    }
    const forced = this.#rejectNext.shift()
    const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token')
    if (forced === 401 || token !== this.#opts.token) {
      this.#stats.unauthorized++
      reject(401, 'Unauthorized')
      return
    }
    if (forced === 429) {
      this.#stats.rejected429++
      reject(429, 'Too Many Requests')
      return
    }
    wss.handleUpgrade(req, socket, head, ws => { this.#onConnection(ws) })
  }

  #onConnection (ws: WebSocket): void {
    const conn: Connection = { ws, symbols: new Set(), symbolList: [], startedAt: Date.now(), scheduled: 0, replayIndex: 0, recent: [] }
    this.#connections.add(conn)
    this.#stats.connections.current++
    this.#stats.connections.total++
    ws.on('message', (data: Buffer, isBinary: boolean) => { this.#onClientMessage(conn, data, isBinary) })
    ws.on('error', () => {})
    ws.on('close', () => {
      if (this.#connections.delete(conn)) this.#stats.connections.current--
    })
  }

  #onClientMessage (conn: Connection, data: Buffer, isBinary: boolean): void {
    let msg: { type?: unknown, symbol?: unknown }
    try {
      msg = isBinary ? {} : JSON.parse(data.toString('utf8')) as { type?: unknown, symbol?: unknown }
    } catch {
      msg = {}
    }
    const symbol = typeof msg.symbol === 'string' ? msg.symbol : ''
    if ((msg.type === 'subscribe' || msg.type === 'unsubscribe') && symbol === '') {
      conn.ws.send(JSON.stringify({ type: 'error', msg: 'Invalid symbol' }))
    } else if (msg.type === 'subscribe') {
      if (!conn.symbols.has(symbol) && conn.symbols.size >= this.#opts.maxSymbolsPerConnection) {
        conn.ws.send('{"type":"error","msg":"Subscribing to too many symbols"}')
        return
      }
      this.#stats.subscribeCount++
      // A replay starts with the first subscription: earlier frames would all be filtered away.
      if (this.#replay !== null && conn.symbols.size === 0 && conn.replayIndex === 0) conn.startedAt = Date.now()
      conn.symbols.add(symbol)
      conn.symbolList = [...conn.symbols]
    } else if (msg.type === 'unsubscribe') {
      this.#stats.unsubscribeCount++
      conn.symbols.delete(symbol)
      conn.symbolList = [...conn.symbols]
    } else {
      conn.ws.send(JSON.stringify({ type: 'error', msg: 'Unknown message type, expected subscribe or unsubscribe' }))
    }
  }

  #onTick (): void {
    const now = Date.now()
    const stalled = now < this.#stalledUntil
    for (const conn of this.#connections) {
      if (conn.ws.readyState !== WebSocket.OPEN) continue
      if (conn.ws.bufferedAmount > this.#opts.maxBufferedBytes) {
        this.#stats.slowConsumerDrops++
        conn.ws.terminate()
        continue
      }
      if (this.#opts.broadcast) continue
      if (this.#replay !== null) this.#replayTick(conn, now, stalled)
      else this.#generateTick(conn, now, stalled)
    }
    if (this.#opts.broadcast) this.#broadcastTick(now, stalled)
  }

  /** Broadcast mode: the one stream's clock (started at the first subscription anywhere) and the trades it scheduled. */
  readonly #stream = { startedAt: -1, scheduled: 0 }

  #broadcastTick (now: number, stalled: boolean): void {
    const open = [...this.#connections].filter(c => c.ws.readyState === WebSocket.OPEN && c.symbols.size > 0)
    const stream = this.#stream
    if (stream.startedAt < 0) {
      if (open.length === 0) return
      stream.startedAt = now
    }
    const intervalMs = 1000 / this.#opts.ratePerSec
    const due = Math.floor((now - stream.startedAt) / intervalMs) - stream.scheduled
    if (due <= 0) return
    let count = due
    if (this.#opts.maxTotalTrades !== undefined) count = Math.min(count, this.#opts.maxTotalTrades - this.#stats.tradesSent)
    const firstIndex = stream.scheduled
    stream.scheduled += due
    // Nobody subscribed: the market moves on unseen (skipped, as a stall).
    if (stalled || this.#paused || open.length === 0 || count <= 0) return
    const symbols = [...new Set(open.flatMap(c => c.symbolList))].sort()
    const t = Math.round(stream.startedAt + firstIndex * intervalMs)
    if (this.#opts.logGeneration) this.#generation.push({ symbols, count, t })
    for (const frame of this.#generator.frames(symbols, count, t)) {
      for (const conn of open) {
        const mine = frame.every(tr => conn.symbols.has(tr.s)) ? frame : frame.filter(tr => conn.symbols.has(tr.s))
        if (mine.length === 0) continue
        conn.ws.send(tradeFrameText(mine))
        conn.recent.push(...mine)
        if (conn.recent.length > RECENT_KEPT * 2) conn.recent.splice(0, conn.recent.length - RECENT_KEPT)
      }
      this.#record(frame)
    }
  }

  #generateTick (conn: Connection, now: number, stalled: boolean): void {
    const intervalMs = 1000 / this.#opts.ratePerSec
    const due = Math.floor((now - conn.startedAt) / intervalMs) - conn.scheduled
    if (due <= 0) return
    let count = due
    if (this.#opts.maxTotalTrades !== undefined) count = Math.min(count, this.#opts.maxTotalTrades - this.#stats.tradesSent)
    const firstIndex = conn.scheduled
    // Trades due while stalled, paused or unsubscribed are skipped, not saved up.
    conn.scheduled += due
    if (stalled || this.#paused || conn.symbolList.length === 0 || count <= 0) return
    const t = Math.round(conn.startedAt + firstIndex * intervalMs)
    if (this.#opts.logGeneration) this.#generation.push({ symbols: conn.symbolList, count, t })
    for (const frame of this.#generator.frames(conn.symbolList, count, t)) this.#sendTrades(conn, frame)
  }

  #replayTick (conn: Connection, now: number, stalled: boolean): void {
    const replay = this.#replay as RecordedFrame[]
    if (conn.replayIndex === 0 && conn.symbols.size === 0) return // starts with the first subscription
    const elapsed = (now - conn.startedAt) * this.#opts.replaySpeed
    while (conn.replayIndex < replay.length && (replay[conn.replayIndex] as RecordedFrame).at <= elapsed) {
      const { frame } = replay[conn.replayIndex++] as RecordedFrame
      if (stalled || this.#paused) continue
      const trades = replayedTrades(frame, conn.symbols)
      if (trades === null) {
        conn.ws.send(frame)
      } else if (trades.length > 0) {
        this.#sendTrades(conn, trades)
      }
    }
  }

  #sendTrades (conn: Connection, trades: GeneratedTrade[]): void {
    conn.ws.send(tradeFrameText(trades))
    this.#record(trades)
    conn.recent.push(...trades)
    if (conn.recent.length > RECENT_KEPT * 2) conn.recent.splice(0, conn.recent.length - RECENT_KEPT)
  }

  /** Counts (and with keepSent remembers) a frame of the stream. */
  #record (trades: readonly GeneratedTrade[]): void {
    const frame = this.#stats.framesSent++
    this.#stats.tradesSent += trades.length
    const bySymbol = this.#stats.bySymbol
    for (const tr of trades) {
      bySymbol[tr.s] = (bySymbol[tr.s] ?? 0) + 1
      if (this.#opts.keepSent) this.#sent.push({ s: tr.s, p: tr.p, t: tr.t, v: tr.v, c: tr.c, resent: false, frame })
    }
  }

  #sendPings (): void {
    if (Date.now() < this.#stalledUntil) return
    for (const conn of this.#connections) {
      if (conn.ws.readyState !== WebSocket.OPEN) continue
      conn.ws.send('{"type":"ping"}')
      this.#stats.pingsSent++
    }
  }

  #broadcast (text: string): void {
    for (const conn of this.#connections) if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(text)
  }
}

export function loadRecording (file: string): RecordedFrame[] {
  return readFileSync(file, 'utf8').split('\n').filter(line => line.trim() !== '').map((line, i) => {
    const parsed = JSON.parse(line) as Partial<RecordedFrame>
    if (typeof parsed.at !== 'number' || typeof parsed.frame !== 'string') {
      throw new Error(`${file}:${i + 1}: expected {"at": <ms>, "frame": "<text>"}`)
    }
    return { at: parsed.at, frame: parsed.frame }
  })
}

/** The subscribed trades of a recorded trade frame, or null for a frame to pass through as is. */
export function replayedTrades (frame: string, symbols: ReadonlySet<string>): GeneratedTrade[] | null {
  let msg: { type?: unknown, data?: unknown }
  try {
    msg = JSON.parse(frame) as { type?: unknown, data?: unknown }
  } catch {
    return null
  }
  if (msg.type !== 'trade' || !Array.isArray(msg.data)) return null
  const trades: GeneratedTrade[] = []
  for (const raw of msg.data as Array<Record<string, unknown>>) {
    if (raw === null || typeof raw !== 'object' || typeof raw['s'] !== 'string' || !symbols.has(raw['s'])) continue
    const c = raw['c']
    trades.push({
      s: raw['s'],
      p: raw['p'] as number,
      t: raw['t'] as number,
      v: raw['v'] as number,
      c: Array.isArray(c) ? c as string[] : null,
      cForm: Array.isArray(c) ? 'list' : c === null ? 'null' : 'absent'
    })
  }
  return trades
}
