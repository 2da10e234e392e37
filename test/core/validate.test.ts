// The one trade validator and the bounded log text of untrusted values.
import t from 'tap'
import { parseFrame } from '../../daemon/core/frame.js'
import { checkDecodedTrade, MAX_FUTURE_SKEW_MS, MAX_PRICE, MAX_VOLUME, MIN_TRADE_TS, show, SYMBOL_PATTERN } from '../../daemon/core/validate.js'

const now = Date.UTC(2024, 4, 1, 12)
const good = { s: 'BINANCE:BTCUSDT', p: 7296.89, t: now - 50, v: 0.5, c: ['1', '12'], ingest_ts: now - 10, ordinal: 0 }

t.test('a good decoded trade passes; each bad field is named', async t => {
  t.equal(checkDecodedTrade(good, now), null)
  t.equal(checkDecodedTrade({ ...good, c: null, v: 0 }, now), null, 'null conditions and a v = 0 price update are fine')
  t.equal(checkDecodedTrade({ ...good, p: MAX_PRICE, v: MAX_VOLUME }, now), null, 'the upper bounds are inclusive')
  t.equal(checkDecodedTrade({ ...good, p: 5e-324 }, now), null, 'a tiny positive price is a price')
  t.ok(Number.isFinite(MAX_PRICE * MAX_VOLUME * 1e6), 'a million trades at the bounds in one minute still sum to a finite notional')
  t.equal(checkDecodedTrade({ ...good, t: MIN_TRADE_TS, ingest_ts: MIN_TRADE_TS }, now), null, 'the lower bound is inclusive')
  t.equal(checkDecodedTrade({ ...good, t: good.ingest_ts + MAX_FUTURE_SKEW_MS }, now), null, 'up to the skew past ingest time')
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ s: 42 }, 's', 'bad_symbol'], [{ s: 'x'.repeat(65) }, 's', 'bad_symbol'], [{ s: ' AAPL' }, 's', 'bad_symbol'],
    [{ p: '1' }, 'p', 'bad_price'], [{ p: -0 }, 'p', 'bad_price'], [{ v: -Infinity }, 'v', 'bad_volume'],
    // Finite, but a candle's notional of them is not: p × v overflows to Infinity.
    [{ p: 1e308 }, 'p', 'bad_price'], [{ p: MAX_PRICE * 1.0001 }, 'p', 'bad_price'], [{ v: 1e300 }, 'v', 'bad_volume'], [{ v: MAX_VOLUME * 2 }, 'v', 'bad_volume'],
    [{ t: 1.5 + now }, 't', 'bad_timestamp'], [{ t: MIN_TRADE_TS - 1 }, 't', 'bad_timestamp'], [{ t: good.ingest_ts + MAX_FUTURE_SKEW_MS + 1 }, 't', 'bad_timestamp'],
    [{ ingest_ts: now + MAX_FUTURE_SKEW_MS + 1 }, 'ingest_ts', 'bad_ingest_ts'], [{ ingest_ts: Number.NaN }, 'ingest_ts', 'bad_ingest_ts'],
    [{ ordinal: 0.5 }, 'ordinal', 'bad_ordinal'], [{ ordinal: 2_000_000 }, 'ordinal', 'bad_ordinal'],
    [{ c: [1, 2] }, 'c', 'bad_conditions'], [{ c: 'x' }, 'c', 'bad_conditions']
  ]
  for (const [patch, field, reason] of cases) {
    const problem = checkDecodedTrade({ ...good, ...patch }, now)
    t.same(problem === null ? null : [problem.field, problem.reason], [field, reason], `${JSON.stringify(patch)?.slice(0, 40)} → ${field}`)
  }
})

t.test('the symbol pattern: Finnhub spellings in, control characters and overlong names out', async t => {
  for (const s of ['AAPL', 'BINANCE:BTCUSDT', 'OANDA:EUR_USD', 'BRK.B', 'IC MARKETS:1'.replace(' ', '_'), 'X'.repeat(64)]) t.ok(SYMBOL_PATTERN.test(s), s)
  for (const s of ['', ':AAPL', 'AA PL', 'AAPL\n', 'AAPL\u0000', 'X'.repeat(65), 'ÄPFEL']) t.notOk(SYMBOL_PATTERN.test(s), JSON.stringify(s))
})

t.test('show() is bounded and never recurses, whatever the value', async t => {
  let deep: unknown = 1
  for (let i = 0; i < 200_000; i++) deep = [deep]
  t.equal(show(deep), '[[…1]]')
  let deepObject: unknown = {}
  for (let i = 0; i < 200_000; i++) deepObject = { a: deepObject }
  t.equal(show(deepObject), '{"a":{…}}')
  t.equal(show(undefined), 'nothing')
  t.equal(show(Number.NaN), 'NaN')
  t.equal(show(10n), '10')
  t.equal(show(() => 1), 'function')
  t.ok(show('x'.repeat(10_000)).length <= 80)
  t.ok(show(Array.from({ length: 1000 }, () => 'y'.repeat(50))).length <= 80)
  t.match(show({ a: 1, b: 2, c: 3, d: 4, e: 5 }), /…\(5 keys\)/)
  const cyclic: Record<string, unknown> = {}
  cyclic['self'] = cyclic
  t.equal(show(cyclic), '{"self":{…}}')
})

t.test('regression: a deeply nested frame is dropped as malformed, it does not crash (was RangeError from the log detail)', async t => {
  const depth = 100_000
  const frames = [
    '['.repeat(depth) + ']'.repeat(depth),
    `{"type":"trade","data":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    `{"type":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    `{"type":"error","msg":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    `{"type":"trade","data":[{"s":${'['.repeat(depth)}${']'.repeat(depth)},"p":1,"t":${now},"v":1}]}`
  ]
  const kinds = frames.map(f => {
    const parsed = parseFrame(f, false, now, { keepZeroVolume: true, maxFutureSkewMs: MAX_FUTURE_SKEW_MS })
    return parsed.kind === 'malformed' ? `malformed:${parsed.reason}` : parsed.kind === 'trades' ? `trades:${parsed.trades.length}/${parsed.rejected.map(r => r.reason).join()}` : parsed.kind
  })
  t.same(kinds, ['malformed:not_an_object', 'trades:0/not_an_object', 'malformed:missing_type', 'error', 'trades:0/bad_symbol'])
})
