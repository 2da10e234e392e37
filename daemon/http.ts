// The daemon's HTTP endpoint, on loopback by default (http.host, http.port):
//   GET /healthz  200 while the event loop answers (a blocked loop answers nothing),
//                 with the loop's delay so far;
//   GET /readyz   200 when every dependency of the running roles is connected, else
//                 503; the body names each check and its state;
//   GET /metrics  the prom-client registry, Prometheus text format;
//   GET /latency  every stage's HDR latency histogram since the start, encoded, with
//                 its count and its percentiles in ms: subtract two snapshots to get
//                 exact percentiles over the interval between them (npm run bench
//                 does; see tools/bench/README.md).
//   GET /, /api/… the web console and its JSON API (daemon/console/console.ts), when
//                 http.console.enabled.
// Nothing here touches the hot path: every answer is read from state the pipeline
// keeps anyway.
//
// Nothing a client sends can end the daemon: an exception while answering is a 500
// with a short JSON message, counted (finnhubd_http_errors_total) and logged at most
// every few seconds with its path (never its query, which may hold the console's
// token); a request the server will not serve (a bad target or Host, a body on a GET,
// another method, a parser error, headers too large or too slow) is a 4xx, counted by
// reason (finnhubd_http_requests_rejected_total). HTTP_LIMITS end slow clients: the
// headers within headersTimeoutMs, the whole request within requestTimeoutMs, an idle
// keep-alive after keepAliveTimeoutMs; at most 16 KiB of request line and headers.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Registry } from 'prom-client'
import { API_ENDPOINTS, type WebConsole } from './console/console.js'
import { ApiError, requestUrl } from './console/params.js'
import { FinnhubdError } from './core/errors.js'
import type { Logger } from './log.js'
import { counterFrom, labelledCounterFrom } from './metrics/collectors.js'
import { latencyBetween, type StageLatency } from './metrics/latency.js'

export type { Check, Readiness } from './readiness.js'
import type { Readiness } from './readiness.js'

export interface HttpOptions {
  host: string
  port: number
  registry: Registry
  latency: StageLatency
  readiness: () => Readiness
  log: Logger
  console?: WebConsole | null
  /** Overrides HTTP_LIMITS (tests). */
  limits?: Partial<HttpLimits>
}

export interface HttpLimits {
  /** A client must send its request line and headers within this (slowloris). */
  headersTimeoutMs: number
  /** … and its whole request within this; at least headersTimeoutMs. An answer (a stream) may last longer. */
  requestTimeoutMs: number
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number
  /** How often Node checks the two request timeouts: a slow client is ended up to this much later. */
  timeoutCheckMs: number
  /** Request line and headers at most (larger: 431). */
  maxHeaderBytes: number
}

export const HTTP_LIMITS: Readonly<HttpLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  timeoutCheckMs: 1_000,
  maxHeaderBytes: 16_384
}

/** Why a request was refused: the `reason` of finnhubd_http_requests_rejected_total, a fixed set. */
export const REJECT_REASONS = ['bad_request', 'unauthorized', 'not_found', 'method_not_allowed', 'headers_too_large', 'timeout', 'busy'] as const
type RejectReason = typeof REJECT_REASONS[number]

const ROUTES = ['/healthz', '/readyz', '/metrics', '/latency']

export interface DaemonHttp {
  url: string
  close: () => Promise<void>
}

