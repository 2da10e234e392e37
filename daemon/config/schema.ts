// The one configuration schema. Every tunable lives here with its default and its
// unit in its name; objects are strict so a typo in a key is an error, not a silently
// ignored setting. Later stages read the frozen result, never process.env.

import { isIPv4 } from 'node:net'
import { z } from 'zod'
import { SYMBOL_PATTERN } from '../core/validate.js'
import { RESOLUTION_NAMES } from '../core/candle-periods.js'
import { READ_CONSISTENCIES, WRITE_CONSISTENCIES } from '../core/consistency.js'
import { MAX_REDUNDANCY_MEMBERS, REDUNDANCY_NAME_PATTERN } from '../core/redundancy.js'

export { SYMBOL_PATTERN }

const port = z.number().int().min(1).max(65535)
// A path to a file holding one secret (a password, a token, a private key). Read at
// start and on every reload; a file others can read gets a warning (docs/security.md).
const secretFile = z.string().min(1).nullable().default(null)
// A path to a public file (a CA bundle, a certificate).
const publicFile = z.string().min(1).nullable().default(null)
const positiveInt = z.number().int().positive()
const nonNegativeInt = z.number().int().nonnegative()

// Kafka's retention.ms: -1 (forever) or at least a minute; 0 would delete each segment
// as soon as it rolls, which nobody means.
const kafkaRetentionMs = z.number().int().max(Number.MAX_SAFE_INTEGER)
  .refine(ms => ms === -1 || ms >= 60_000, 'expected -1 (keep forever) or a number of milliseconds of at least 60000 (a minute)')
// A table's default_time_to_live in days; 0 keeps rows forever. At most 3650: Cassandra
// 5.0 in its default storage_compatibility_mode (CASSANDRA_4) refuses an expiry past
// 2038-01-19, and longer than a decade is "forever" for a market-data store anyway.
export const MAX_RETENTION_DAYS = 3650
const retentionDays = z.number().int()
  .min(0, 'expected a number of days, or 0 to keep rows forever')
  .max(MAX_RETENTION_DAYS, `expected at most ${MAX_RETENTION_DAYS} days, or 0 to keep rows forever`)

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
  // A file holding the token (its first line); see docs/security.md for every source.
  tokenFile: secretFile,
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

export const KAFKA_SECURITY_PROTOCOLS = ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'] as const
// No OAUTHBEARER: the librdkafka that node-rdkafka builds has no HTTP client (its
// `features` lack "http"/"oidc"), so it cannot fetch tokens itself (docs/security.md).
export const KAFKA_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const

// How every Kafka client of the daemon connects (daemon/kafka/client-config.ts builds
// the one librdkafka configuration all of them start from).
const kafkaSecurity = z.strictObject({
  protocol: z.enum(KAFKA_SECURITY_PROTOCOLS).default('plaintext'),
  sasl: z.strictObject({
    mechanism: z.enum(KAFKA_SASL_MECHANISMS).default('SCRAM-SHA-512'),
    username: z.string().min(1).nullable().default(null),
    password: z.string().min(1).nullable().default(null),
    passwordFile: secretFile,
  }).prefault({}),
  ssl: z.strictObject({
    // null: the system's trusted CAs (OpenSSL's default paths).
    caFile: publicFile,
    // Mutual TLS: the client's certificate (PEM) and its private key (PEM).
    certificateFile: publicFile,
    keyFile: secretFile,
    keyPassword: z.string().min(1).nullable().default(null),
    keyPasswordFile: secretFile,
    // Check that the broker's certificate names the host connected to.
    verifyHostname: z.boolean().default(true)
  }).prefault({})
})

