// The daemon's HTTP endpoint, on loopback by default (http.host, http.port):
//   GET /healthz  200 while the event loop answers (a blocked loop answers nothing),
//                 with the loop's delay so far;
//   GET /readyz   200 when every dependency of the running roles is connected, else
//                 503; the body names each check and its state;
//   GET /metrics  the prom-client registry, Prometheus text format;
//   GET /latency  every stage's HDR latency histogram since the start, encoded, with
//                 its count and its percentiles in ms: subtract two snapshots to get
//                 exact percentiles over the interval between them (npm run bench
//                 does; see bench/README.md).
//   GET /, /api/… the web console and its JSON API (daemon/console/console.ts), when
//                 http.console.enabled.
// Nothing here touches the hot path: every answer is read from state the pipeline
// keeps anyway.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Registry } from 'prom-client'
import type { WebConsole } from './console/console.js'
import { FinnhubdError } from './errors.js'
import type { Logger } from './log.js'
import { latencyBetween, type StageLatency } from './metrics/latency.js'

export interface Check { ok: boolean, detail: string }
export interface Readiness { ready: boolean, checks: Record<string, Check> }

export interface HttpOptions {
  host: string
  port: number
  registry: Registry
  latency: StageLatency
  readiness: () => Readiness
  log: Logger
  console?: WebConsole | null
}

export interface DaemonHttp {
  url: string
  close: () => Promise<void>
}

export async function startHttp (opts: HttpOptions): Promise<DaemonHttp> {
  const loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 })
  loopDelay.enable()
  const started = Date.now()
  const server: Server = createServer((req, res) => {
    route(req, res).catch(err => {
      opts.log.limited('error', 'http-handler', 'an HTTP request failed', { err, path: req.url })
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n')
      else res.destroy()
    })
  })
  server.keepAliveTimeout = 5_000

  async function route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      send(res, 405, 'text/plain', 'only GET and HEAD\n')
      return
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

function send (res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body) + '\n')
}
