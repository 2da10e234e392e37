// Symbol discovery's pure half: which listed symbols are candidates (include and
// exclude patterns, the static symbols left out, a stable order), and what the socket
// subscribes to (the static symbols first, then discovered ones up to the cap). The
// I/O half, asking Finnhub's REST API, is daemon/finnhub/discovery.ts.

import { SYMBOL_PATTERN } from './validate.js'

export interface CandidateOptions {
  include: readonly string[]
  exclude: readonly string[]
  /** Subscribed anyway: never a candidate. */
  staticSymbols: readonly string[]
  /** The last result's symbols: checked first, so a re-run keeps what it had. */
  previous?: readonly string[]
}

export interface Candidates {
  symbols: string[]
  /** Listed entries that are not a Finnhub symbol finnhubd accepts (counted, skipped). */
  invalid: number
}

/**
 * The listing's symbols that pass the patterns, deduplicated: the previous result's
 * symbols first (in their order), then the rest sorted, so the cap keeps a stable set.
 * A symbol is kept when it matches some include pattern (or there are none) and no
 * exclude pattern.
 */
export function discoveryCandidates (listed: Iterable<string>, options: CandidateOptions): Candidates {
  const include = options.include.map(p => new RegExp(p))
  const exclude = options.exclude.map(p => new RegExp(p))
  const statics = new Set(options.staticSymbols)
  const kept = new Set<string>()
  let invalid = 0
  for (const symbol of listed) {
    if (!SYMBOL_PATTERN.test(symbol)) { invalid++; continue }
    if (statics.has(symbol)) continue
    if (include.length > 0 && !include.some(re => re.test(symbol))) continue
    if (exclude.some(re => re.test(symbol))) continue
    kept.add(symbol)
  }
  const first = (options.previous ?? []).filter(s => kept.has(s))
  const firstSet = new Set(first)
  const rest = [...kept].filter(s => !firstSet.has(s)).sort()
  return { symbols: [...first, ...rest], invalid }
}

/** How many discovered symbols fit beside the static ones under the cap. */
export function discoveryRoom (staticCount: number, maxSymbols: number): number {
  return Math.max(0, maxSymbols - staticCount)
}

/**
 * The socket's subscription: every static symbol, then discovered ones not already
 * static, while the total stays within maxSymbols. Static symbols are never dropped
 * for the cap (they were asked for by name); discovered ones make room.
 */
export function subscriptionSet (staticSymbols: readonly string[], discovered: readonly string[], maxSymbols: number): string[] {
  const out = [...new Set(staticSymbols)]
  const seen = new Set(out)
  for (const s of discovered) {
    if (out.length >= maxSymbols) break
    if (seen.has(s)) continue
    seen.add(s)
    out.push(s)
  }
  return out
}