// librdkafka properties finnhubd sets itself, each with the reason a deployment may
// not change it through kafka.clientProperties (docs/configuration.md).
export const OWNED_KAFKA_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({
  'bootstrap.servers': 'set kafka.bootstrapServers',
  'metadata.broker.list': 'set kafka.bootstrapServers',
  'enable.idempotence': 'the producer is idempotent so a retry never duplicates a trade',
  acks: 'every record waits for all in-sync replicas (acks=all)',
  'request.required.acks': 'every record waits for all in-sync replicas (acks=all)',
  'enable.auto.commit': 'offsets are committed only after the rows are stored (the committed prefix)',
  'enable.auto.offset.store': 'offsets are stored only after the rows are stored (the committed prefix)',
  'auto.commit.interval.ms': 'set kafka.commitIntervalMs',
  'group.id': 'set kafka.groupId',
  'group.instance.id': 'set kafka.groupInstanceId',
  'client.id': 'set kafka.clientId',
  'enable.partition.eof': 'the consumer relies on partition-EOF events to return partial batches',
  'isolation.level': 'the consumer reads committed records only',
  'max.in.flight.requests.per.connection': 'bounded by idempotence, which orders retries',
  'max.in.flight': 'bounded by idempotence, which orders retries',
  'message.timeout.ms': 'set kafka.deliveryTimeoutMs',
  'delivery.timeout.ms': 'set kafka.deliveryTimeoutMs',
  'statistics.interval.ms': 'set kafka.statsIntervalMs (the metrics come from these statistics)',
  dr_cb: 'the producer counts deliveries itself',
  dr_msg_cb: 'the producer counts deliveries itself',
  'delivery.report.only.error': 'set kafka.deliveryReports',
  'compression.codec': 'set kafka.compression',
  'compression.type': 'set kafka.compression',
  'linger.ms': 'set kafka.lingerMs',
  'queue.buffering.max.ms': 'set kafka.lingerMs',
  'queue.buffering.max.messages': 'set kafka.maxBufferedMessages',
  'queue.buffering.max.kbytes': 'set kafka.maxBufferedKbytes',
  'batch.size': 'set kafka.batchSizeBytes',
  'fetch.wait.max.ms': 'set kafka.fetchWaitMaxMs',
  'queued.max.messages.kbytes': 'set kafka.fetchQueueMaxKbytes',
  'session.timeout.ms': 'set kafka.sessionTimeoutMs',
  'auto.offset.reset': 'set kafka.autoOffsetReset',
  offset_commit_cb: 'the consumer tracks its commits itself',
  rebalance_cb: 'the consumer handles rebalances itself',
  'security.protocol': 'set kafka.security.protocol',
  'ssl.endpoint.identification.algorithm': 'set kafka.security.ssl.verifyHostname'
})
// Whole families of properties that kafka.security sets (secrets among them, which must
// come from a file, the environment or a systemd credential, never the config's map).
export const OWNED_KAFKA_PREFIXES: ReadonlyArray<readonly [string, string]> = Object.freeze([
  ['sasl.', 'set kafka.security.sasl (its password from a file, KAFKA_SASL_PASSWORD or a systemd credential)'],
  ['ssl.', 'set kafka.security.ssl (its key password from a file, KAFKA_SSL_KEY_PASSWORD or a systemd credential)'],
  ['ssl_', 'set kafka.security.ssl']
] as const)

/** Why finnhubd refuses a librdkafka property in kafka.clientProperties, or null when it is allowed. */
export function ownedKafkaProperty (name: string): string | null {
  const lower = name.toLowerCase()
  if (Object.hasOwn(OWNED_KAFKA_PROPERTIES, lower)) return OWNED_KAFKA_PROPERTIES[lower] as string
  for (const [prefix, reason] of OWNED_KAFKA_PREFIXES) if (lower.startsWith(prefix)) return reason
  return null
}

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
  // Basic auth and a private CA for the schema registry (its URL carries no credentials).
  schemaRegistry: z.strictObject({
    username: z.string().min(1).nullable().default(null),
    password: z.string().min(1).nullable().default(null),
    passwordFile: secretFile,
    caFile: publicFile,
    timeoutMs: positiveInt.max(120_000).default(10_000)
  }).prefault({}),
  security: kafkaSecurity.prefault({}),
  // Other librdkafka properties a deployment needs (client.rack, socket.*, …), given to
  // every client. The ones finnhubd owns for its guarantees are refused by name.
  clientProperties: z.record(
    z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'expected a librdkafka property name such as client.rack'),
    z.union([z.string().max(4096), z.number().finite(), z.boolean()])
  ).default({}),
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
  topicReplicationFactor: positiveInt.max(9).default(1),
  // min.insync.replicas given to a topic finnhubd creates: with the producers' acks=all,
  // a write is acknowledged once this many replicas have it. null: one less than
  // topicReplicationFactor, at least 1 (2 on a 3-broker cluster: one broker may be lost
  // without losing an acknowledged trade or stopping the writes).
  topicMinInsyncReplicas: positiveInt.max(9).nullable().default(null),
  // retention.ms given to a topic finnhubd creates; -1 keeps records forever (Kafka's
  // convention). An existing topic keeps its own (docs/operations.md, "Retention").
  // The trades topic is the buffer between ingest and process: a week covers a process
  // role down over a long weekend. Dead letters wait for a person, so a month.
  topicRetentionMs: kafkaRetentionMs.default(7 * 86_400_000),
  deadLetterRetentionMs: kafkaRetentionMs.default(30 * 86_400_000)
})

