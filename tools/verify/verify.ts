// Checking what the pipeline stored against what was sent, trade by trade: the ids
// every trade sent must be stored under (rebuilt from the simulator's generation
// log), the ids that reached the Kafka topic (read back and decoded), the ids and
// rows in Cassandra, and the candles of every resolution recomputed from the stored trades.
// Used by the bench, the fault suite (tools/chaos) and the end-to-end tests.

import type cassandra from 'cassandra-driver'
import Kafka from 'node-rdkafka'
import { foldTrade, toCandle, type CandleAcc } from '../../daemon/core/candle.js'
import { bucketOf, DAY_MS, periodStart, RESOLUTIONS, type Resolution } from '../../daemon/core/candle-periods.js'
import { singleObjectFingerprint, TradeDecoder } from '../../daemon/core/avro-codec.js'
import { assignOrdinals } from '../../daemon/core/frame.js'
import { writerSchemasFor } from '../../daemon/core/process-batch.js'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { tradeId, utcDay } from '../../daemon/core/transform.js'
import type { Config } from '../../daemon/config/schema.js'
import { connectCassandra } from '../../daemon/cassandra/client.js'
import { kafkaClientConfig } from '../../daemon/kafka/client-config.js'
import { candleOfRow, tradeOfRow, type StoredCandle, type StoredTrade } from '../../daemon/cassandra/query.js'
import { regenerate, type GenerationCall, type GeneratorOptions } from '../simulator/generator.js'
import { partitionsOf, watermarks } from '../../daemon/kafka/topic-reader.js'
import { TradeIdTable } from './id-table.js'
import { loadTradeType, resolveSchemaPath } from '../../daemon/paths.js'

export type { StoredCandle, StoredTrade } from '../../daemon/cassandra/query.js'

/** What one simulator sent: its generator's settings and its generation log. */
export interface SentLog { options: GeneratorOptions, calls: readonly GenerationCall[] }

export interface Expected {
  /** Trades sent (identical re-sends included). */
  sent: number
  /** The id each trade must be stored under → its symbol and trade time `t` (the intended send time). */
  ids: Map<string, { symbol: string, t: number }>
  symbols: Set<string>
  days: Set<string>
}

/** Rebuilds every frame the simulators sent and hands each trade to `each` with its ordinal, as the ingest role numbers them; returns the trades sent. */
function eachTradeSent (logs: readonly SentLog[], each: (r: TradeRecord) => void): number {
  let sent = 0
  for (const { options, calls } of logs) {
    regenerate(options, calls, frame => {
      const records: TradeRecord[] = frame.map(tr => ({ s: tr.s, p: tr.p, t: tr.t, v: tr.v, c: tr.c, ingest_ts: 0, ordinal: 0 }))
      assignOrdinals(records)
      for (const r of records) each(r)
      sent += frame.length
    })
  }
  return sent
}

/** Rebuilds every frame the simulators sent and works out each trade's id as the ingest role does. */
export function expectedTrades (logs: readonly SentLog[]): Expected {
  const out: Expected = { sent: 0, ids: new Map(), symbols: new Set(), days: new Set() }
  out.sent = eachTradeSent(logs, r => {
    out.ids.set(tradeId(r), { symbol: r.s, t: r.t })
    out.symbols.add(r.s)
    out.days.add(utcDay(r.t))
  })
  return out
}

export interface ExpectedIds {
  /** Trades sent (identical re-sends included). */
  sent: number
  /** The id each trade must be stored under, tagged with its symbol's index in `symbols`. */
  table: TradeIdTable
  symbols: string[]
  days: Set<string>
}

/** As `expectedTrades`, the ids in a compact table: for the bench's millions of trades (a Map of them runs out of heap). */
export function expectedIdTable (logs: readonly SentLog[]): ExpectedIds {
  const symbolIndex = new Map<string, number>()
  const out: ExpectedIds = { sent: 0, table: new TradeIdTable(1 << 16), symbols: [], days: new Set() }
  out.sent = eachTradeSent(logs, r => {
    let tag = symbolIndex.get(r.s)
    if (tag === undefined) {
      tag = out.symbols.length
      symbolIndex.set(r.s, tag)
      out.symbols.push(r.s)
    }
    out.table.add(tradeId(r), tag)
    out.days.add(utcDay(r.t))
  })
  return out
}

