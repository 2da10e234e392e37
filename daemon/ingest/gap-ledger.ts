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
//
// Both files are read back at start as untrusted input (a crash mid-write, a full disk,
// a hand edit): anything not understood is said in a warning naming the file and left
// out, so a bad file costs at most that run's daemon_down gap, never the start.

import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { ownSourceTag } from '../core/redundancy.js'
import { join } from 'node:path'
import type cassandra from 'cassandra-driver'
import type { Config } from '../config/schema.js'
import { connectCassandra } from '../cassandra/client.js'
import { writeGap } from '../cassandra/gaps.js'
import { SYMBOL_PATTERN } from '../core/validate.js'
import { GAP_REASONS, GapTracker, OUTAGE_REASONS, monthsBetween, SettledWatermark, type DropReason, type Gap, type GapReason, type OutageReason, type Resume, type TradeMark } from '../core/gaps.js'
import type { Logger } from '../log.js'
import { createGapCounters, type GapCounters } from '../metrics/gaps.js'

export const GAPS_STATE_FILE = 'gaps.json'
export const GAPS_HEARTBEAT_FILE = 'gaps.heartbeat'
const HEARTBEAT_MS = 1_000
const RETRY_MAX_MS = 30_000
/** A Date holds times up to ±8.64e15 ms; a gap's times are after 1970. */
const MAX_TIME_MS = 8.64e15
/**
 * gaps.json is read at most this many bytes per row the queue may hold (gaps.maxPendingWrites,
 * plus the few open gaps): a row with every symbol a daemon subscribes to is well under it,
 * so only a file that is not ours is refused for its size.
 */
