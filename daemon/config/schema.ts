// The one configuration schema. Every tunable lives here with its default and its
// unit in its name; objects are strict so a typo in a key is an error, not a silently
// ignored setting. Later stages read the frozen result, never process.env.

import { z } from 'zod'
import { SYMBOL_PATTERN } from '../core/validate.js'

export { SYMBOL_PATTERN }

const port = z.number().int().min(1).max(65535)
const positiveInt = z.number().int().positive()
const nonNegativeInt = z.number().int().nonnegative()

const hostPort = z.string().regex(/^[^\s,:]+:\d{1,5}$/, 'expected host:port')

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const

const regexPattern = z.string().min(1).refine(pattern => {
  try {
    // eslint-disable-next-line no-new -- compiling is the check
    new RegExp(pattern)
    return true
  } catch {
    return false
  }
}, 'expected a valid regular expression, e.g. "^BINANCE:.*USDT$"')

export const DISCOVERY_MARKETS = ['crypto', 'forex', 'stock'] as const

// Finnhub's REST API (symbol discovery). One client-side rate limiter serves every
// request; 429s wait for Retry-After, 5xx and network errors back off.
const rest = z.strictObject({
  url: z.string().regex(/^https?:\/\/\S+$/, 'expected an http:// or https:// URL').default('https://finnhub.io/api/v1'),
  // The free tier allows 30 calls a second and 60 a minute; 30 a minute leaves room
  // for anything else using the same key.
  requestsPerWindow: positiveInt.max(100_000).default(30),
  windowMs: z.number().int().min(100).max(3_600_000).default(60_000),
  requestTimeoutMs: positiveInt.max(120_000).default(10_000),
  // Per request, for 5xx answers and network errors (a 429 waits and does not count).
  maxAttempts: positiveInt.max(100).default(5),
  retryInitialDelayMs: positiveInt.default(1_000),
  retryMaxDelayMs: positiveInt.default(60_000)
})

// Symbols found through the REST API, subscribed beside finnhub.symbols.
const discovery = z.strictObject({
  enabled: z.boolean().default(false),
  exchanges: z.array(z.strictObject({
    market: z.enum(DISCOVERY_MARKETS),
    exchange: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/, 'expected an exchange code such as BINANCE, OANDA or US')
  })).min(1).max(20).default([{ market: 'crypto', exchange: 'BINANCE' }]),
  // Regular expressions on the full symbol (e.g. "BINANCE:BTCUSDT"): a symbol is kept
  // when it matches some include (or none is given) and no exclude.
  include: z.array(regexPattern).max(100).default([]),
  exclude: z.array(regexPattern).max(100).default([]),
  // Keep only symbols whose quote shows a current price > 0 (one request each).
  quoteCheck: z.boolean().default(true),
  // Cap on all subscribed symbols (static + discovered): the free tier's 50.
  maxSymbols: positiveInt.max(500).default(50),
  intervalMs: z.number().int().min(1_000).max(7 * 86_400_000).default(3_600_000),
  // After a failed run (the API down), the next try; the last good result stays in use.
  failureRetryMs: z.number().int().min(1_000).max(86_400_000).default(300_000)
})

const finnhub = z.strictObject({
  url: z.string().regex(/^wss?:\/\/\S+$/, 'expected a ws:// or wss:// URL').default('wss://ws.finnhub.io'),
  token: z.string().default(''),
  symbols: z.array(z.string().regex(SYMBOL_PATTERN, 'expected a Finnhub symbol such as AAPL or BINANCE:BTCUSDT'))
    .max(500)
    .default(['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT']),
  staleAfterMs: positiveInt.default(90_000),
  reconnectInitialDelayMs: positiveInt.default(500),
  reconnectMaxDelayMs: positiveInt.default(60_000),
  unauthorizedBackoffMs: positiveInt.default(300_000),
  maxPayloadBytes: positiveInt.default(4 * 1024 * 1024),
  keepZeroVolume: z.boolean().default(true),
  rest: rest.prefault({}),
  discovery: discovery.prefault({})
})

