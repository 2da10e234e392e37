// The ledger of gaps at work in the ingest role: the pure tracker (core/gaps.ts) fed
// by the socket's and the producer's events, its rows written to Cassandra's gaps
// table, its state kept in the state directory for the next run.
//
// Who writes: the ingest role itself, straight to Cassandra. It alone sees the socket
// and its own drops, and a gap must be recorded even when no trade flows (a Kafka
// record would need a second schema on the trades topic and a process role to be
// running; a gap row is a few a day). Cassandra being away must never stop ingest:
// rows wait in a bounded queue (gaps.maxPendingWrites, latest state per gap), kept in
// <stateDir>/gaps.json, and are retried with backoff; the upsert by gap id makes a
// retried or repeated write harmless.
//
// daemon_down needs to know, after a kill -9, the last trade time that run had safely
// in Kafka: each change of it is written (pwrite of 16 bytes, once per event-loop turn)
// to <stateDir>/gaps.heartbeat with the clock, which also ticks once a second.

import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type cassandra from 'cassandra-driver'
import type { Config } from './config/schema.js'
import { connectCassandra } from './cassandra/client.js'
import { writeGap } from './cassandra/gaps.js'
import { GAP_REASONS, GapTracker, monthsBetween, SettledWatermark, type DropReason, type Gap, type GapReason, type OutageReason, type Resume, type TradeMark } from './core/gaps.js'
import type { Logger } from './log.js'

export const GAPS_STATE_FILE = 'gaps.json'
export const GAPS_HEARTBEAT_FILE = 'gaps.heartbeat'
const HEARTBEAT_MS = 1_000
const RETRY_MAX_MS = 30_000

export interface GapCounters {
  opened: Record<GapReason, number>
  open: Record<GapReason, number>
  pendingWrites: number
  writeErrors: number
  writesDropped: number
}

export function createGapCounters (): GapCounters {
  const zeros = (): Record<GapReason, number> => Object.fromEntries(GAP_REASONS.map(r => [r, 0])) as Record<GapReason, number>
  return { opened: zeros(), open: zeros(), pendingWrites: 0, writeErrors: 0, writesDropped: 0 }
}

interface SavedState { version: 1, aliveAt: number, settledT: number | null, symbols: string[], open: Gap[], pending: Gap[] }

export interface GapLedgerOptions {
  config: Config
  stateDir: string
  log: Logger
  now?: () => number
  /** Builds the Cassandra session (tests); connectCassandra when absent. */
  connect?: (config: Config['cassandra']) => Promise<cassandra.Client>
}

export class GapLedger {
  readonly counters: GapCounters
  readonly #o: GapLedgerOptions
  readonly #now: () => number
  readonly #tracker: GapTracker
  readonly #watermark = new SettledWatermark()
  readonly #pending = new Map<string, Gap>()
  /** Ids of the gaps open and already said to be (each opening is logged once). */
  readonly #known = new Set<string>()
  readonly #source = hostname()
  #symbols: string[] = []
  #heartbeatFd: number | null = null
  #heartbeatQueued = false
  #timer: NodeJS.Timeout | null = null
  #client: cassandra.Client | null = null
  #writing: Promise<void> | null = null
  #retryAt = 0
  #retryMs = 1_000
  #month = ''
  #stopped = false

