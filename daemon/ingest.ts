// The ingest role: Finnhub WebSocket → validated trades → Avro → Kafka. The
// producer connects first, so no trade is accepted before there is somewhere to
// buffer it; stop() closes the socket (stop reading), then flushes the producer.

import { ownSourceTag } from './core/redundancy.js'
import { resolve } from 'node:path'
import type { Registry } from 'prom-client'
import type { Config } from './config/schema.js'
import { TradeEncoder, type Framing } from './core/avro-codec.js'
import { subscriptionSet } from './core/symbols.js'
import { FinnhubClient } from './finnhub/client.js'
import { SymbolDiscovery } from './finnhub/discovery.js'
import { ensureTopics } from './kafka/admin.js'
import { TradeProducer, type ProducerStats } from './kafka/producer.js'
import { GapLedger } from './ingest/gap-ledger.js'
import type { OutageReason } from './core/gaps.js'
import type { TradeRecord } from './core/trade-schema.js'
import { tradeSchemaId } from './kafka/schema-registry.js'
import type { Logger } from './log.js'
import type { StageLatency } from './metrics/latency.js'
import { createIngestCounters, registerIngestMetrics, type IngestCounters, type ReconnectCause } from './metrics/ingest.js'
import { registerGapMetrics } from './metrics/gaps.js'
import { loadTradeType, PROJECT_ROOT, resolveSchemaPath } from './paths.js'

/** The gap reason of a socket that ended for `cause`. */
export function outageReason (cause: ReconnectCause): Exclude<OutageReason, 'daemon_down'> {
  if (cause === 'stale') return 'stalled'
  if (cause === 'unauthorized' || cause === 'rate_limited') return cause
  return 'disconnected'
}

/** The state directory: stateDir, else .state under the installation. */
export function resolveStateDir (config: Config): string {
  return config.stateDir === null ? resolve(PROJECT_ROOT, '.state') : resolve(PROJECT_ROOT, config.stateDir)
}

export interface IngestDeps {
  log: Logger
  registry: Registry
  /** librdkafka's statistics, every kafka.statsIntervalMs (queue and broker latency windows). */
  onStats?: (stats: ProducerStats) => void
  /** Where frame → ack times go (kafka.deliveryReports = all). */
  latency?: StageLatency
  /** Load shedding (a daemon running both roles): how many of the trades of a frame to drop. */
  shed?: () => ((n: number) => number) | null
}

export interface Ingest {
  client: FinnhubClient
  producer: TradeProducer
  counters: IngestCounters
  framing: Framing
  /** Symbol discovery, when finnhub.discovery.enabled. */
  readonly discovery: SymbolDiscovery | null
  /** The ledger of gaps, when gaps.enabled. */
  gaps: GapLedger | null
  /**
   * Reload: applies finnhub.symbols and discovery's settings (as a diff on the live
   * socket; discovery runs again) and finnhub.url/token (reconnects).
   */
  applyConfig: (next: Config) => { added: string[], removed: string[], reconnected: boolean }
  /** Closes the socket (stop reading), then flushes the producer until the deadline (ms since epoch). */
  stop: (deadline?: number) => Promise<void>
}