// A data-center name goes into the CREATE KEYSPACE text, so only a safe set of characters.
export const DC_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const cassandraReplication = z.discriminatedUnion('class', [
  z.strictObject({ class: z.literal('SimpleStrategy'), replicationFactor: positiveInt.max(9) }),
  z.strictObject({
    class: z.literal('NetworkTopologyStrategy'),
    dataCenters: z.record(z.string(), positiveInt.max(9)).superRefine((m, ctx) => {
      if (Object.keys(m).length === 0) ctx.addIssue({ code: 'custom', message: 'name at least one data center and its replication factor, e.g. { datacenter1: 3 }' })
      for (const name of Object.keys(m)) {
        if (!DC_NAME.test(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is not a data-center name: use letters, digits, ".", "_" and "-" (up to 64), as `nodetool status` shows them' })
        }
      }
    })
  })
])

const cassandra = z.strictObject({
  contactPoints: z.array(z.string().min(1)).min(1).default(['127.0.0.1']),
  port: port.default(19042),
  localDataCenter: z.string().min(1).default('datacenter1'),
  username: z.string().nullable().default(null),
  password: z.string().nullable().default(null),
  passwordFile: secretFile,
  // Client-to-node encryption (Cassandra's client_encryption_options).
  tls: z.strictObject({
    enabled: z.boolean().default(false),
    // null: Node's bundled trusted CAs.
    caFile: publicFile,
    // Mutual TLS (require_client_auth on the server).
    certificateFile: publicFile,
    keyFile: secretFile,
    keyPassphrase: z.string().min(1).nullable().default(null),
    keyPassphraseFile: secretFile,
    rejectUnauthorized: z.boolean().default(true),
    // The name the node's certificate must carry (and SNI), when the contact points
    // are addresses or differ from it (a managed service behind one name).
    serverName: z.string().min(1).max(253).nullable().default(null)
  }).prefault({}),
  keyspace: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,47}$/, 'expected a CQL identifier').default('finnhub'),
  tradesTable: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,47}$/, 'expected a CQL identifier').default('trades'),
  replicationFactor: positiveInt.max(9).default(1),
  // The keyspace's replication for `finnhubd migrate`; when set it wins over
  // replicationFactor (which stays as the short form of SimpleStrategy).
  replication: cassandraReplication.nullable().default(null),
  // The level of every write, and of the reads a candle rebuild makes (readConsistency,
  // null: the same level; LOCAL_QUORUM for EACH_QUORUM, which Cassandra refuses on reads).
  consistency: z.enum(WRITE_CONSISTENCIES).default('LOCAL_QUORUM'),
  readConsistency: z.enum(READ_CONSISTENCIES).nullable().default(null),
  requestTimeoutMs: positiveInt.default(12_000),
  maxConcurrentWrites: positiveInt.default(32),
  // Below Cassandra's batch_size_warn_threshold (5 KiB by default).
  batchMaxBytes: positiveInt.max(1_000_000).default(4096),
  retryInitialDelayMs: positiveInt.default(100),
  retryMaxDelayMs: positiveInt.default(5_000),
  // The driver's reconnection to a host it lost: exponential up to this delay. The
  // driver's own ceiling is 10 minutes, so after an outage of a minute the daemon
  // could wait half a minute more before trying again (the fault suite measured 18 s).
  reconnectMaxDelayMs: z.number().int().min(100).max(600_000).default(2_000),
  // The tables' default_time_to_live, set by `finnhubd migrate` (0 keeps rows forever;
  // it applies to rows written after the change: docs/operations.md, "Retention").
  // Trades are the bulk (one row each): a month. Candles stay: their size grows with
  // symbols × periods, not with the trade rate, and once the trades behind them have
  // expired nothing could rebuild them.
  tradesRetentionDays: retentionDays.default(30),
  candlesRetentionDays: retentionDays.default(0)
})

