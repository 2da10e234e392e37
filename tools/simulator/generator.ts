// Trade generation for the simulator, pure and seeded: a per-symbol random walk,
// frames of 1..N trades across the subscribed symbols, with identical duplicate
// fills, v = 0 updates and null or absent conditions in set proportions. Frames are
// built as text by concatenation (the simulator has to outrun the daemon), and each
// trade's `t` is its intended send time, so latency measured from `t` is free of
// coordinated omission.

export interface GeneratorOptions {
  seed: number
  maxTradesPerFrame: number
  duplicateFillRatio: number
  zeroVolumeRatio: number
  nullConditionsRatio: number
}

export interface GeneratedTrade {
  s: string
  p: number
  t: number
  v: number
  c: string[] | null
  /** How `c` was written: a list, `null`, or left out. */
  cForm: 'list' | 'null' | 'absent'
}

/** mulberry32: a small, fast, seedable PRNG; Math.random cannot be replayed. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const CONDITIONS: ReadonlyArray<readonly string[]> = [['1'], ['1', '12'], ['12'], ['1', '8'], ['37']]

export class TradeGenerator {
  readonly #opts: GeneratorOptions
  readonly #random: () => number
  readonly #prices = new Map<string, number>()

  constructor (opts: GeneratorOptions) {
    this.#opts = opts
    this.#random = mulberry32(opts.seed)
  }

  /** Up to `count` trades for `symbols` at intended time `t`, grouped into frames. */
  frames (symbols: readonly string[], count: number, t: number): GeneratedTrade[][] {
    const frames: GeneratedTrade[][] = []
    if (symbols.length === 0) return frames
    let left = count
    while (left > 0) {
      const size = Math.min(left, 1 + Math.floor(this.#random() * this.#opts.maxTradesPerFrame))
      const frame: GeneratedTrade[] = []
      while (frame.length < size) {
        const trade = this.trade(symbols[Math.floor(this.#random() * symbols.length)] as string, t)
        frame.push(trade)
        if (frame.length < size && this.#random() < this.#opts.duplicateFillRatio) frame.push({ ...trade })
      }
      left -= frame.length
      frames.push(frame)
    }
    return frames
  }

  trade (symbol: string, t: number): GeneratedTrade {
    const r = this.#random
    const last = this.#prices.get(symbol) ?? 10 + Math.floor(r() * 500)
    const price = Math.max(0.01, Math.round(last * (1 + (r() - 0.5) * 0.002) * 100) / 100)
    this.#prices.set(symbol, price)
    const v = r() < this.#opts.zeroVolumeRatio ? 0 : Math.round(r() * 100_000) / 1000 + 0.001
    const cRoll = r()
    let cForm: GeneratedTrade['cForm'] = 'list'
    if (cRoll < this.#opts.nullConditionsRatio) cForm = r() < 0.5 ? 'null' : 'absent'
    const c = cForm === 'list' ? [...(CONDITIONS[Math.floor(r() * CONDITIONS.length)] as string[])] : null
    return { s: symbol, p: price, t, v, c, cForm }
  }
}

/** One call of TradeGenerator.frames, as the simulator logs it (symbols is the list in use then, not copied). */
export interface GenerationCall { symbols: readonly string[], count: number, t: number }

/**
 * Replays logged generation calls on a fresh generator with the same options and
 * hands over every frame, exactly as they were sent (the generator is a pure
 * function of its seed and its calls).
 */
export function regenerate (opts: GeneratorOptions, calls: Iterable<GenerationCall>, onFrame: (frame: GeneratedTrade[]) => void): void {
  const generator = new TradeGenerator(opts)
  for (const call of calls) for (const frame of generator.frames(call.symbols, call.count, call.t)) onFrame(frame)
}

/** The frame text Finnhub would send for these trades. */
export function tradeFrameText (trades: readonly GeneratedTrade[]): string {
  let text = '{"type":"trade","data":['
  for (let i = 0; i < trades.length; i++) {
    const tr = trades[i] as GeneratedTrade
    if (i > 0) text += ','
    text += '{"s":' + JSON.stringify(tr.s) + ',"p":' + String(tr.p) + ',"t":' + String(tr.t) + ',"v":' + String(tr.v)
    if (tr.cForm === 'list') text += ',"c":' + JSON.stringify(tr.c)
    else if (tr.cForm === 'null') text += ',"c":null'
    text += '}'
  }
  return text + ']}'
}
