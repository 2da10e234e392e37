// The web console (the seed's Kafka UI, Cassandra Web and Grafana views, built in),
// served by the daemon's HTTP server beside /metrics. Read-only:
//   GET /                 the page (three views: Pipeline, Topic, Trades and candles)
//   GET /static/…         its script, style sheet and the charting library, built by
//                         `npm run build` into dist/console (no CDN: nothing leaves
//                         the machine)
//   GET /api              the endpoints below, described
//   GET /api/pipeline     one snapshot of the counters the metrics export
//   GET /api/stream       the same snapshot once a second (Server-Sent Events); one
//                         timer builds it for every open page, and only while one is open;
//                         at most http.console.maxEventStreams pages at once (then a 503)
//   GET /api/symbols      the symbols subscribed now
//   GET /api/topic        the latest records of the trades or the dead-letter topic, decoded;
//                         one read shared by the requests for the same view (SharedReads),
//                         and a 503 with Retry-After past a few distinct reads under way;
//                         at most http.console.topicReadMaxBytes of records an answer
//                         (daemon/console/topic-budget.ts), `truncated` when it left some out
//   GET /api/trades       a symbol's latest stored trades (Cassandra)
//   GET /api/candles      a symbol's candles at 1m, 5m, 15m, 1h or 1d (Cassandra)
//   GET /api/gaps         the ledger of gaps of a range, of a symbol when given (Cassandra)
// Reads of Cassandra go through one ReadGate (http.console.maxConcurrentReads at once,
// maxQueuedReads waiting, a 503 with Retry-After beyond).
// With http.console.token set (required off loopback), every request must carry it:
// `Authorization: Bearer …`, or the `finnhubd_console` cookie that opening
// /?token=… once sets; anything else gets 401. A request's own fault is a 4xx with a
// JSON `error`; anything unexpected is thrown to daemon/http.ts, which answers 500.

import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { join } from 'node:path'
import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { storedCandles, storedTrades } from '../cassandra/query.js'
import { gapView, storedGaps } from '../cassandra/gaps.js'
import type { ConsumerFactory } from '../kafka/clients.js'
import type { Readiness } from '../readiness.js'
import { TopicReader, tradeDecoderFor, type ShownRecord } from '../kafka/topic-reader.js'
import type { Logger } from '../log.js'
import type { IngestCounters } from '../metrics/ingest.js'
import { STAGES, type StageLatency } from '../metrics/latency.js'
import type { ProcessCounters } from '../metrics/process.js'
import { PROJECT_ROOT } from '../paths.js'
import { ApiError, apiRequest, type ApiRequest } from './params.js'
import { ClientGone, ReadGate } from './read-gate.js'
import { SharedReads, type SharedReadStats } from './shared-read.js'
import { takeSnapshot, type PipelineSnapshot } from './snapshot.js'
import { fit } from './topic-budget.js'

/** Where `npm run build` puts the page's files (see daemon/console/build.ts). */
export const CONSOLE_DIR = join(PROJECT_ROOT, 'dist', 'console')

const STATIC: Readonly<Record<string, { file: string, type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/static/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/static/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/static/lightweight-charts.js': { file: 'lightweight-charts.js', type: 'text/javascript; charset=utf-8' }
}

/** The page and its files (the JSON API's paths are API_ENDPOINTS). */
export const CONSOLE_PATHS: readonly string[] = [...Object.keys(STATIC), '/index.html']

const COOKIE = 'finnhubd_console'
const STREAM_EVERY_MS = 1_000
/** A page that reads this far behind is dropped rather than buffered without bound. */
const STREAM_MAX_BUFFERED_BYTES = 1_000_000
/** A Topic view read answers every request for the same view for this long after it finished. */
export const TOPIC_VIEW_TTL_MS = 1_000
/**
 * Distinct Topic view reads under way at most. The reader has one consumer, so they
 * run one after another (about a second each): the last of them waits this many
 * reads; a request beyond is refused with Retry-After rather than queued.
 */
export const TOPIC_VIEW_MAX_PENDING = 3