export async function startIngest (config: Config, deps: IngestDeps): Promise<Ingest> {
  const schemaPath = resolveSchemaPath(config.schemaPath)
  const type = loadTradeType(schemaPath)
  const schemaId = await tradeSchemaId(config.kafka, schemaPath)
  const framing: Framing = schemaId === null ? { kind: 'single-object' } : { kind: 'confluent', schemaId }
  // The topic first: its probe fails fast on credentials, TLS or protocol (see probeKafka).
  await ensureTopics(config.kafka, [config.kafka.topic], (msg, fields) => { deps.log.info(msg, { component: 'kafka-admin', ...fields }) })
  const counters = createIngestCounters()
  registerIngestMetrics(deps.registry, counters)
  const gaps = config.gaps.enabled ? new GapLedger({ config, stateDir: resolveStateDir(config), log: deps.log.child({ component: 'gaps' }) }) : null
  if (gaps !== null) registerGapMetrics(deps.registry, gaps.counters)
  // Without a report per record the ledger cannot follow acknowledgements: a trade counts as settled once produced.
  const acked = config.kafka.deliveryReports === 'all'
  const producer = new TradeProducer({
    kafka: config.kafka,
    encoder: new TradeEncoder(type, framing),
    log: deps.log.child({ component: 'kafka-producer' }),
    counters,
    sourceTag: ownSourceTag(config.redundancy),
    ...(gaps !== null ? { onSettled: (at: number) => { gaps.settled(at) }, onQueueFull: (trade: TradeRecord) => { gaps.dropped('dropped_queue_full', [trade]) } } : {}),
    ...(deps.onStats !== undefined ? { onStats: deps.onStats } : {}),
    ...(deps.latency !== undefined ? { latency: deps.latency } : {})
  })
  await producer.connect(config.kafka.connectTimeoutMs)
  const client = new FinnhubClient({
    finnhub: config.finnhub,
    log: deps.log.child({ component: 'finnhub' }),
    counters,
    onTrades: trades => {
      const drop = deps.shed?.()?.(trades.length) ?? 0
      if (drop > 0) {
        counters.dropped.overload += drop
        gaps?.dropped('shed_overload', trades.slice(0, drop))
        if (drop === trades.length) return
        send(trades.slice(drop))
        return
      }
      send(trades)
    },
    ...(gaps !== null ? { onDown: (cause: ReconnectCause) => { gaps.down(outageReason(cause), client.symbols) }, onUp: (symbols: string[]) => { gaps.up(symbols) } } : {})
  })
  const send = (trades: TradeRecord[]): void => {
    const before = counters.produced
    producer.send(trades)
    gaps?.received((trades[0] as TradeRecord).ingest_ts, trades, acked ? counters.produced - before : 0)
  }

  // What the socket subscribes to: the static symbols, then discovered ones under the cap.
  let current = config
  let discovery: SymbolDiscovery | null = null
  const subscribe = (): { added: string[], removed: string[] } => {
    const f = current.finnhub
    const symbols = f.discovery.enabled ? subscriptionSet(f.symbols, discovery?.symbols ?? [], f.discovery.maxSymbols) : [...f.symbols]
    return client.setSymbols(symbols)
  }
  const startDiscovery = (): SymbolDiscovery => {
    const d = new SymbolDiscovery({
      finnhub: current.finnhub,
      stateDir: resolveStateDir(current),
      log: deps.log.child({ component: 'discovery' }),
      counters: counters.discovery,
      onResult: () => {
        const { added, removed } = subscribe()
        if (added.length + removed.length > 0) deps.log.info('subscriptions changed by symbol discovery', { subscribed: added, unsubscribed: removed })
      }
    })
    if (current.finnhub.symbols.length >= current.finnhub.discovery.maxSymbols) {
      deps.log.warn('finnhub.symbols already fill finnhub.discovery.maxSymbols: discovery adds nothing until the cap is raised',
        { symbols: current.finnhub.symbols.length, maxSymbols: current.finnhub.discovery.maxSymbols })
    }
    return d
  }
  if (config.finnhub.discovery.enabled) {
    discovery = startDiscovery()
    discovery.start()
  }
  client.start()
  deps.log.info('ingest started', { topic: config.kafka.topic, framing: framing.kind, symbols: client.symbols.length, discovery: config.finnhub.discovery.enabled })

  return {
    client,
    producer,
    counters,
    framing,
    gaps,
    get discovery () { return discovery },
    applyConfig (next: Config) {
      current = next
      if (next.finnhub.discovery.enabled && discovery === null) {
        discovery = startDiscovery()
        discovery.start()
      } else if (!next.finnhub.discovery.enabled && discovery !== null) {
        const old = discovery
        discovery = null
        old.stop().catch(err => { deps.log.error('stopping symbol discovery failed', { err }) })
      } else {
        discovery?.reconfigure(next.finnhub)
      }
      const { added, removed } = subscribe()
      const reconnected = client.setEndpoint(next.finnhub.url, next.finnhub.token)
      return { added, removed, reconnected }
    },
    async stop (deadline = Date.now() + 10_000) {
      await discovery?.stop()
      await client.close()
      const flushTimeoutMs = Math.max(1, deadline - Date.now())
      try {
        await producer.flush(flushTimeoutMs)
      } catch (err) {
        deps.log.error('Kafka did not acknowledge every record before the flush timeout; unacknowledged records are lost',
          { err, inFlight: producer.inFlight, flushTimeoutMs })
      }
      await producer.disconnect()
      await gaps?.stop(Math.max(deadline, Date.now() + 1_000))
      deps.log.info('ingest stopped', { received: counters.tradesReceived, produced: counters.produced, delivered: counters.delivered, dropped: counters.dropped })
    }
  }
}