  constructor (opts: GapLedgerOptions) {
    this.#o = opts
    this.#now = opts.now ?? Date.now
    const now = this.#now()
    const previous = this.#load()
    const g = opts.config.gaps
    this.#tracker = new GapTracker({ coalesceMs: g.coalesceMs, settleMs: g.settleMs, runTag: now.toString(36) }, now, previous === null ? null : previous.resume)
    for (const gap of previous?.pending ?? []) this.#pending.set(gap.id, gap)
    this.counters = { ...createGapCounters(), opened: this.#tracker.opened }
    if (previous !== null) {
      const r = previous.resume
      opts.log.warn('the previous run ended at its last heartbeat: trades Finnhub sent from then until this run receives are missing (a daemon_down gap)',
        { settledTradeTime: r.settledT === null ? null : new Date(r.settledT).toISOString(), aliveAt: new Date(r.aliveAt).toISOString(), symbols: r.symbols.length })
    }
    mkdirSync(opts.stateDir, { recursive: true })
    this.#heartbeatFd = openSync(join(opts.stateDir, GAPS_HEARTBEAT_FILE), 'w')
    this.#collect()
    this.#save()
    this.#heartbeat()
    this.#timer = setInterval(() => { this.tick() }, HEARTBEAT_MS)
    this.#timer.unref()
  }

  /** The gaps open now. */
  get open (): Gap[] { return this.#tracker.open }

  /** Trades admitted from one frame received at `at`; `produced` of them went to the producer. */
  received (at: number, trades: readonly TradeMark[], produced: number): void {
    this.#tracker.received(this.#now(), trades)
    let maxT = -Infinity
    for (const tr of trades) if (tr.t > maxT) maxT = tr.t
    if (trades.length > 0) this.#watermark.frame(at, produced, maxT)
    this.#collect()
    this.#queueHeartbeat()
  }

  /** A record of the frame received at `at` was acknowledged by Kafka or failed. */
  settled (at: number): void {
    this.#watermark.settle(at)
    this.#queueHeartbeat()
  }

  dropped (reason: DropReason, trades: readonly TradeMark[]): void {
    this.#tracker.dropped(this.#now(), reason, trades)
    this.#collect()
  }

  down (reason: Exclude<OutageReason, 'daemon_down'>, symbols: readonly string[]): void {
    this.#tracker.down(this.#now(), reason, symbols)
    this.#collect()
  }

  up (symbols: readonly string[]): void {
    this.#symbols = [...symbols]
    this.#tracker.up(this.#now(), symbols)
    this.#collect()
    this.#save()
  }

  /** Once a second: the tracker's clock, the heartbeat, open gaps into a new month, the writes. */
  tick (): void {
    const now = this.#now()
    this.#tracker.tick(now)
    const month = monthsBetween(now, now)[0] as string
    if (month !== this.#month) {
      this.#month = month
      for (const g of this.#tracker.open) this.#pending.set(g.id, g)
    }
    this.#collect()
    this.#heartbeat()
    this.#flush()
  }

  /** A clean stop: open gaps close, rows are written until `deadline`, the rest stays queued in the state directory. */
  async stop (deadline: number): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#tracker.stop(this.#now())
    this.#collect()
    this.#heartbeat()
    while (this.#pending.size > 0 && this.#now() < deadline) {
      this.#retryAt = 0
      this.#flush()
      await (this.#writing ?? Promise.resolve())
      if (this.#pending.size > 0) await new Promise(resolve => setTimeout(resolve, 200))
    }
    this.#save()
    if (this.#heartbeatFd !== null) closeSync(this.#heartbeatFd)
    this.#heartbeatFd = null
    await this.#client?.shutdown().catch(() => {})
    this.#client = null
    if (this.#pending.size > 0) this.#o.log.warn('gap rows not yet written to Cassandra stay queued in the state directory for the next run', { pending: this.#pending.size })
  }

  #collect (): void {
    const changes = this.#tracker.takeChanges()
    if (changes.length === 0) return
    for (const g of changes) {
      this.#pending.delete(g.id)
      this.#pending.set(g.id, g)
      if (g.end === null && !this.#known.has(g.id)) {
        this.#known.add(g.id)
        this.#o.log.warn('a gap opened: trades may be missing from the store', { reason: g.reason, start: new Date(g.start).toISOString(), symbols: g.symbols.length })
      } else if (g.end !== null) {
        this.#known.delete(g.id)
        this.#o.log.info('a gap closed', { reason: g.reason, start: new Date(g.start).toISOString(), end: new Date(g.end).toISOString(), dropped: g.dropped, symbols: g.symbols.length })
      }
    }
    const max = this.#o.config.gaps.maxPendingWrites
    for (const [id, g] of this.#pending) {
      if (this.#pending.size <= max) break
      if (g.end === null) continue
      this.#pending.delete(id)
      this.counters.writesDropped++
      this.#o.log.limited('error', 'gap-queue-full', 'a gap row was dropped unwritten: Cassandra has been away too long (gaps.maxPendingWrites)', { reason: g.reason, start: new Date(g.start).toISOString() })
    }
    for (const r of GAP_REASONS) this.counters.open[r] = 0
    for (const g of this.#tracker.open) this.counters.open[g.reason]++
    this.counters.pendingWrites = this.#pending.size
    this.#save()
  }

  #flush (): void {
    if (this.#writing !== null || this.#pending.size === 0 || this.#now() < this.#retryAt) return
    this.#writing = this.#write().finally(() => { this.#writing = null })
  }

  async #write (): Promise<void> {
    try {
      this.#client ??= await (this.#o.connect ?? connectCassandra)(this.#o.config.cassandra)
      for (const g of [...this.#pending.values()]) {
        await writeGap(this.#client, this.#o.config.cassandra.keyspace, g, this.#source, this.#now())
        if (this.#pending.get(g.id) === g) this.#pending.delete(g.id)
      }
      this.#retryMs = 1_000
    } catch (err) {
      this.counters.writeErrors++
      this.#retryAt = this.#now() + this.#retryMs
      this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2)
      this.#o.log.limited('warn', 'gap-write', 'gap rows could not be written to Cassandra; they stay queued and are retried', { err, pending: this.#pending.size })
    }
    this.counters.pendingWrites = this.#pending.size
    this.#save()
  }

  #queueHeartbeat (): void {
    if (this.#heartbeatQueued) return
    this.#heartbeatQueued = true
    setImmediate(() => { this.#heartbeatQueued = false; this.#heartbeat() })
  }

  #heartbeat (): void {
    if (this.#heartbeatFd === null) return
    const buf = Buffer.alloc(16)
    buf.writeDoubleLE(this.#watermark.settled ?? NaN, 0)
    buf.writeDoubleLE(this.#now(), 8)
    try {
      writeSync(this.#heartbeatFd, buf, 0, 16, 0)
    } catch (err) {
      this.#o.log.limited('error', 'gap-heartbeat', 'the gap heartbeat could not be written to the state directory', { err })
    }
  }

  #save (): void {
    const state: SavedState = { version: 1, aliveAt: this.#now(), settledT: this.#watermark.settled, symbols: this.#symbols, open: this.#tracker.open, pending: [...this.#pending.values()] }
    const file = join(this.#o.stateDir, GAPS_STATE_FILE)
    try {
      writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(state))
      renameSync(`${file}.${process.pid}.tmp`, file)
    } catch (err) {
      this.#o.log.limited('error', 'gap-state', 'the gap state could not be written to the state directory', { err, file })
    }
  }

  /** The previous run's state, or null on a first run (or an unreadable file, said once). */
  #load (): { resume: Resume, pending: Gap[] } | null {
    const file = join(this.#o.stateDir, GAPS_STATE_FILE)
    let state: SavedState
    try {
      state = JSON.parse(readFileSync(file, 'utf8')) as SavedState
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.log.error('the gap state of the previous run is unreadable: no daemon_down gap for its downtime', { err, file })
      return null
    }
    if (state.version !== 1 || !Array.isArray(state.symbols) || !Array.isArray(state.open) || !Array.isArray(state.pending)) return null
    let { settledT, aliveAt } = state
    try {
      const buf = readFileSync(join(this.#o.stateDir, GAPS_HEARTBEAT_FILE))
      if (buf.length >= 16 && buf.readDoubleLE(8) >= aliveAt) {
        aliveAt = buf.readDoubleLE(8)
        const t = buf.readDoubleLE(0)
        settledT = Number.isNaN(t) ? settledT : t
      }
    } catch { /* no heartbeat: the JSON's own */ }
    return { resume: { settledT, aliveAt, symbols: state.symbols, open: state.open }, pending: state.pending }
  }
}