export const STATE_BYTES_PER_ROW = 16_384
const HEARTBEAT_BYTES = 16

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
  // A member of a redundancy group writes group/member, which the readers combine; otherwise the host.
  readonly #source: string
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
    this.#source = ownSourceTag(opts.config.redundancy) ?? hostname()
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
    const heartbeat = join(opts.stateDir, GAPS_HEARTBEAT_FILE)
    try {
      this.#heartbeatFd = openSync(heartbeat, 'w')
    } catch (err) {
      opts.log.error('the gap heartbeat file cannot be opened: after a crash the next run will date its daemon_down gap from the last save of gaps.json', { err, file: heartbeat })
    }
    this.#collect()
    this.#settle()
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
    this.#settle()
  }

  /** The queue held to gaps.maxPendingWrites, the counters, the state saved. */
  #settle (): void {
    const max = this.#o.config.gaps.maxPendingWrites
    // The oldest closed rows go first; open ones only when nothing else is left (the
    // live tracker has at most three open, a previous run's file may claim any number).
    for (const closedOnly of [true, false]) {
      for (const [id, g] of this.#pending) {
        if (this.#pending.size <= max) break
        if (closedOnly && g.end === null) continue
        this.#pending.delete(id)
        this.counters.writesDropped++
        this.#o.log.limited('error', 'gap-queue-full', 'a gap row was dropped unwritten: Cassandra has been away too long (gaps.maxPendingWrites)',
          { reason: g.reason, start: new Date(g.start).toISOString(), end: g.end === null ? null : new Date(g.end).toISOString(), dropped: g.dropped, symbols: g.symbols.length, pending: this.#pending.size })
      }
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

  /** The previous run's state, or null on a first run (or a file not understood, said in a warning naming it). */
  #load (): { resume: Resume, pending: Gap[] } | null {
    const log = this.#o.log
    const file = join(this.#o.stateDir, GAPS_STATE_FILE)
    const unusable = (why: string, err?: unknown): null => {
      log.warn(`the gap state of the previous run is ${why}: it is ignored (no daemon_down gap for its downtime, its queued gap rows are lost)`, { file, ...(err === undefined ? {} : { err }) })
      return null
    }
    let text: string
    try {
      const limit = (this.#o.config.gaps.maxPendingWrites + GAP_REASONS.length) * STATE_BYTES_PER_ROW
      const size = statSync(file).size
      if (size > limit) return unusable(`${size} bytes, more than this daemon writes (at most ${limit}: gaps.maxPendingWrites rows)`)
      text = readFileSync(file, 'utf8')
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : unusable('unreadable', err)
    }
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch (err) {
      return unusable('not JSON (truncated or overwritten?)', err)
    }
    const parsed = parseSavedState(raw)
    if (typeof parsed === 'string') return unusable(`not a gap state: ${parsed}`)
    if (parsed.skipped > 0) log.warn('gap rows of the previous run that are not understood are left out', { file, skipped: parsed.skipped })
    const { state } = parsed
    let { settledT, aliveAt } = state
    const beat = this.#readHeartbeat()
    if (beat !== null && beat.aliveAt >= aliveAt) {
      aliveAt = beat.aliveAt
      settledT = beat.settledT ?? settledT
    }
    return { resume: { settledT, aliveAt, symbols: state.symbols, open: state.open }, pending: state.pending }
  }

  /** The last heartbeat (16 bytes: settled trade time or NaN, the clock), or null when absent or not understood. */
  #readHeartbeat (): { settledT: number | null, aliveAt: number } | null {
    const file = join(this.#o.stateDir, GAPS_HEARTBEAT_FILE)
    const buf = Buffer.alloc(HEARTBEAT_BYTES)
    let size: number
    try {
      size = statSync(file).size
      const fd = openSync(file, 'r')
      try { readSync(fd, buf, 0, HEARTBEAT_BYTES, 0) } finally { closeSync(fd) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.log.warn('the gap heartbeat of the previous run is unreadable: gaps.json\'s times are used', { err, file })
      return null
    }
    if (size === 0) return null
    const settled = buf.readDoubleLE(0)
    const aliveAt = buf.readDoubleLE(8)
    if (size !== HEARTBEAT_BYTES || !isTime(aliveAt) || !(Number.isNaN(settled) || isTime(settled))) {
      this.#o.log.warn('the gap heartbeat of the previous run is not understood (not two times in 16 bytes): gaps.json\'s times are used', { file, bytes: size })
      return null
    }
    return { settledT: Number.isNaN(settled) ? null : settled, aliveAt }
  }
}

function isTime (x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= MAX_TIME_MS
}

function isSymbols (x: unknown): x is string[] {
  return Array.isArray(x) && x.every(s => typeof s === 'string' && SYMBOL_PATTERN.test(s))
}

/** One saved gap, or null when it is not one this daemon writes. */
function savedGap (x: unknown): Gap | null {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return null
  const { id, reason, start, end, symbols, dropped, openedAt } = x as Record<string, unknown>
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) return null
  if (!(GAP_REASONS as readonly unknown[]).includes(reason)) return null
  if (!isTime(start) || !isTime(openedAt) || !(end === null || (isTime(end) && end >= start)) || !isSymbols(symbols)) return null
  const outage = (OUTAGE_REASONS as readonly unknown[]).includes(reason)
  if (outage ? dropped !== null : !(typeof dropped === 'number' && Number.isSafeInteger(dropped) && dropped >= 0)) return null
  return { id, reason: reason as GapReason, start, end, symbols: [...new Set(symbols)].sort(), dropped: dropped as number | null, openedAt }
}

/** gaps.json's content checked: the state with the gaps understood (and how many were not), or why it is no state at all. */
function parseSavedState (raw: unknown): { state: SavedState, skipped: number } | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not a JSON object'
  const { version, aliveAt, settledT, symbols, open, pending } = raw as Record<string, unknown>
  if (version !== 1) return 'version is not 1'
  if (!isTime(aliveAt)) return 'aliveAt is not a time in epoch ms'
  if (settledT !== null && !isTime(settledT)) return 'settledT is neither null nor a time in epoch ms'
  if (!isSymbols(symbols)) return 'symbols is not a list of Finnhub symbols'
  if (!Array.isArray(open) || !Array.isArray(pending)) return 'open or pending is not a list'
  let skipped = 0
  const gaps = (list: unknown[]): Gap[] => list.flatMap(x => {
    const g = savedGap(x)
    if (g === null) skipped++
    return g === null ? [] : [g]
  })
  const state: SavedState = { version: 1, aliveAt, settledT, symbols: [...new Set(symbols)], open: gaps(open), pending: gaps(pending) }
  return { state, skipped }
}
