// `finnhubd tail [--dlq] [--symbol S] [--from-beginning] [--max N]`: the trades topic
// (or the dead-letter topic) decoded, one line a record, live, for operators on a
// terminal. It reads with its own consumer (daemon/kafka/topic-reader.ts), outside
// the daemon's group: tailing never moves or delays the pipeline's offsets. Whoever
// produces to the topic chooses its keys, headers and strings: each is printed with
// its control characters and bidi overrides escaped (daemon/core/escape.ts), so a
// record cannot send escape sequences to the operator's terminal.

import type { Config } from './config/schema.js'
import { SYMBOL_PATTERN } from './config/schema.js'
import { FinnhubdError } from './core/errors.js'
import { escapeTerminal as esc, jsonForTerminal } from './core/escape.js'
import { TopicReader, tradeDecoderFor, type ShownRecord } from './kafka/topic-reader.js'

export interface TailOptions {
  dlq: boolean
  symbol: string | null
  fromBeginning: boolean
  /** Stop after this many lines (null: until stopped). */
  max: number | null
}

export function tailOptions (values: { dlq?: boolean, symbol?: string, 'from-beginning'?: boolean, max?: string }): TailOptions {
  const symbol = values.symbol ?? null
  if (symbol !== null && !SYMBOL_PATTERN.test(symbol)) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--symbol ${symbol} is not a Finnhub symbol such as AAPL or BINANCE:BTCUSDT`)
  }
  let max: number | null = null
  if (values.max !== undefined) {
    max = /^\d+$/.test(values.max) ? Number(values.max) : NaN
    if (!Number.isInteger(max) || max < 1) throw new FinnhubdError('FINNHUBD_ERR_USAGE', `--max takes a whole number ≥ 1, got "${values.max}"`)
  }
  return { dlq: values.dlq === true, symbol, fromBeginning: values['from-beginning'] === true, max }
}

/** One record as a line; everything the producer chose is escaped for the terminal. */
export function formatRecord (r: ShownRecord): string {
  const at = r.timestamp === null ? '-' : isoOrRaw(r.timestamp)
  const where = `p${r.partition}@${r.offset}`
  if (r.trade !== null) {
    const t = r.trade
    return `${at}  ${where}  ${esc(t.s)}  ${t.p} × ${t.v}  c=${jsonForTerminal(t.c)}  t=${isoOrRaw(t.t)}${t.ordinal > 0 ? `  fill #${t.ordinal + 1}` : ''}`
  }
  const header = (name: string): string => esc(r.headers[name] ?? '?')
  const reason = r.headers['finnhubd-reason']
  const why = reason !== undefined
    ? `${esc(reason)}: ${esc(r.headers['finnhubd-detail'] ?? '')}  (from ${header('finnhubd-source-topic')} p${header('finnhubd-source-partition')}@${header('finnhubd-source-offset')})`
    : `${esc(r.undecodable?.reason ?? 'undecodable')}: ${esc(r.undecodable?.detail ?? '')}`
  return `${at}  ${where}  key=${r.key === null ? '-' : esc(r.key)}  ${r.size} bytes  ${why}`
}

export async function runTail (config: Config, opts: TailOptions, out: (line: string) => void, err: (line: string) => void, stop: Promise<unknown>): Promise<number> {
  const reader = new TopicReader({ kafka: config.kafka, decoder: await tradeDecoderFor(config), purpose: 'tail' })
  const topic = opts.dlq ? config.kafka.deadLetterTopic : config.kafka.topic
  const controller = new AbortController()
  stop.then(() => controller.abort(), () => controller.abort())
  let printed = 0
  err(`finnhubd tail: ${topic} from the ${opts.fromBeginning ? 'beginning' : 'end'}${opts.symbol !== null ? `, ${opts.symbol} only` : ''} (Ctrl-C stops)`)
  try {
    await reader.follow(topic, opts.fromBeginning, r => {
      if (controller.signal.aborted) return
      if (opts.symbol !== null && (r.trade?.s ?? r.key) !== opts.symbol) return
      out(formatRecord(r))
      printed++
      if (opts.max !== null && printed >= opts.max) controller.abort()
    }, controller.signal)
  } finally {
    await reader.close()
  }
  return 0
}

/** A time as ISO 8601, or the raw number when a producer wrote one no Date can hold (toISOString would throw). */
export function isoOrRaw (ms: number): string {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? `${ms} (out of range)` : d.toISOString()
}
