// A broad corpus of bad Finnhub frames and bad trades, each with the reason it must
// be counted under. Shared by the pure parser tests, the end-to-end ingest tests and
// the fault suite (the simulator sends these between good frames).
import type { FrameRejectReason, TradeRejectReason } from '../../daemon/core/frame.js'

export interface BadFrame { name: string, data: string | Buffer, binary?: boolean, reason: FrameRejectReason }
export interface BadTrade { name: string, json: string, reason: TradeRejectReason }

const bad = (name: string, trade: unknown, reason: TradeRejectReason): BadTrade => ({ name, json: JSON.stringify(trade), reason })

export const BAD_FRAMES: BadFrame[] = [
  { name: 'truncated JSON', data: '{"type":"trade","data":[{"s":"AAPL","p":1', reason: 'invalid_json' },
  { name: 'empty text', data: '', reason: 'invalid_json' },
  { name: 'bare NaN', data: '{"type":"trade","data":[{"s":"AAPL","p":NaN,"t":1700000000000,"v":1}]}', reason: 'invalid_json' },
  { name: 'trailing garbage', data: '{"type":"ping"}}', reason: 'invalid_json' },
  { name: 'single quotes', data: "{'type':'ping'}", reason: 'invalid_json' },
  { name: 'binary frame', data: Buffer.from([0x00, 0xff, 0x10]), binary: true, reason: 'binary' },
  { name: 'JSON array', data: '[{"type":"trade"}]', reason: 'not_an_object' },
  { name: 'JSON string', data: '"trade"', reason: 'not_an_object' },
  { name: 'JSON null', data: 'null', reason: 'not_an_object' },
  { name: 'no type', data: '{"data":[]}', reason: 'missing_type' },
  { name: 'numeric type', data: '{"type":5,"data":[]}', reason: 'missing_type' },
  { name: 'data missing', data: '{"type":"trade"}', reason: 'bad_data' },
  { name: 'data an object', data: '{"type":"trade","data":{"s":"AAPL"}}', reason: 'bad_data' },
  { name: 'data null', data: '{"type":"trade","data":null}', reason: 'bad_data' }
]

const CORPUS_BASE = 1_700_000_000_000

/** The bad-trade corpus for trades received at `NOW` (timestamps are relative to it). */
export function badTrades (NOW: number): BadTrade[] {
  return [
    bad('trade is a number', 42, 'not_an_object'),
    bad('trade is null', null, 'not_an_object'),
    bad('trade is a list', ['AAPL', 1], 'not_an_object'),
    bad('symbol missing', { p: 1, t: NOW, v: 1 }, 'bad_symbol'),
    bad('symbol a number', { s: 7, p: 1, t: NOW, v: 1 }, 'bad_symbol'),
    bad('symbol empty', { s: '', p: 1, t: NOW, v: 1 }, 'bad_symbol'),
    bad('symbol with spaces', { s: 'AA PL', p: 1, t: NOW, v: 1 }, 'bad_symbol'),
    bad('symbol too long', { s: 'A'.repeat(100), p: 1, t: NOW, v: 1 }, 'bad_symbol'),
    bad('price a string', { s: 'AAPL', p: '187.1', t: NOW, v: 1 }, 'bad_price'),
    bad('price missing', { s: 'AAPL', t: NOW, v: 1 }, 'bad_price'),
    bad('price zero', { s: 'AAPL', p: 0, t: NOW, v: 1 }, 'bad_price'),
    bad('price negative', { s: 'AAPL', p: -1.5, t: NOW, v: 1 }, 'bad_price'),
    { name: 'price huge (Infinity once parsed)', json: `{"s":"AAPL","p":1e400,"t":${NOW},"v":1}`, reason: 'bad_price' },
    bad('price null', { s: 'AAPL', p: null, t: NOW, v: 1 }, 'bad_price'),
    bad('volume negative', { s: 'AAPL', p: 1, t: NOW, v: -1 }, 'bad_volume'),
    bad('volume a string', { s: 'AAPL', p: 1, t: NOW, v: '1' }, 'bad_volume'),
    bad('volume missing', { s: 'AAPL', p: 1, t: NOW }, 'bad_volume'),
    bad('timestamp in seconds', { s: 'AAPL', p: 1, t: NOW / 1000, v: 1 }, 'bad_timestamp'),
    bad('timestamp fractional', { s: 'AAPL', p: 1, t: NOW + 0.5, v: 1 }, 'bad_timestamp'),
    bad('timestamp far future', { s: 'AAPL', p: 1, t: NOW + 10 * 86_400_000, v: 1 }, 'bad_timestamp'),
    bad('timestamp huge', { s: 'AAPL', p: 1, t: 1e300, v: 1 }, 'bad_timestamp'),
    bad('timestamp a string', { s: 'AAPL', p: 1, t: String(NOW), v: 1 }, 'bad_timestamp'),
    bad('timestamp missing', { s: 'AAPL', p: 1, v: 1 }, 'bad_timestamp'),
    bad('conditions a string', { s: 'AAPL', p: 1, t: NOW, v: 1, c: '1' }, 'bad_conditions'),
    bad('conditions with an object', { s: 'AAPL', p: 1, t: NOW, v: 1, c: [{}] }, 'bad_conditions'),
    bad('conditions too many', { s: 'AAPL', p: 1, t: NOW, v: 1, c: Array.from({ length: 100 }, () => '1') }, 'bad_conditions')
  ]
}

/** Receive time that makes BAD_TRADES' timestamps sane. */
export const CORPUS_NOW = CORPUS_BASE
export const BAD_TRADES: BadTrade[] = badTrades(CORPUS_BASE)
