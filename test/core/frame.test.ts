// Finnhub frame parsing: classification, per-trade validation with reasons, ordinals.
import t from 'tap'
import { parseFrame, identityKey, type FrameOptions } from '../../daemon/core/frame.js'
import { BAD_FRAMES, BAD_TRADES, CORPUS_NOW } from '../fixtures/frame-corpus.js'

const opts: FrameOptions = { keepZeroVolume: true, maxFutureSkewMs: 86_400_000 }
const now = CORPUS_NOW

t.test('a trade frame yields its trades renamed nowhere, stamped with ingest time', async t => {
  const frame = '{"type":"trade","data":[{"s":"BINANCE:BTCUSDT","p":7296.89,"t":1699999999134,"v":0.011467,"c":["1"]},' +
    '{"s":"AAPL","p":187.12,"t":1699999999123,"v":100,"c":null},{"s":"MSFT","p":300,"t":1699999999000,"v":0}]}'
  const parsed = parseFrame(frame, false, now, opts)
  t.same(parsed, {
    kind: 'trades',
    rejected: [],
    trades: [
      { s: 'BINANCE:BTCUSDT', p: 7296.89, t: 1699999999134, v: 0.011467, c: ['1'], ingest_ts: now, ordinal: 0 },
      { s: 'AAPL', p: 187.12, t: 1699999999123, v: 100, c: null, ingest_ts: now, ordinal: 0 },
      { s: 'MSFT', p: 300, t: 1699999999000, v: 0, c: null, ingest_ts: now, ordinal: 0 }
    ]
  }, 'c null and c absent both become null; v = 0 kept by default')
  t.same(parseFrame(Buffer.from('{"type":"trade","data":[]}'), false, now, opts), { kind: 'trades', trades: [], rejected: [] }, 'a Buffer text frame and empty data are fine')
})

t.test('numeric condition codes are kept as text', async t => {
  const parsed = parseFrame(`{"type":"trade","data":[{"s":"AAPL","p":1,"t":${now},"v":1,"c":[1,"12"]}]}`, false, now, opts)
  t.equal(parsed.kind, 'trades')
  if (parsed.kind === 'trades') t.same(parsed.trades[0]?.c, ['1', '12'])
})

t.test('identical trades in one frame get ordinals 0, 1, 2…; different ones stay 0', async t => {
  const same = { s: 'AAPL', p: 187.12, t: now - 5, v: 100, c: ['1'] }
  const frame = JSON.stringify({
    type: 'trade',
    data: [same, same, { ...same, c: null }, same, { ...same, v: 101 }, { ...same, c: [] }, { ...same, c: null }]
  })
  const parsed = parseFrame(frame, false, now, opts)
  t.equal(parsed.kind, 'trades')
  if (parsed.kind !== 'trades') return
  t.same(parsed.trades.map(tr => tr.ordinal), [0, 1, 0, 2, 0, 0, 1], 'c null, c [] and c ["1"] are different trades')
  const again = parseFrame(JSON.stringify({ type: 'trade', data: [same] }), false, now + 1000, opts)
  t.equal(again.kind === 'trades' && again.trades[0]?.ordinal, 0, 'a re-sent trade in a later frame starts again at 0')
  t.not(identityKey({ s: 'A', p: 1, t: 2, v: 3, c: ['1', '2'] }), identityKey({ s: 'A', p: 1, t: 2, v: 3, c: ['12'] }), 'joins are unambiguous')
})

t.test('v = 0 updates are dropped with a reason when keepZeroVolume is off', async t => {
  const parsed = parseFrame(`{"type":"trade","data":[{"s":"AAPL","p":1,"t":${now},"v":0},{"s":"AAPL","p":1,"t":${now},"v":2}]}`,
    false, now, { ...opts, keepZeroVolume: false })
  t.equal(parsed.kind, 'trades')
  if (parsed.kind !== 'trades') return
  t.equal(parsed.trades.length, 1)
  t.same(parsed.rejected.map(r => r.reason), ['zero_volume'])
})