const candles = z.strictObject({
  // The resolutions kept (1m is the base the others are merged from, so always kept).
  resolutions: z.array(z.enum(RESOLUTION_NAMES)).min(1).default([...RESOLUTION_NAMES])
    .refine(list => list.includes('1m'), { message: 'candles.resolutions must include 1m: the longer candles are merged from the one-minute ones' })
    .refine(list => new Set(list).size === list.length, { message: 'candles.resolutions lists a resolution twice' }),
  // A one-minute candle is written at most this often, each longer one at most every
  // periodFlushIntervalMs; batches meanwhile share the write. Trades never wait for it
  // (a batch frees its in-flight slot when its trade rows are written); only the
  // offset commit does, so these trade Cassandra requests against candle freshness.
  flushIntervalMs: nonNegativeInt.max(60_000).default(250),
  periodFlushIntervalMs: nonNegativeInt.max(300_000).default(1_000),
  // Batches whose trades are stored and whose candles are not durable yet; at this
  // bound consumption waits (a candle write that keeps failing must not let the
  // uncommitted stretch grow without end).
  maxWaitingBatches: positiveInt.max(100_000).default(512),
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

// The ledger of gaps (daemon/ingest/gap-ledger.ts, docs/operations.md "Gaps"): written by the
// ingest role into the gaps table, queued in the state directory while Cassandra is away.
const gaps = z.strictObject({
  enabled: z.boolean().default(true),
  // Drops of one reason closer than this are one gap.
  coalesceMs: positiveInt.max(3_600_000).default(5_000),
  // A re-subscribed socket that brings no trade for this long ends its outage at the
  // moment it subscribed (a quiet market), instead of at the first trade.
  settleMs: positiveInt.max(3_600_000).default(60_000),
  // Gap rows waiting for Cassandra, at most; past it the oldest closed ones are dropped (counted).
  maxPendingWrites: positiveInt.max(1_000_000).default(10_000)
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
  token: z.string().min(16, 'use at least 16 characters').nullable().default(null),
  tokenFile: secretFile,
  // Bounds on what the console's readers can make the daemon do.
  maxConcurrentReads: positiveInt.max(64).default(2),
  maxQueuedReads: nonNegativeInt.max(1_000).default(8),
  maxEventStreams: positiveInt.max(1_000).default(8),
  topicReadMaxBytes: positiveInt.max(64 * 1024 * 1024).default(1024 * 1024)
})

const http = z.strictObject({
  // /healthz, /readyz, /metrics. Loopback by default; 0 picks a free port (logged).
  enabled: z.boolean().default(true),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(9464),
  // Host names (as in the Host header, without the port) served besides loopback names
  // and http.host: the name a reverse proxy or the operator's browser uses. Any other
  // Host is refused before a handler runs (DNS rebinding).
  allowedHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$/, 'expected a host name or an address, without a port')).max(100).default([]),
  // Native HTTPS: required for the console off loopback unless behind a TLS reverse
  // proxy (http.behindTlsProxy), so its token never travels in clear text.
  tls: z.strictObject({
    certificateFile: publicFile,
    keyFile: secretFile
  }).prefault({}),
  behindTlsProxy: z.boolean().default(false),
  console: consoleSettings.prefault({})
})

/** 127.0.0.0/8, ::1 and localhost: the addresses only this machine reaches. */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  // 127.0.0.0/8, written as an address (each part 0–255, no leading zeros), also IPv4-mapped.
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIPv4(v4) && v4.split('.')[0] === '127'
}