/**
 * Where the read-back connects: a plaintext bootstrap list (the local stack), or the
 * daemon's Kafka settings (a secured cluster: the same security as the daemon's clients).
 */
export type KafkaTarget = string | Config['kafka']

/** The librdkafka settings for a read-back client of `target`. */
export function targetConfig (target: KafkaTarget): Record<string, string | number | boolean> {
  return typeof target === 'string' ? { 'metadata.broker.list': target } : kafkaClientConfig(target, '-verify')
}

/** A connected consumer that never joins its group (reads by assignment, queries only), disconnected after `fn`. */
async function withConsumer<T> (bootstrap: KafkaTarget, groupId: string, fn: (consumer: Kafka.KafkaConsumer) => Promise<T>): Promise<T> {
  const consumer = new Kafka.KafkaConsumer({ ...targetConfig(bootstrap), 'group.id': groupId, 'enable.auto.commit': false } as Kafka.ConsumerGlobalConfig, {})
  await new Promise<void>((resolve, reject) => { consumer.connect({ timeout: 15_000 }, err => { err ? reject(err) : resolve() }) })
  try {
    return await fn(consumer)
  } finally {
    await new Promise<void>(resolve => { consumer.disconnect(() => resolve()) })
  }
}

async function committedOf (consumer: Kafka.KafkaConsumer, topic: string, partitions: number): Promise<number[]> {
  const toppars = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }))
  const result = await new Promise<Kafka.TopicPartitionOffset[]>((resolve, reject) => {
    consumer.committed(toppars, 10_000, (err, tps) => { err ? reject(err) : resolve(tps) })
  })
  return result.sort((a, b) => a.partition - b.partition).map(tp => tp.offset ?? -1001)
}

/** The group's committed offsets per partition (-1001 when none), read without joining the group. */
export async function committedOffsets (bootstrap: KafkaTarget, groupId: string, topic: string, partitions: number): Promise<number[]> {
  return await withConsumer(bootstrap, groupId, consumer => committedOf(consumer, topic, partitions))
}

/**
 * Whether the group has committed every partition of the topic up to its high
 * watermark (the next offset to be written): every record in it was processed.
 */
export async function groupCaughtUp (bootstrap: KafkaTarget, groupId: string, topic: string, partitions: number): Promise<boolean> {
  return await withConsumer(bootstrap, groupId, async consumer => {
    const committed = await committedOf(consumer, topic, partitions)
    for (let partition = 0; partition < partitions; partition++) {
      const { highOffset } = await watermarks(consumer, topic, partition)
      if (highOffset !== 0 && committed[partition] !== highOffset) return false
    }
    return true
  })
}

export interface TopicContents {
  records: number
  /** Decoded trades' ids → how many records carry each. */
  ids: Map<string, number>
  /** Records that did not decode (poison). */
  undecodable: number
}

/**
 * Every record of every partition of a topic, from offset 0 to the high watermark as
 * of the start, handed to `each` in partition order; throws when the end is not reached
 * within `timeoutMs`.
 */
export async function readWholeTopic (bootstrap: KafkaTarget, topic: string, each: (m: Kafka.Message) => void, timeoutMs = 60_000): Promise<void> {
  await withConsumer(bootstrap, `finnhubd-verify-${process.pid}-${Date.now()}`, async consumer => {
    const high = new Map<number, number>()
    for (const partition of await partitionsOf(consumer, topic)) {
      const w = await watermarks(consumer, topic, partition)
      if (w.highOffset > w.lowOffset) high.set(partition, w.highOffset)
    }
    consumer.assign([...high.keys()].map(partition => ({ topic, partition, offset: 0 })))
    const deadline = Date.now() + timeoutMs
    while (high.size > 0) {
      if (Date.now() > deadline) throw new Error(`reading ${topic}: partitions ${[...high.keys()].join(', ')} not read to their end within ${timeoutMs} ms`)
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) => { consumer.consume(1000, (err, m) => { err ? reject(err) : resolve(m) }) })
      for (const m of batch) {
        each(m)
        if (m.offset + 1 >= (high.get(m.partition) ?? Infinity)) high.delete(m.partition)
      }
    }
  })
}