const kafka = z.strictObject({
  bootstrapServers: z.array(hostPort).min(1).default(['127.0.0.1:19092']),
  topic: z.string().min(1).max(249).default('finnhub.trades'),
  deadLetterTopic: z.string().min(1).max(249).default('finnhub.trades.dlq'),
  clientId: z.string().min(1).default('finnhubd'),
  groupId: z.string().min(1).default('finnhubd'),
  // How long the group waits for a member that stopped heartbeating (a crashed or
  // killed daemon) before its partitions move: a restarted daemon waits this long for
  // them. librdkafka's own default is 45 s.
  sessionTimeoutMs: z.number().int().min(3000).max(300_000).default(10_000),
  // Static membership (KIP-345): a daemon restarted with the same id takes its
  // partitions back at once, without waiting for the session timeout. Must be unique
  // per daemon in the group (a second daemon with the same id fences the first).
  groupInstanceId: z.string().min(1).max(249).nullable().default(null),
  schemaRegistryUrl: z.string().regex(/^https?:\/\/\S+$/, 'expected an http(s):// URL').nullable().default(null),
  // lz4 is built into librdkafka, so it needs no system library at install time.
  compression: z.enum(['none', 'gzip', 'snappy', 'lz4']).default('lz4'),
  lingerMs: nonNegativeInt.max(900_000).default(5),
  batchSizeBytes: positiveInt.default(1_000_000),
  maxBufferedMessages: positiveInt.default(200_000),
  maxBufferedKbytes: positiveInt.default(64 * 1024),
  deliveryTimeoutMs: positiveInt.default(300_000),
  // all: a delivery report per record (exact delivered count, frame_to_ack histogram;
  // ~4.5 µs of main-thread time per record); errors: failures only (cheaper, counts
  // from librdkafka's statistics). See daemon/kafka/producer.ts.
  deliveryReports: z.enum(['all', 'errors']).default('all'),
  statsIntervalMs: z.number().int().min(100).max(60_000).default(1_000),
  connectTimeoutMs: positiveInt.default(15_000),
  // Consumer side (process role): low fetch wait and consume timeout keep latency low at low rates.
  fetchWaitMaxMs: nonNegativeInt.max(10_000).default(10),
  consumeTimeoutMs: positiveInt.max(10_000).default(20),
  // librdkafka's prefetch buffer per consumer (queued.max.messages.kbytes; its own
  // default, 64 MiB, is most of the daemon's memory under a backlog).
  fetchQueueMaxKbytes: positiveInt.max(2_097_151).default(16_384),
  commitIntervalMs: positiveInt.max(600_000).default(1_000),
  autoOffsetReset: z.enum(['earliest', 'latest']).default('earliest'),
  // Topics are created at start when missing (an existing topic is left as it is).
  topicPartitions: positiveInt.max(10_000).default(3),
  topicReplicationFactor: positiveInt.max(9).default(1)
})

const cassandra = z.strictObject({
  contactPoints: z.array(z.string().min(1)).min(1).default(['127.0.0.1']),
  port: port.default(19042),
  localDataCenter: z.string().min(1).default('datacenter1'),
  username: z.string().nullable().default(null),
  password: z.string().nullable().default(null),
  keyspace: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,47}$/, 'expected a CQL identifier').default('finnhub'),
  tradesTable: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,47}$/, 'expected a CQL identifier').default('trades'),
  replicationFactor: positiveInt.max(9).default(1),
  requestTimeoutMs: positiveInt.default(12_000),
  maxConcurrentWrites: positiveInt.default(32),
  // Below Cassandra's batch_size_warn_threshold (5 KiB by default).
  batchMaxBytes: positiveInt.max(1_000_000).default(4096),
  retryInitialDelayMs: positiveInt.default(100),
  retryMaxDelayMs: positiveInt.default(5_000),
  // The driver's reconnection to a host it lost: exponential up to this delay. The
  // driver's own ceiling is 10 minutes, so after an outage of a minute the daemon
  // could wait half a minute more before trying again (the fault suite measured 18 s).
  reconnectMaxDelayMs: z.number().int().min(100).max(600_000).default(2_000)
})

const candles = z.strictObject({
  // A minute's candle is written at most this often; batches meanwhile share the write
  // (their offsets commit after it). Fewer Cassandra requests under load.
  flushIntervalMs: nonNegativeInt.max(60_000).default(100),
  idleEvictMs: positiveInt.default(20_000),
  rebuildFetchSize: positiveInt.max(100_000).default(5_000)
})

const shutdown = z.strictObject({
  // The whole stop budget on SIGTERM: flush, drain, commit, close. systemd's
  // TimeoutStopSec (systemd/finnhubd.service) is set above it.
  drainTimeoutMs: positiveInt.max(600_000).default(20_000)
})