export const API_ENDPOINTS: Readonly<Record<string, string>> = {
  '/api/pipeline': 'one snapshot: totals, rates per second, per-stage p50/p99 (ms), lag, producer queue, errors and drops by reason, reconnects, connections',
  '/api/stream': 'the pipeline snapshot about once a second, as Server-Sent Events (event: pipeline)',
  '/api/symbols': 'the symbols subscribed now',
  '/api/topic?topic=trades|dlq&limit=1..200': 'the latest records of the trades or dead-letter topic, decoded, newest first: partition, offset, key, timestamp, trade or why it does not decode, headers; truncated: true when http.console.topicReadMaxBytes left some out',
  '/api/trades?symbol=S&limit=1..1000[&minutes=N | &from=T&to=T]': 'a symbol\'s latest stored trades, newest first (default: the last 60 minutes)',
  '/api/candles?symbol=S[&interval=1m|5m|15m|1h|1d][&minutes=N | &from=T&to=T]': 'a symbol\'s candles at the interval (default 1m), oldest first (default: the last 120 of them; at most 2,880: 2 days of 1m, 120 days of 1h)',
  '/api/gaps?[symbol=S&][minutes=N | from=T&to=T]': 'the ledger of gaps overlapping the range (of a symbol when given), oldest first: reason, start and end (trade times; end null while open), symbols, trades dropped (null: unknown)'
}

export interface ConsoleDeps {
  /** The configuration in force (it changes with reloads). */
  config: () => Config
  token: string | null
  startedAt: number
  roles: readonly string[]
  ingest: { counters: IngestCounters, symbols: () => readonly string[] } | null
  process: { counters: ProcessCounters, cassandra: cassandra.Client } | null
  latency: StageLatency
  readiness: () => Readiness
  log: Logger
  now?: () => number
  /** Overrides TOPIC_VIEW_TTL_MS and TOPIC_VIEW_MAX_PENDING (tests). */
  topicView?: { ttlMs?: number, maxPending?: number }
  /** Builds the topic reader's Kafka client (the unit tests' fake); the real consumer when absent. */
  topicClient?: ConsumerFactory
}

interface TopicView { topic: string, kind: 'trades' | 'dlq', records: ShownRecord[], truncated: boolean }

export class WebConsole {
  readonly #deps: ConsoleDeps
  readonly #now: () => number
  readonly #tokenHash: Buffer | null
  readonly #files = new Map<string, Buffer>()
  readonly #streams = new Set<ServerResponse>()
  #timer: NodeJS.Timeout | null = null
  #last: PipelineSnapshot | null = null
  #reader: Promise<TopicReader> | null = null
  readonly #topicViews: SharedReads<TopicView>
  readonly #cassandraReads: ReadGate
  #streamsRefused = 0
  #closed = false