/** A record's headers as one object of strings. */
export function headersOf (m: Kafka.Message): Record<string, string> {
  return Object.assign({}, ...(m.headers ?? []).map(x => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, String(v)])))) as Record<string, string>
}

/** Reads every partition of a topic from offset 0 to its high watermark and decodes each record. */
export async function readTopicIds (bootstrap: KafkaTarget, topic: string, schemaPath: string, timeoutMs = 60_000): Promise<TopicContents> {
  const type = loadTradeType(resolveSchemaPath(schemaPath))
  const decoder = new TradeDecoder(type, writerSchemasFor(type, singleObjectFingerprint(type).toString('hex'), []))
  const out: TopicContents = { records: 0, ids: new Map(), undecodable: 0 }
  await readWholeTopic(bootstrap, topic, m => {
    out.records++
    const d = decoder.decode(m.value)
    if (d.ok) {
      const id = tradeId(d.trade)
      out.ids.set(id, (out.ids.get(id) ?? 0) + 1)
    } else {
      out.undecodable++
    }
  }, timeoutMs)
  return out
}

/** Every stored trade of these symbols on the days around `times`. */
export async function readTrades (client: cassandra.Client, config: Config, symbols: readonly string[], times: readonly number[]): Promise<StoredTrade[]> {
  const days = [...new Set(times.map(utcDay))]
  const out: StoredTrade[] = []
  for (const symbol of symbols) {
    for (const day of days) {
      const rs = await client.execute(`SELECT * FROM ${config.cassandra.keyspace}.${config.cassandra.tradesTable} WHERE symbol = ? AND day = ?`, [symbol, day], { prepare: true, fetchSize: 100_000 })
      for (const r of rs.rows) out.push(tradeOfRow(r))
    }
  }
  return out
}

/** The columns of a candle row of `res`, its period's start read as `minute` (candleOfRow's shape at every resolution). */
const candleColumns = (res: Resolution): string =>
  `symbol, ${res.startColumn} AS minute, open, high, low, close, volume, notional, vwap, trade_count, open_ts, close_ts`

/**
 * Every stored candle of `res` (one minute by default) of these symbols whose period
 * starts on a UTC day of `times`: each (symbol, partition) read once, whatever the
 * number of days it holds (a month's or a year's partition for the longer periods).
 */
export async function readCandles (client: cassandra.Client, config: Config, symbols: readonly string[], times: readonly number[], res: Resolution = RESOLUTIONS['1m']): Promise<StoredCandle[]> {
  const days = new Set(times.map(utcDay))
  const starts = [...days].map(d => Date.parse(`${d}T00:00:00Z`))
  const buckets = [...new Set(starts.map(at => bucketOf(res, at)))]
  const from = new Date(Math.min(...starts))
  const to = new Date(Math.max(...starts) + DAY_MS)
  const cql = `SELECT ${candleColumns(res)} FROM ${config.cassandra.keyspace}.${res.table} WHERE symbol = ? AND ${res.bucketColumn} = ? AND ${res.startColumn} >= ? AND ${res.startColumn} < ?`
  const out: StoredCandle[] = []
  for (const symbol of symbols) {
    for (const bucket of buckets) {
      const rs = await client.execute(cql, [symbol, bucket, from, to], { prepare: true, fetchSize: 100_000 })
      for (const r of rs.rows) {
        const c = candleOfRow(r)
        if (days.has(utcDay(c.minute))) out.push(c)
      }
    }
  }
  return out.sort((a, b) => a.symbol.localeCompare(b.symbol) || a.minute - b.minute)
}

/** Every candle row of `res` in the keyspace, whatever its symbol (a full table scan: for the checks of hostile input). */
export async function readAllCandles (client: cassandra.Client, config: Config, res: Resolution): Promise<StoredCandle[]> {
  const rs = await client.execute(`SELECT ${candleColumns(res)} FROM ${config.cassandra.keyspace}.${res.table}`, [], { fetchSize: 1_000_000 })
  return rs.rows.map(candleOfRow)
}

