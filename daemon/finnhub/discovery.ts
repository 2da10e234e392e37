// Symbol discovery, as the seed's client does it: list each configured exchange's
// symbols through Finnhub's REST API, keep those the patterns allow, quote-check them
// (a current price > 0 means the symbol is live) until the cap is reached, and hand
// the result to the ingest role, which applies it as a subscription diff. It runs
// beside ingest, never in front of it: the static symbols stream from the first
// second, whatever the REST API does.
//
// A run is all or nothing: a failed run (API down, bad token) changes no
// subscription. Every good result is saved in the state directory; at start a saved
// result made with the same settings is applied at once, and when it is younger than
// discovery.intervalMs no request is made until it is due (a restart costs none of
// the rate budget). When the API is down, the saved result stays in use (logged once
// per outage). Runs repeat every intervalMs, after a failure every failureRetryMs, and
// on SIGHUP.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/schema.js'
import { discoveryCandidates, discoveryRoom } from '../core/symbols.js'
import { FinnhubdError, isFinnhubdError } from '../core/errors.js'
import type { Logger } from '../log.js'
import { FinnhubRest } from './rest.js'

// The counters' shape and label values live with the metrics that export them.
export { DISCOVERY_RUN_RESULTS, type DiscoveryCounters, type DiscoveryRunResult } from '../metrics/ingest.js'
import type { DiscoveryCounters } from '../metrics/ingest.js'

export interface DiscoveryOptions {
  finnhub: Config['finnhub']
  /** Where discovery.json is kept. */
  stateDir: string
  log: Logger
  counters: DiscoveryCounters
  /** Called with each new result (also the saved one at start). */
  onResult: (symbols: readonly string[]) => void
  now?: () => number
  random?: () => number
}

export interface DiscoveryReport {
  symbols: string[]
  listed: number
  candidates: number
  dead: number
  invalid: number
}

/** What discovery.json holds. */
interface Saved {
  version: 1
  savedAt: number
  settings: string
  symbols: string[]
}

export const DISCOVERY_FILE = 'discovery.json'

/** The settings a result depends on: a saved result made under others is not used. */
export function discoverySettingsKey (finnhub: Config['finnhub']): string {
  const d = finnhub.discovery
  return JSON.stringify({ url: finnhub.rest.url, exchanges: d.exchanges, include: d.include, exclude: d.exclude, quoteCheck: d.quoteCheck, maxSymbols: d.maxSymbols })
}

export class SymbolDiscovery {
  readonly #opts: DiscoveryOptions
  readonly #rest: FinnhubRest
  readonly #now: () => number
  #finnhub: Config['finnhub']
  #symbols: string[] = []
  #savedAt: number | null = null
  #timer: NodeJS.Timeout | null = null
  #running: { controller: AbortController, done: Promise<DiscoveryReport | null>, settings: string } | null = null
  #outageLogged = false
  #stopped = false