  constructor (deps: ConsoleDeps) {
    this.#deps = deps
    this.#now = deps.now ?? Date.now
    this.#tokenHash = deps.token === null ? null : sha256(deps.token)
    this.#topicViews = new SharedReads<TopicView>({
      what: 'the topic view',
      ttlMs: deps.topicView?.ttlMs ?? TOPIC_VIEW_TTL_MS,
      maxPending: deps.topicView?.maxPending ?? TOPIC_VIEW_MAX_PENDING,
      now: this.#now
    })
    const bounds = deps.config().http.console
    this.#cassandraReads = new ReadGate({
      maxConcurrent: bounds.maxConcurrentReads,
      maxQueued: bounds.maxQueuedReads,
      what: 'Cassandra reads',
      setting: 'http.console.maxConcurrentReads, maxQueuedReads'
    })
  }

  /** The paths the console answers. */
  handles (path: string): boolean {
    return STATIC[path] !== undefined || path === '/index.html' || path === '/api' || path.startsWith('/api/')
  }

  /** Pages open on /api/stream. */
  get streams (): number { return this.#streams.size }

  /** The Topic view's reads: started, joined, reused, refused (exported by daemon/http.ts). */
  get topicReads (): Readonly<SharedReadStats> { return this.#topicViews.stats }

  /** Requests a console bound refused with a 503 (Topic view reads, Cassandra reads, event streams). */
  get refused (): number { return this.#topicViews.stats.refused + this.#cassandraReads.refused + this.#streamsRefused }

  async handle (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname === '/index.html' ? '/' : url.pathname
    if (!this.#authorized(req, url)) {
      sendJson(res, 401, { error: 'this console needs its access token (http.console.token): send Authorization: Bearer <token>, or open /?token=<token> once in the browser' },
        { 'www-authenticate': 'Bearer realm="finnhubd console"' })
      return
    }
    try {
      if (path === '/' && url.searchParams.getAll('token').length > 1) throw new ApiError(400, 'token is given more than once')
      if (path === '/' && url.searchParams.has('token')) {
        // Trade the token in the address for a cookie, and take it out of the address bar.
        const rest = new URLSearchParams(url.searchParams)
        rest.delete('token')
        res.writeHead(303, {
          location: rest.size > 0 ? `/?${rest.toString()}` : '/',
          'set-cookie': `${COOKIE}=${encodeURIComponent(url.searchParams.get('token') ?? '')}; HttpOnly; SameSite=Strict; Path=/${this.#overTls(req) ? '; Secure' : ''}`,
          'cache-control': 'no-store'
        }).end()
        return
      }
      const asset = STATIC[path]
      if (asset !== undefined) {
        // The page reads its own parameters (?symbol= picks the Trades view's symbol).
        await this.#sendFile(res, asset.file, asset.type)
        return
      }
      // Aborted when the client goes away before its answer: a read still queued is dropped.
      const gone = new AbortController()
      const onClose = (): void => { if (!res.writableFinished) gone.abort() }
      res.once('close', onClose)
      try {
        await this.#api(res, apiRequest(path, url.searchParams, this.#now()), gone.signal)
      } finally {
        res.removeListener('close', onClose)
      }
    } catch (err) {
      if (err instanceof ClientGone) return
      // Headers already sent (a stream) leave nothing to answer with: daemon/http.ts ends the connection.
      if (err instanceof ApiError && !res.headersSent) sendJson(res, err.status, { error: err.message }, err.headers)
      else throw err
    }
  }

  async #api (res: ServerResponse, req: ApiRequest, signal: AbortSignal): Promise<void> {
    const config = this.#deps.config()
    switch (req.endpoint) {
      case '/api':
        sendJson(res, 200, { endpoints: API_ENDPOINTS })
        return
      case '/api/pipeline':
        // While pages stream, the timer owns the rates' reference point: a poll here must not shorten their interval.
        sendJson(res, 200, this.#snapshot(this.#timer === null))
        return
      case '/api/stream':
        this.#openStream(res)
        return
      case '/api/symbols': {
        const symbols = this.#deps.ingest?.symbols() ?? config.finnhub.symbols
        sendJson(res, 200, { symbols: [...symbols].sort() })
        return
      }
      case '/api/topic': {
        const topic = req.topic === 'dlq' ? config.kafka.deadLetterTopic : config.kafka.topic
        const limit = req.limit
        const maxBytes = config.http.console.topicReadMaxBytes
        const { value, readAt } = await this.#topicViews.get(`${topic}\n${limit}`, async () => {
          const reader = await this.#topicReader()
          const read = await answered('Kafka', () => reader.latestWithin(topic, limit, maxBytes))
          const shown = fit(read.records, maxBytes)
          return { topic, kind: req.topic, records: shown.records, truncated: read.truncated || shown.truncated }
        })
        sendJson(res, 200, { ...value, readAt: iso(readAt) })
        return
      }
      case '/api/trades': {
        const { symbol, limit, from, to } = req
        const client = this.#cassandra()
        const trades = await this.#cassandraReads.run(() => answered('Cassandra', () => storedTrades(client, config.cassandra, symbol, from, limit, to)), signal)
        sendJson(res, 200, { symbol, from: iso(from), to: iso(to), trades })
        return
      }
      case '/api/candles': {
        const { symbol, interval, from, to } = req
        const client = this.#cassandra()
        const candles = await this.#cassandraReads.run(() => answered('Cassandra', () => storedCandles(client, config.cassandra, symbol, from, 3000, to, interval)), signal)
        sendJson(res, 200, { symbol, interval, from: iso(from), to: iso(to), candles: candles.reverse() })
        return
      }
      case '/api/gaps': {
        const { symbol, from, to } = req
        const client = this.#cassandra()
        const gaps = await this.#cassandraReads.run(() => answered('Cassandra', () => storedGaps(client, config.cassandra, from, to, symbol, 1000)), signal)
        // A redundancy group's member gaps that another member covered are no hole (docs/operations.md "Redundant ingest").
        const view = gapView(gaps, config.redundancy, Date.now())
        sendJson(res, 200, { symbol, from: iso(from), to: iso(to), gaps: view.gaps, holes: view.holes })
      }
    }
  }

  /** Ends every stream and closes the topic reader (the daemon is stopping). */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    for (const res of this.#streams) res.end()
    this.#streams.clear()
    const reader = await this.#reader?.catch(() => null)
    await reader?.close()
  }

  #snapshot (keep = true): PipelineSnapshot {
    const d = this.#deps
    const snap = takeSnapshot({
      startedAt: d.startedAt,
      roles: d.roles,
      ingest: d.ingest?.counters ?? null,
      process: d.process?.counters ?? null,
      quantiles: stage => d.latency.quantilesMs(stage, [0.5, 0.99]),
      stages: STAGES,
      readiness: d.readiness
    }, this.#now(), this.#last)
    if (keep) this.#last = snap
    return snap
  }

  #openStream (res: ServerResponse): void {
    if (this.#closed) throw new ApiError(503, 'the daemon is stopping')
    const headers = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' }
    // A HEAD has no body to stream into: it would hold a connection open that never gets an event.
    if (res.req.method === 'HEAD') {
      res.writeHead(200, headers).end()
      return
    }
    const max = this.#deps.config().http.console.maxEventStreams
    if (this.#streams.size >= max) {
      this.#streamsRefused++
      throw new ApiError(503, `${this.#streams.size} pages already follow the pipeline stream, the most at once (http.console.maxEventStreams); close one, or retry in a few seconds`, { 'retry-after': String(STREAM_EVERY_MS * 3 / 1000) })
    }
    res.writeHead(200, { ...headers, connection: 'keep-alive' })
    res.write(`retry: ${STREAM_EVERY_MS * 3}\n\n`)
    this.#streams.add(res)
    const drop = (): void => {
      this.#streams.delete(res)
      if (this.#streams.size === 0 && this.#timer !== null) {
        clearInterval(this.#timer)
        this.#timer = null
      }
    }
    res.on('close', drop)
    res.on('error', drop)
    writeEvent(res, this.#last ?? this.#snapshot())
    this.#timer ??= setInterval(() => {
      // A timer's exception would be uncaught and end the daemon: a failed snapshot
      // skips one event (the pages keep the last one) and is logged.
      let snap: PipelineSnapshot
      try {
        snap = this.#snapshot()
      } catch (err) {
        this.#deps.log.limited('error', 'console-snapshot', 'the console\'s pipeline snapshot failed; its pages miss this event', { err })
        return
      }
      for (const s of this.#streams) {
        if (s.writableLength > STREAM_MAX_BUFFERED_BYTES) {
          this.#deps.log.limited('warn', 'console-slow-page', 'a console page reads its stream too slowly; it is disconnected (it reconnects by itself)')
          s.destroy()
          continue
        }
        writeEvent(s, snap)
      }
    }, STREAM_EVERY_MS)
    this.#timer.unref()
  }

  #cassandra (): cassandra.Client {
    const p = this.#deps.process
    if (p === null) {
      throw new ApiError(503, `trades and candles are read from Cassandra, which this daemon does not use (its roles: ${this.#deps.roles.join(', ')}); open the console of a daemon with the process role`)
    }
    return p.cassandra
  }

  async #topicReader (): Promise<TopicReader> {
    this.#reader ??= (async () => {
      const config = this.#deps.config()
      return new TopicReader({ kafka: config.kafka, decoder: await tradeDecoderFor(config), purpose: 'console', ...(this.#deps.topicClient !== undefined ? { client: this.#deps.topicClient } : {}) })
    })()
    try {
      return await this.#reader
    } catch (err) {
      this.#reader = null
      throw new ApiError(503, `cannot read the topic: ${(err as Error).message}`)
    }
  }

  /** The browser reached this page over TLS: natively, or through the TLS proxy http.behindTlsProxy says is in front. */
  #overTls (req: IncomingMessage): boolean {
    return (req.socket as TLSSocket).encrypted === true || this.#deps.config().http.behindTlsProxy
  }

  #authorized (req: IncomingMessage, url: URL): boolean {
    if (this.#tokenHash === null) return true
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const cookie = (req.headers.cookie ?? '').split(';').map(c => c.trim().split('=')).find(([k]) => k === COOKIE)?.[1]
    const candidates = [bearer, cookie === undefined ? undefined : safeDecode(cookie), url.searchParams.get('token') ?? undefined]
    return candidates.some(c => c !== undefined && timingSafeEqual(sha256(c), this.#tokenHash as Buffer))
  }

  async #sendFile (res: ServerResponse, file: string, type: string): Promise<void> {
    let body = this.#files.get(file)
    if (body === undefined) {
      try {
        body = await readFile(join(CONSOLE_DIR, file))
      } catch {
        throw new ApiError(500, `the console's ${file} is missing from ${CONSOLE_DIR}: run \`npm run build\``)
      }
      this.#files.set(file, body)
    }
    // daemon/http.ts adds its security headers (nosniff, the CSP) to every answer.
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' })
    res.end(res.req.method === 'HEAD' ? undefined : body)
  }
}

/** A dependency's failure as a 503 that says which one and why (the pipeline keeps running). */
async function answered<T> (what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    throw new ApiError(503, `${what} did not answer: ${(err as Error).message.split('\n')[0] ?? ''}; the pipeline's own connections show on /api/pipeline`)
  }
}

function writeEvent (res: ServerResponse, snap: PipelineSnapshot): void {
  res.write(`event: pipeline\ndata: ${JSON.stringify(snap)}\n\n`)
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers })
  res.end(res.req.method === 'HEAD' ? undefined : JSON.stringify(body) + '\n')
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest()
const iso = (ms: number): string => new Date(ms).toISOString()

function safeDecode (text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