/** The candles of `res` (one minute by default) as they should be: recomputed from the stored trades, `minute` the period's start. */
export function recomputeCandles (trades: readonly StoredTrade[], res: Resolution = RESOLUTIONS['1m']): StoredCandle[] {
  const folds = new Map<string, { symbol: string, start: number, acc: CandleAcc | null }>()
  for (const tr of trades) {
    const start = periodStart(res, tr.trade_ts)
    const key = `${tr.symbol}\u0000${start}`
    let f = folds.get(key)
    if (f === undefined) folds.set(key, f = { symbol: tr.symbol, start, acc: null })
    f.acc = foldTrade(f.acc, tr)
  }
  return [...folds.values()].map(f => ({ symbol: f.symbol, ...toCandle(f.start, f.acc as CandleAcc) }))
    .sort((a, b) => a.symbol.localeCompare(b.symbol) || a.minute - b.minute)
}

/** Stored candles against their recomputation: how many recomputed ones are stored exactly, and every difference. */
export interface CandleComparison {
  /** Recomputed candles whose stored row equals them. */
  exact: number
  /** Candles recomputed from the stored trades. */
  expected: number
  /** Stored rows for a period with no stored trade. */
  extra: number
  problems: string[]
}

/** Compares stored and recomputed candles: exact for prices, times and counts, 1e-9 relative for sums. */
export function compareCandles (stored: readonly StoredCandle[], expected: readonly StoredCandle[]): CandleComparison {
  const problems: string[] = []
  let exact = 0
  const byKey = new Map(stored.map(c => [`${c.symbol}@${c.minute}`, c]))
  for (const e of expected) {
    const s = byKey.get(`${e.symbol}@${e.minute}`)
    byKey.delete(`${e.symbol}@${e.minute}`)
    if (s === undefined) { problems.push(`missing candle ${e.symbol}@${new Date(e.minute).toISOString()}`); continue }
    const before = problems.length
    for (const k of ['open', 'high', 'low', 'close', 'trade_count', 'open_ts', 'close_ts'] as const) {
      if (s[k] !== e[k]) problems.push(`${e.symbol}@${new Date(e.minute).toISOString()} ${k}: stored ${s[k]}, recomputed ${e[k]}`)
    }
    for (const k of ['volume', 'notional', 'vwap'] as const) {
      const a = s[k] ?? 0
      const b = e[k] ?? 0
      if (!(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))) || (s[k] === null) !== (e[k] === null)) problems.push(`${e.symbol}@${new Date(e.minute).toISOString()} ${k}: stored ${s[k]}, recomputed ${e[k]}`)
    }
    if (problems.length === before) exact++
  }
  for (const extra of byKey.values()) problems.push(`extra candle ${extra.symbol}@${new Date(extra.minute).toISOString()}`)
  return { exact, expected: expected.length, extra: byKey.size, problems }
}

/** Differences between stored and recomputed candles (compareCandles' problems). */
export function candleDifferences (stored: readonly StoredCandle[], expected: readonly StoredCandle[]): string[] {
  return compareCandles(stored, expected).problems
}

/**
 * How long a DROP KEYSPACE may take: Cassandra flushes and snapshots every table of it,
 * which on a node just restarted and holding many keyspaces took over the run's 5 s
 * request timeout (the fault suite's Cassandra kill), though the drop went through.
 */
export const DROP_KEYSPACE_TIMEOUT_MS = 120_000

/** Drops a run's keyspaces (the config's and `extraKeyspaces`) and deletes its topics. */
export async function dropRunData (config: Config, extraKeyspaces: readonly string[], topics: readonly string[]): Promise<void> {
  const client = await connectCassandra(config.cassandra)
  try {
    for (const ks of [config.cassandra.keyspace, ...extraKeyspaces]) await client.execute(`DROP KEYSPACE IF EXISTS ${ks}`, [], { readTimeout: DROP_KEYSPACE_TIMEOUT_MS })
  } finally {
    await client.shutdown()
  }
  const admin = Kafka.AdminClient.create(targetConfig(config.kafka) as Kafka.GlobalConfig)
  for (const t of topics) await new Promise<void>(resolve => { admin.deleteTopic(t, 10_000, () => resolve()) })
  admin.disconnect()
}