// Redundant ingest (docs/operations.md "Redundant ingest"): ingest daemons on separate
// API keys, subscribed to the same symbols, write the same trade ids; the store keeps one
// row. `member` names this daemon (ingest role: it tags its records and gap rows with
// group/member); `members` is the whole group, which the process role counts per member
// and the gap readers combine (a stretch is a hole only where every member had a gap).
const redundancyName = z.string().regex(REDUNDANCY_NAME_PATTERN, 'expected 1–32 characters of a–z, 0–9, _ or -, starting with a letter or digit')
const redundancy = z.strictObject({
  group: redundancyName,
  members: z.array(redundancyName).min(2).max(MAX_REDUNDANCY_MEMBERS),
  member: redundancyName.nullable().default(null)
}).nullable().default(null)

const configShape = z.strictObject({
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
  gaps: gaps.prefault({}),
  http: http.prefault({}),
  redundancy
})

export const configSchema = configShape.superRefine((cfg, ctx) => {
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
  if (cfg.kafka.topicMinInsyncReplicas !== null && cfg.kafka.topicMinInsyncReplicas > cfg.kafka.topicReplicationFactor) {
    ctx.addIssue({
      code: 'custom',
      path: ['kafka', 'topicMinInsyncReplicas'],
      message: `must be ≤ kafka.topicReplicationFactor (${cfg.kafka.topicReplicationFactor}): a topic cannot have more in-sync replicas than replicas, and every write would fail`
    })
  }
  const r = cfg.redundancy
  if (r !== null) {
    if (new Set(r.members).size !== r.members.length) ctx.addIssue({ code: 'custom', path: ['redundancy', 'members'], message: 'names a member twice: each member of the group once' })
    if (r.member !== null && !r.members.includes(r.member)) ctx.addIssue({ code: 'custom', path: ['redundancy', 'member'], message: `is not one of redundancy.members (${r.members.join(', ')}): add it there, on every daemon of the group` })
    if (cfg.roles.includes('ingest') && r.member === null) ctx.addIssue({ code: 'custom', path: ['redundancy', 'member'], message: 'an ingest daemon of a redundancy group says which member it is' })
  }
  for (const issue of securityIssues(cfg)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message })
})

/** min.insync.replicas for the topics finnhubd creates: the configured one, else one less than their replication (at least 1). */
export function topicMinInsyncReplicas (kafka: Pick<Config['kafka'], 'topicMinInsyncReplicas' | 'topicReplicationFactor'>): number {
  return kafka.topicMinInsyncReplicas ?? Math.max(1, kafka.topicReplicationFactor - 1)
}

interface Issue { path: string[], message: string }

