// Distinct synthetic trades, as the ingest role would put them in Kafka: for the
// process benchmark's pre-filled topic and the end-to-end tests.

import type { TradeRecord } from '../../daemon/core/trade-schema.js'

/** Distinct synthetic trades over a few minutes ending now, as the ingest role would send them. */
export function syntheticTrades (n: number, symbols: readonly string[] = ['AAPL', 'MSFT', 'BINANCE:BTCUSDT'], start = Date.now() - 180_000, stepMs = 7): TradeRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    s: symbols[i % symbols.length] as string,
    p: 100 + ((i * 7919) % 1000) / 100,
    t: start + Math.floor(i * stepMs),
    v: (i % 10) / 4,
    c: i % 3 === 0 ? null : [String(i % 5)],
    ingest_ts: start + Math.floor(i * stepMs) + 2,
    ordinal: 0
  }))
}