t.test('ping, error and other types are classified', async t => {
  t.same(parseFrame('{"type":"ping"}', false, now, opts), { kind: 'ping' })
  t.same(parseFrame('{"type":"error","msg":"Invalid symbol BINANCE:FOO"}', false, now, opts), { kind: 'error', message: 'Invalid symbol BINANCE:FOO' })
  t.same(parseFrame('{"type":"error","msg":{"code":1}}', false, now, opts), { kind: 'error', message: '{"code":1}' })
  t.same(parseFrame('{"type":"error"}', false, now, opts), { kind: 'error', message: 'nothing' })
  t.same(parseFrame('{"type":"news","data":[]}', false, now, opts), { kind: 'other', type: 'news' })
  t.same(parseFrame(JSON.stringify({ type: 'x'.repeat(100) }), false, now, opts), { kind: 'other', type: 'x'.repeat(40) }, 'type is shortened for metric labels')
})

t.test('every bad frame of the corpus is malformed with its reason and a useful detail', async t => {
  for (const bad of BAD_FRAMES) {
    const parsed = parseFrame(bad.data, bad.binary === true, now, opts)
    t.equal(parsed.kind, 'malformed', bad.name)
    if (parsed.kind === 'malformed') {
      t.equal(parsed.reason, bad.reason, `${bad.name}: reason`)
      t.ok(parsed.detail.length > 10 && parsed.detail.length < 300, `${bad.name}: detail "${parsed.detail}"`)
    }
  }
})

t.test('each bad trade of the corpus is dropped alone; the good trades around it go on', async t => {
  const good = (i: number): string => `{"s":"GOOD${i}","p":${i + 1},"t":${now - i},"v":1}`
  for (const bad of BAD_TRADES) {
    const parsed = parseFrame(`{"type":"trade","data":[${good(0)},${bad.json},${good(1)}]}`, false, now, opts)
    t.equal(parsed.kind, 'trades', bad.name)
    if (parsed.kind !== 'trades') continue
    t.same(parsed.trades.map(tr => tr.s), ['GOOD0', 'GOOD1'], `${bad.name}: good trades kept`)
    t.equal(parsed.rejected.length, 1, `${bad.name}: one reject`)
    t.equal(parsed.rejected[0]?.reason, bad.reason, `${bad.name}: reason ${bad.reason}`)
    t.match(parsed.rejected[0]?.detail, /^trade 1: /, `${bad.name}: detail names the trade`)
    t.ok((parsed.rejected[0]?.detail.length ?? 0) < 300, `${bad.name}: detail is short`)
  }
})

t.test('small and large frames give the same ordinals', async t => {
  const base = { s: 'AAPL', p: 1, t: now - 1, v: 1 }
  const variants = [base, { ...base, c: ['1'] }, { ...base, c: ['1', '2'] }, { ...base, c: ['12'] }, { ...base, v: 2 }, { ...base, c: [] }, { ...base, p: 2 }, { ...base, s: 'MSFT' }]
  const data = Array.from({ length: 300 }, (_, i) => variants[(i * 7) % variants.length])
  const large = parseFrame(JSON.stringify({ type: 'trade', data }), false, now, opts)
  const small = data.map((_, i) => i).filter(i => i < 60)
  const smallFrame = parseFrame(JSON.stringify({ type: 'trade', data: small.map(i => data[i]) }), false, now, opts)
  if (large.kind !== 'trades' || smallFrame.kind !== 'trades') { t.fail('not trades'); return }
  t.same(smallFrame.trades.map(tr => tr.ordinal), large.trades.slice(0, 60).map(tr => tr.ordinal), 'same ordinals for the same prefix')
  const counts = new Map<string, number>()
  const expected = large.trades.map(tr => {
    const key = identityKey(tr)
    counts.set(key, (counts.get(key) ?? 0) + 1)
    return (counts.get(key) ?? 0) - 1
  })
  t.same(large.trades.map(tr => tr.ordinal), expected, 'a large frame counts identical trades by content')
})
