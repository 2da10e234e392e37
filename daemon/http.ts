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
// Over HTTPS when http.tls names a certificate and its key (node:https), else HTTP.
//
// Only its operator reaches it: a page on another site that a browser loads can still
// send requests here (DNS rebinding points the page's own name at 127.0.0.1), so a
// request whose Host is not a loopback name, http.host or one of http.allowedHosts
// is a 421 before any handler runs, whatever its path, and one whose Origin is such a
// foreign site is a 403. Every answer carries SECURITY_HEADERS (no framing, no
// sniffing, no referrer, scripts only from here), and the JSON API's no-store.
// Nothing here touches the hot path: every answer is read from state the pipeline
// keeps anyway.
//
// Nothing a client sends can end the daemon: an exception while answering is a 500
// with a short JSON message, counted (finnhubd_http_errors_total) and logged at most
// every few seconds with its path (never its query, which may hold the console's
// token); a request the server will not serve (a bad target or Host, a body on a GET,
// another method, a parser error, headers too large or too slow) is a 4xx, counted by
// reason (finnhubd_http_requests_rejected_total; a foreign Host is `host`, a foreign
// Origin `origin`, and a console bound refusing with a 503 `busy`). HTTP_LIMITS end slow clients: the
// headers within headersTimeoutMs, the whole request within requestTimeoutMs, an idle
// keep-alive after keepAliveTimeoutMs; at most 16 KiB of request line and headers.

import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Registry } from 'prom-client'
import { isLoopbackHost } from './config/schema.js'
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
  /** Host names served besides loopback names and `host` (http.allowedHosts; none when absent). */
  allowedHosts?: readonly string[]
  /** Serve HTTPS with this certificate and key, PEM files (http.tls); HTTP when absent or null. */
  tls?: { certificateFile: string | null, keyFile: string | null } | null
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
export const REJECT_REASONS = ['bad_request', 'unauthorized', 'not_found', 'method_not_allowed', 'headers_too_large', 'timeout', 'busy', 'host', 'origin'] as const
type RejectReason = typeof REJECT_REASONS[number]

/**
 * On every answer. The console's page loads its script, style sheet and charting
 * library from /static; the library adds one <style> element of its own (its
 * attribution logo), allowed by its hash (test/http-rebinding.test.ts checks it
 * against the installed library), and the page's icon is an empty data: URL.
 */
export const CONSOLE_STYLE_HASH = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': `default-src 'self'; style-src 'self' ${CONSOLE_STYLE_HASH}; img-src 'self' data:; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
})
/** The same, for the answers written straight to a socket (clientError, CONNECT). */
const RAW_SECURITY_HEADERS = Object.entries(SECURITY_HEADERS).map(([k, v]) => `${k}: ${v}\r\n`).join('')