// The checks on where connections go and how, shared by the schema and by the secret
// resolution (daemon/config/secrets.ts), which runs them again once the secrets are in.
function securityIssues (cfg: z.infer<typeof configShape>): Issue[] {
  const out: Issue[] = []
  const add = (path: string[], message: string): void => { out.push({ path, message }) }
  urlIssues(cfg.finnhub.url, ['finnhub', 'url'], 'wss', 'finnhub.token, finnhub.tokenFile, FINNHUB_TOKEN or the systemd credential finnhub-token', add)
  urlIssues(cfg.finnhub.rest.url, ['finnhub', 'rest', 'url'], 'https', 'finnhub.token (the REST API uses the same token)', add)
  if (cfg.kafka.schemaRegistryUrl !== null) {
    urlIssues(cfg.kafka.schemaRegistryUrl, ['kafka', 'schemaRegistryUrl'], null, 'kafka.schemaRegistry.username and kafka.schemaRegistry.password (or passwordFile, SCHEMA_REGISTRY_PASSWORD)', add)
  }
  for (const name of Object.keys(cfg.kafka.clientProperties)) {
    const reason = ownedKafkaProperty(name)
    if (reason !== null) add(['kafka', 'clientProperties', name], `finnhubd sets this property itself: ${reason}`)
  }
  const sec = cfg.kafka.security
  if ((sec.ssl.certificateFile === null) !== (sec.ssl.keyFile === null)) {
    add(['kafka', 'security', 'ssl', 'keyFile'], 'kafka.security.ssl.certificateFile and keyFile go together (mutual TLS): set both or neither')
  }
  if (sec.protocol === 'plaintext' || sec.protocol === 'sasl_plaintext') {
    for (const key of ['caFile', 'certificateFile', 'keyFile'] as const) {
      if (sec.ssl[key] !== null) add(['kafka', 'security', 'ssl', key], `is set but kafka.security.protocol is ${sec.protocol}, which does not use TLS: use ssl or sasl_ssl`)
    }
  }
  const tls = cfg.cassandra.tls
  if ((tls.certificateFile === null) !== (tls.keyFile === null)) {
    add(['cassandra', 'tls', 'keyFile'], 'cassandra.tls.certificateFile and keyFile go together (mutual TLS): set both or neither')
  }
  if (!tls.enabled && (tls.caFile !== null || tls.certificateFile !== null || tls.serverName !== null)) {
    add(['cassandra', 'tls', 'enabled'], 'TLS files or a server name are set but cassandra.tls.enabled is false: set it to true')
  }
  for (const [value, file, path] of SECRET_PAIRS(cfg)) {
    if (value !== null && value !== '' && file !== null) add(path, 'is set both inline and as a file: keep one (the file is the safer place)')
  }
  const h = cfg.http
  if ((h.tls.certificateFile === null) !== (h.tls.keyFile === null)) {
    add(['http', 'tls', 'keyFile'], 'http.tls.certificateFile and keyFile go together: set both or neither')
  }
  if (h.enabled && h.console.enabled && !isLoopbackHost(h.host) && h.tls.certificateFile === null && !h.behindTlsProxy) {
    add(['http', 'tls'], `the console on ${h.host} would send its token in clear text: set http.tls.certificateFile and keyFile, ` +
      'or put it behind a TLS reverse proxy and set http.behindTlsProxy: true (docs/security.md), or turn the console off')
  }
  return out
}

// Each inline secret beside its file setting, with the path an error names.
function SECRET_PAIRS (cfg: z.infer<typeof configShape>): Array<[string | null, string | null, string[]]> {
  return [
    [cfg.finnhub.token, cfg.finnhub.tokenFile, ['finnhub', 'tokenFile']],
    [cfg.kafka.security.sasl.password, cfg.kafka.security.sasl.passwordFile, ['kafka', 'security', 'sasl', 'passwordFile']],
    [cfg.kafka.security.ssl.keyPassword, cfg.kafka.security.ssl.keyPasswordFile, ['kafka', 'security', 'ssl', 'keyPasswordFile']],
    [cfg.kafka.schemaRegistry.password, cfg.kafka.schemaRegistry.passwordFile, ['kafka', 'schemaRegistry', 'passwordFile']],
    [cfg.cassandra.password, cfg.cassandra.passwordFile, ['cassandra', 'passwordFile']],
    [cfg.cassandra.tls.keyPassphrase, cfg.cassandra.tls.keyPassphraseFile, ['cassandra', 'tls', 'keyPassphraseFile']],
    [cfg.http.console.token, cfg.http.console.tokenFile, ['http', 'console', 'tokenFile']]
  ]
}

// A URL must not carry a credential (it would be logged and printed), and a plain
// scheme is accepted only for loopback (tests, the simulator, a local proxy).
function urlIssues (text: string, path: string[], secure: 'wss' | 'https' | null, where: string, add: (path: string[], message: string) => void): void {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    add(path, 'is not a valid URL')
    return
  }
  if (url.username !== '' || url.password !== '') {
    add(path, `holds a user name or password; remove it from the URL and set ${where}`)
  }
  for (const key of url.searchParams.keys()) {
    if (/token|secret|pass|key|auth|cred|sig/i.test(key)) {
      add(path, `holds a credential in its query (${key}=…); remove it from the URL and set ${where}`)
      break
    }
  }
  if (secure !== null && url.protocol !== `${secure}:` && !isLoopbackHost(url.hostname)) {
    add(path, `must be ${secure}:// for a host that is not loopback (${url.protocol}// would send the token in clear text)`)
  }
}

export type Config = z.infer<typeof configSchema>