  constructor (opts: DiscoveryOptions) {
    this.#opts = opts
    this.#finnhub = opts.finnhub
    this.#now = opts.now ?? Date.now
    this.#rest = new FinnhubRest({
      rest: opts.finnhub.rest,
      token: opts.finnhub.token,
      log: opts.log,
      counts: opts.counters.restRequests,
      now: this.#now,
      ...(opts.random !== undefined ? { random: opts.random } : {})
    })
  }

  /** The last good result's symbols (saved or fresh). */
  get symbols (): readonly string[] { return this.#symbols }

  get file (): string { return join(this.#opts.stateDir, DISCOVERY_FILE) }

  /** Applies a saved result made with these settings, then schedules the first run. */
  start (): void {
    const saved = this.#readSaved()
    const interval = this.#finnhub.discovery.intervalMs
    if (saved !== null && saved.settings === discoverySettingsKey(this.#finnhub)) {
      this.#adopt(saved.symbols, saved.savedAt)
      this.#opts.counters.runs.cached++
      const age = Math.max(0, this.#now() - saved.savedAt)
      const dueInMs = Math.max(0, interval - age)
      this.#opts.log.info('symbol discovery: using the saved result', {
        symbols: saved.symbols.length, savedAt: new Date(saved.savedAt).toISOString(), file: this.file, nextRunInMs: dueInMs
      })
      this.#schedule(dueInMs)
      return
    }
    this.#schedule(0)
  }

  /**
   * A reload: new settings take effect, and discovery runs again now. A run already
   * under way with the same settings is left to finish (a storm of SIGHUPs costs no
   * extra requests); one with other settings is abandoned for a new one.
   */
  reconfigure (finnhub: Config['finnhub']): void {
    if (this.#stopped) return
    this.#finnhub = finnhub
    this.#rest.configure(finnhub.rest, finnhub.token)
    const running = this.#running
    if (running !== null) {
      if (running.settings === discoverySettingsKey(finnhub)) return
      running.controller.abort()
    }
    this.#schedule(0)
  }

  /** Runs once now (after any run under way) and resolves with its report, or null when it failed. */
  async runNow (): Promise<DiscoveryReport | null> {
    if (this.#running !== null) await this.#running.done
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    return await this.#runOnce()
  }

  /** Stops the schedule and abandons a run under way (its result is not applied). */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const running = this.#running
    running?.controller.abort()
    await running?.done
  }

  #schedule (ms: number): void {
    if (this.#stopped) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#runOnce().catch(err => { this.#opts.log.error('symbol discovery failed unexpectedly', { err }) })
    }, ms)
    this.#timer.unref()
  }

  async #runOnce (): Promise<DiscoveryReport | null> {
    const controller = new AbortController()
    const settings = discoverySettingsKey(this.#finnhub)
    const done = this.#discover(controller.signal).then(report => {
      if (controller.signal.aborted || this.#stopped) return null
      this.#succeeded(report)
      return report
    }, err => {
      if (controller.signal.aborted || this.#stopped) return null
      this.#failed(err)
      return null
    })
    const running = { controller, done, settings }
    this.#running = running
    try {
      return await done
    } finally {
      if (this.#running === running) this.#running = null
    }
  }

  async #discover (signal: AbortSignal): Promise<DiscoveryReport> {
    const { discovery, symbols: staticSymbols } = this.#finnhub
    const listed: string[] = []
    for (const { market, exchange } of discovery.exchanges) {
      const body = await this.#rest.get(`/${market}/symbol`, { exchange }, signal)
      if (!Array.isArray(body)) {
        throw new FinnhubdError('FINNHUBD_ERR_FINNHUB_REST',
          `Finnhub's REST API answered /${market}/symbol?exchange=${exchange} with ${typeof body}, not a list of symbols; check finnhub.rest.url`)
      }
      for (const item of body as unknown[]) {
        const symbol = (item as { symbol?: unknown } | null)?.symbol
        if (typeof symbol === 'string') listed.push(symbol)
      }
    }
    const { symbols: candidates, invalid } = discoveryCandidates(listed, {
      include: discovery.include, exclude: discovery.exclude, staticSymbols, previous: this.#symbols
    })
    const room = discoveryRoom(staticSymbols.length, discovery.maxSymbols)
    const chosen: string[] = []
    let dead = 0
    for (const symbol of candidates) {
      if (chosen.length >= room) break
      if (!discovery.quoteCheck) {
        chosen.push(symbol)
        continue
      }
      const quote = await this.#rest.get('/quote', { symbol }, signal) as { c?: unknown } | null
      if (typeof quote?.c === 'number' && quote.c > 0) chosen.push(symbol)
      else dead++
    }
    return { symbols: chosen, listed: listed.length, candidates: candidates.length, dead, invalid }
  }

  #succeeded (report: DiscoveryReport): void {
    const { log, counters } = this.#opts
    const savedAt = this.#now()
    counters.runs.ok++
    counters.lastSuccessSeconds = Math.floor(savedAt / 1000)
    if (this.#outageLogged) log.info('symbol discovery: Finnhub\'s REST API answers again')
    this.#outageLogged = false
    const before = new Set(this.#symbols)
    const added = report.symbols.filter(s => !before.has(s))
    const removed = this.#symbols.filter(s => !report.symbols.includes(s))
    this.#adopt(report.symbols, savedAt)
    this.#save(report.symbols, savedAt)
    const fields = { symbols: report.symbols.length, added, removed, listed: report.listed, candidates: report.candidates, dead: report.dead, invalid: report.invalid }
    if (report.symbols.length === 0) log.warn('symbol discovery found no live symbol matching finnhub.discovery (exchanges, include, exclude); only finnhub.symbols are subscribed', fields)
    else log.info('symbol discovery done', fields)
    this.#schedule(this.#finnhub.discovery.intervalMs)
  }

  #failed (err: unknown): void {
    const { log, counters } = this.#opts
    counters.runs.failed++
    const retryInMs = this.#finnhub.discovery.failureRetryMs
    const reason = isFinnhubdError(err) ? err.message : (err as Error).message
    if (isFinnhubdError(err, 'FINNHUBD_ERR_FINNHUB_AUTH')) {
      log.error('symbol discovery: ' + reason, { retryInMs })
    } else if (!this.#outageLogged) {
      this.#outageLogged = true
      const keeping = this.#savedAt === null
        ? 'no earlier result to fall back on: only finnhub.symbols are subscribed'
        : `keeping the last good result (${this.#symbols.length} symbols, from ${new Date(this.#savedAt).toISOString()})`
      log.warn(`symbol discovery failed; ${keeping}`, { reason, retryInMs })
    } else {
      log.debug('symbol discovery failed again', { reason, retryInMs })
    }
    this.#schedule(retryInMs)
  }

  #adopt (symbols: readonly string[], savedAt: number): void {
    this.#symbols = [...symbols]
    this.#savedAt = savedAt
    this.#opts.counters.symbols = symbols.length
    this.#opts.onResult(this.#symbols)
  }

  #readSaved (): Saved | null {
    let text: string
    try {
      text = readFileSync(this.file, 'utf8')
    } catch {
      return null
    }
    try {
      const saved = JSON.parse(text) as Partial<Saved>
      if (saved.version === 1 && typeof saved.savedAt === 'number' && typeof saved.settings === 'string' &&
        Array.isArray(saved.symbols) && saved.symbols.every(s => typeof s === 'string')) return saved as Saved
    } catch {}
    this.#opts.counters.cacheErrors++
    this.#opts.log.warn('symbol discovery: the saved result is unreadable and is ignored; it is rewritten after the next good run', { file: this.file })
    return null
  }

  #save (symbols: readonly string[], savedAt: number): void {
    const saved: Saved = { version: 1, savedAt, settings: discoverySettingsKey(this.#finnhub), symbols: [...symbols] }
    const tmp = `${this.file}.${process.pid}.tmp`
    try {
      mkdirSync(this.#opts.stateDir, { recursive: true })
      // Written aside and renamed: a crash mid-write never leaves half a file.
      writeFileSync(tmp, JSON.stringify(saved, null, 2) + '\n')
      renameSync(tmp, this.file)
    } catch (err) {
      this.#opts.counters.cacheErrors++
      this.#opts.log.limited('warn', 'discovery-save', 'symbol discovery: cannot save the result; a restart will ask Finnhub again (check stateDir / STATE_DIRECTORY)',
        { file: this.file, err: (err as Error).message })
    }
  }
}