export async function startHttp (opts: HttpOptions): Promise<DaemonHttp> {
  const limits: HttpLimits = { ...HTTP_LIMITS, ...opts.limits }
  const loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 })
  loopDelay.enable()
  const started = Date.now()
  const rejected = Object.fromEntries(REJECT_REASONS.map(r => [r, 0])) as Record<RejectReason, number>
  const errors: Record<string, number> = {}
  const failed = (routeName: string): void => { errors[routeName] = (errors[routeName] ?? 0) + 1 }
  registerHttpMetrics(opts.registry, () => ({ ...rejected, busy: opts.console?.topicReads.refused ?? 0 }), () => ({ ...errors }), opts.console ?? null)

  const server: Server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckMs,
    // Checked in route(), to answer and count it like any other bad request.
    requireHostHeader: false
  }, (req, res) => {
    const routeName = routeOf(req.url)
    res.on('finish', () => {
      const reason = rejectionOf(res.statusCode)
      if (reason !== null) rejected[reason]++
      if (res.statusCode >= 500 && res.statusCode !== 503) failed(routeName)
    })
    // Without listeners these would be thrown: a write after the end, a client gone mid-request.
    res.on('error', err => { opts.log.limited('warn', 'http-response', 'an HTTP response failed', { err, path: routeName }) })
    req.on('error', () => {})
    route(req, res).catch((err: unknown) => {
      try {
        if (err instanceof ApiError && err.status < 500) {
          if (!res.headersSent) sendJson(res, err.status, { error: err.message }, err.headers)
          else res.destroy()
          return
        }
        opts.log.limited('error', 'http-handler', 'an HTTP request failed', { err, method: req.method, path: safePath(req.url) })
        if (!res.headersSent) {
          sendJson(res, 500, { error: `finnhubd failed to answer ${routeName}, and logged why ("an HTTP request failed"): try again, and report it if it persists` })
        } else {
          // Half an answer must not look whole: the client sees the connection end.
          failed(routeName)
          res.destroy()
        }
      } catch (again) {
        opts.log.limited('error', 'http-handler-answer', 'an HTTP error could not be answered', { err: again })
        res.destroy()
      }
    })
  })
  // A parser error, headers too large or too slow: Node's own answer, counted. (A
  // listener replaces Node's: it must answer and close the socket itself.)
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      socket.destroy()
      return
    }
    const [status, text, reason]: [number, string, RejectReason] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'headers_too_large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'timeout'] : [400, 'Bad Request', 'bad_request']
    rejected[reason]++
    // Only when nothing of an answer went out on this socket yet (as Node does).
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    if (socket.writable && inFlight?.headersSent !== true) socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    socket.destroy()
  })
  // CONNECT is a proxy's method: without a listener Node drops the socket without an answer.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    rejected.method_not_allowed++
    // Handed over without the server's listeners: an error here would be thrown.
    socket.on('error', () => {})
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  })

  async function route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      send(res, 405, 'text/plain', 'only GET and HEAD\n')
      return
    }
    const url = requestUrl(req.url)
    const path = url.pathname
    if (req.headers.host === undefined && req.httpVersion !== '1.0') throw new ApiError(400, 'an HTTP/1.1 request needs a Host header')
    if (!validHost(req.headers.host)) throw new ApiError(400, 'the Host header is neither a host name nor an address (with an optional :port)')
    if (hasBody(req)) {
      // Left unread: the connection closes after the answer rather than drain it.
      res.setHeader('connection', 'close')
      throw new ApiError(400, 'a GET or HEAD request carries no body: send the parameters in the query string')
    }
    if (opts.console?.handles(path) === true) {
      await opts.console.handle(req, res, url)
      return
    }
    switch (path) {
      case '/healthz':
        sendJson(res, 200, {
          status: 'alive',
          uptimeSeconds: Math.round((Date.now() - started) / 1000),
          eventLoopDelayP99Ms: Number((loopDelay.percentile(99) / 1e6).toFixed(3))
        })
        return
      case '/readyz': {
        const r = opts.readiness()
        sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks })
        return
      }
      case '/metrics':
        send(res, 200, opts.registry.contentType, await opts.registry.metrics())
        return
      case '/latency': {
        const stages = opts.latency.snapshot()
        sendJson(res, 200, {
          unit: 'microseconds',
          since: new Date(opts.latency.startedAt).toISOString(),
          stages: Object.fromEntries(Object.entries(stages).map(([stage, snap]) => {
            const { count, ...ms } = latencyBetween(null, snap)
            return [stage, { count, ms: count === 0 ? null : ms, histogram: snap.histogram }]
          }))
        })
        return
      }
      default:
        send(res, 404, 'text/plain', `not found: try /healthz, /readyz, /metrics or /latency${opts.console != null ? ', or the console at /' : ''}\n`)
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new FinnhubdError('FINNHUBD_ERR_HTTP',
        `cannot serve HTTP on ${opts.host}:${opts.port} (${err.code ?? err.message}): ` +
        (err.code === 'EADDRINUSE' ? 'the port is taken; set http.port to a free port (0 picks one)' : 'check http.host and http.port'),
        { cause: err }))
    })
    server.listen(opts.port, opts.host, () => resolve())
  })
  // Once listening, an error (EMFILE: a flood of connections took every file
  // descriptor) must not be thrown: Node goes on accepting by itself.
  server.on('error', err => { opts.log.limited('error', 'http-server', 'the HTTP server failed to accept a connection', { err }) })
  const { port } = server.address() as AddressInfo
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`
  opts.log.info('serving HTTP', { url, endpoints: ['/healthz', '/readyz', '/metrics', '/latency', ...(opts.console != null ? ['/ (console)', '/api'] : [])] })
  return {
    url,
    close: async () => {
      await opts.console?.close()
      loopDelay.disable()
      await new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    }
  }
}

function send (res: ServerResponse, status: number, type: string, body: string, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body) + '\n', headers)
}

/** The HTTP server's own metrics, read at scrape time; a second server on the same registry replaces them. */
export function registerHttpMetrics (registry: Registry, rejected: () => Record<string, number>, errors: () => Record<string, number>, webConsole: WebConsole | null): void {
  for (const name of ['finnhubd_http_requests_rejected_total', 'finnhubd_http_errors_total', 'finnhubd_console_topic_reads_total']) registry.removeSingleMetric(name)
  labelledCounterFrom(registry, 'finnhubd_http_requests_rejected_total',
    'HTTP requests refused, by reason: bad_request, unauthorized, not_found, method_not_allowed, headers_too_large, timeout, busy (the console topic view)', 'reason', rejected)
  labelledCounterFrom(registry, 'finnhubd_http_errors_total', 'HTTP requests that failed unexpectedly (answered 500 or cut off), by route', 'route', errors)
  if (webConsole !== null) {
    counterFrom(registry, 'finnhubd_console_topic_reads_total',
      'Kafka reads of the console topic view (one answers every request for the same view while it runs and for a second after)', () => webConsole.topicReads.reads)
  }
}

function rejectionOf (status: number): RejectReason | null {
  switch (status) {
    case 400: return 'bad_request'
    case 401: return 'unauthorized'
    case 404: return 'not_found'
    case 405: return 'method_not_allowed'
    default: return null
  }
}

/** A bounded label for a request: its route when it is one served here, else "other". */
function routeOf (target: string | undefined): string {
  const path = (target ?? '/').split('?')[0] ?? '/'
  if (ROUTES.includes(path) || path === '/' || path === '/api' || Object.keys(API_ENDPOINTS).some(e => e.split('?')[0] === path)) return path
  return path.startsWith('/static/') ? '/static' : 'other'
}

/** The path for a log line: never the query (the console's ?token=), and bounded. */
function safePath (target: string | undefined): string {
  const path = (target ?? '').split('?')[0] ?? ''
  return path.length > 200 ? `${path.slice(0, 200)}…` : path
}

/**
 * Host is a name or an address with an optional port (RFC 9110 uri-host). Nothing
 * is built from it; anything else is a client's mistake or a probe.
 */
function validHost (host: string | undefined): boolean {
  if (host === undefined) return true
  return host.length <= 255 && /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::\d{1,5})?$/.test(host)
}

function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}