// Load shedding at the socket when one daemon runs both roles (core/overload.ts):
// trades are dropped, counted as finnhubd_kafka_dropped_total{reason="overload"}, only
// while the main thread is saturated and the process role is behind. An outage of
// Kafka or Cassandra never sheds (the thread is idle; Kafka buffers).
const overload = z.strictObject({
  shed: z.boolean().default(true),
  backlogSeconds: z.number().min(1).max(3_600).default(5),
  busyUtilization: z.number().min(0.5).max(1).default(0.9),
  maxShare: z.number().min(0).max(1).default(0.9)
})

const workers = z.strictObject({
  poolSize: positiveInt.max(64).nullable().default(null),
  batchSize: positiveInt.max(100_000).default(2_000),
  // Batches in flight (consumed, not yet stored). 8 drained a backlog as fast as 32 did
  // (31.9k vs 31.7k rows/s) with 150 MiB less resident memory.
  maxQueue: positiveInt.default(8)
})

// The web console at / and its JSON API under /api (read-only).
const consoleSettings = z.strictObject({
  enabled: z.boolean().default(true),
  // Required when http.host is not a loopback address; then every console request
  // must carry it (Authorization: Bearer, or ?token= once, which sets a cookie).
  token: z.string().min(16, 'use at least 16 characters').nullable().default(null)
})

const http = z.strictObject({
  // /healthz, /readyz, /metrics. Loopback by default; 0 picks a free port (logged).
  enabled: z.boolean().default(true),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(9464),
  console: consoleSettings.prefault({})
})

/** 127.0.0.0/8, ::1 and localhost: the addresses only this machine reaches. */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
}

export const configSchema = z.strictObject({
  roles: z.array(z.enum(['ingest', 'process'])).min(1).default(['ingest', 'process']),
  schemaPath: z.string().min(1).default('schemas/trade.avsc'),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  // Where the daemon keeps state between runs (the last discovery result); null: .state
  // under the installation. systemd's StateDirectory= sets it (STATE_DIRECTORY).
  stateDir: z.string().min(1).nullable().default(null),
  finnhub: finnhub.prefault({}),
  kafka: kafka.prefault({}),
  cassandra: cassandra.prefault({}),
  workers: workers.prefault({}),
  candles: candles.prefault({}),
  shutdown: shutdown.prefault({}),
  overload: overload.prefault({}),
  http: http.prefault({})
}).superRefine((cfg, ctx) => {
  if (cfg.finnhub.reconnectMaxDelayMs < cfg.finnhub.reconnectInitialDelayMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['finnhub', 'reconnectMaxDelayMs'],
      message: `must be ≥ finnhub.reconnectInitialDelayMs (${cfg.finnhub.reconnectInitialDelayMs})`
    })
  }
  if (cfg.roles.includes('ingest') && cfg.finnhub.symbols.length === 0 && !cfg.finnhub.discovery.enabled) {
    ctx.addIssue({ code: 'custom', path: ['finnhub', 'symbols'], message: 'nothing to subscribe to: list symbols here, or turn on finnhub.discovery.enabled' })
  }
  if (cfg.finnhub.rest.retryMaxDelayMs < cfg.finnhub.rest.retryInitialDelayMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['finnhub', 'rest', 'retryMaxDelayMs'],
      message: `must be ≥ finnhub.rest.retryInitialDelayMs (${cfg.finnhub.rest.retryInitialDelayMs})`
    })
  }
  if (cfg.kafka.topic === cfg.kafka.deadLetterTopic) {
    ctx.addIssue({ code: 'custom', path: ['kafka', 'deadLetterTopic'], message: 'must differ from kafka.topic' })
  }
  if (cfg.http.enabled && cfg.http.console.enabled && cfg.http.console.token === null && !isLoopbackHost(cfg.http.host)) {
    ctx.addIssue({
      code: 'custom',
      path: ['http', 'console', 'token'],
      message: `the web console would be served on ${cfg.http.host}, beyond this machine: set an access token here (or FINNHUBD_CONSOLE_TOKEN), or turn the console off with http.console.enabled: false`
    })
  }
  if ((cfg.cassandra.username === null) !== (cfg.cassandra.password === null)) {
    ctx.addIssue({ code: 'custom', path: ['cassandra', 'password'], message: 'cassandra.username and cassandra.password go together: set both or neither' })
  }
})

export type Config = z.infer<typeof configSchema>