/** The paths served here besides the console's (which has CONSOLE_PATHS and API_ENDPOINTS). */
export const ROUTES: readonly string[] = ['/healthz', '/readyz', '/metrics', '/latency']

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
  registerHttpMetrics(opts.registry, () => ({ ...rejected, busy: opts.console?.refused ?? 0 }), () => ({ ...errors }), opts.console ?? null)
  const serves = hostCheck(opts.host, opts.allowedHosts ?? [])
  const tls = await tlsFiles(opts.tls ?? null)

  const serverOptions: ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckMs,
    // Checked in route(), to answer and count it like any other bad request.
    requireHostHeader: false
  }
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const routeName = routeOf(req.url)
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
    if (routeName.startsWith('/api')) res.setHeader('cache-control', 'no-store')
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
  }
  let server: Server
  try {
    // A TLS handshake is held to the same time as the headers (a slow handshake is a slowloris too).
    server = tls === null ? createServer(serverOptions, handler) : createHttpsServer({ ...serverOptions, ...tls, handshakeTimeout: limits.headersTimeoutMs }, handler)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_HTTP', `cannot serve HTTPS with http.tls.certificateFile and keyFile (${(err as Error).message}): are they a PEM certificate and its private key?`, { cause: err })
  }
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
    if (socket.writable && inFlight?.headersSent !== true) socket.write(`HTTP/1.1 ${status} ${text}\r\n${RAW_SECURITY_HEADERS}Connection: close\r\nContent-Length: 0\r\n\r\n`)
    socket.destroy()
  })
  // CONNECT is a proxy's method: without a listener Node drops the socket without an answer.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    rejected.method_not_allowed++
    // Handed over without the server's listeners: an error here would be thrown.
    socket.on('error', () => {})
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n${RAW_SECURITY_HEADERS}Connection: close\r\nContent-Length: 0\r\n\r\n`)
  })

  async function route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Before anything else, whatever the method and path: nothing is served to a foreign Host or Origin.
    if (req.headers.host === undefined && req.httpVersion !== '1.0') throw new ApiError(400, 'an HTTP/1.1 request needs a Host header')
    if (!validHost(req.headers.host)) throw new ApiError(400, 'the Host header is neither a host name nor an address (with an optional :port)')
    if (req.headers.host !== undefined && !serves(hostName(req.headers.host))) {
      send(res, 421, 'text/plain; charset=utf-8',
        'finnhubd does not answer to the host name in this request\'s Host header (a page on another site can point its own name at this machine). ' +
        'If it is the name you reach finnhubd by, add it to http.allowedHosts.\n')
      return
    }
    if (!originAllowed(req.headers.origin, serves)) {
      send(res, 403, 'text/plain; charset=utf-8',
        'finnhubd does not answer requests a page of another site sends (its Origin header names a host that is not served here). ' +
        'If that page is yours, add its host name to http.allowedHosts.\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      send(res, 405, 'text/plain', 'only GET and HEAD\n')
      return
    }
    const url = requestUrl(req.url)
    const path = url.pathname
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
  const url = `${tls === null ? 'http' : 'https'}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`
  opts.log.info(tls === null ? 'serving HTTP' : 'serving HTTPS', { url, endpoints: ['/healthz', '/readyz', '/metrics', '/latency', ...(opts.console != null ? ['/ (console)', '/api'] : [])] })
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
    'HTTP requests refused, by reason: bad_request, unauthorized, not_found, method_not_allowed, headers_too_large, timeout, ' +
    'busy (a console bound: the topic view, Cassandra reads, event streams), host (a Host not served: DNS rebinding), origin (a page of another site)', 'reason', rejected)
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
    case 421: return 'host'
    case 403: return 'origin'
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

/**
 * Whether a host name (as hostName() gives it) is served: a loopback name, `host`
 * (http.host) or one of `allowed` (http.allowedHosts).
 */
export function hostCheck (host: string, allowed: readonly string[]): (name: string) => boolean {
  const names = new Set([host.includes(':') && !host.startsWith('[') ? `[${host}]` : host, ...allowed].map(hostName))
  return name => isLoopbackHost(name) || names.has(name)
}

/** A Host header's name: without its port, an IPv6 address in brackets, lower case, without a trailing dot. */
export function hostName (host: string): string {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '')
  return name.toLowerCase().replace(/\.$/, '')
}

/** No Origin (not sent by a browser's page of another site), or one whose host is served here. */
function originAllowed (origin: string | undefined, serves: (name: string) => boolean): boolean {
  if (origin === undefined) return true
  try {
    const url = new URL(origin)
    return (url.protocol === 'http:' || url.protocol === 'https:') && serves(hostName(url.host))
  } catch {
    // "null" (a sandboxed frame, a file), or no URL at all.
    return false
  }
}

/** The certificate and key http.tls names, read once at start; null for plain HTTP. */
async function tlsFiles (tls: HttpOptions['tls'] | null): Promise<{ cert: Buffer, key: Buffer } | null> {
  if (tls === null || tls === undefined || tls.certificateFile === null || tls.keyFile === null) return null
  const read = async (file: string, setting: string): Promise<Buffer> => {
    try {
      return await readFile(file)
    } catch (err) {
      throw new FinnhubdError('FINNHUBD_ERR_HTTP', `cannot read ${setting} ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): check the path and that finnhubd may read it`, { cause: err })
    }
  }
  return { cert: await read(tls.certificateFile, 'http.tls.certificateFile'), key: await read(tls.keyFile, 'http.tls.keyFile') }
}

function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}
