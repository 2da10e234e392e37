// Property-based tests of parseFrame on hostile frames (issue 16): arbitrary JSON
// values and fc.anything() serialized, and frames built to hit the edges — trade
// frames mixing good and bad trades with many duplicates (both ordinal paths, ≤ 64
// and > 64 trades), nesting thousands of levels deep (built as text, so neither the
// generator nor the check recurses), extreme number texts, unicode and lone
// surrogates, long strings, duplicate keys, extra fields, every shape of "c", binary
// frames, invalid UTF-8 and truncated text. Whatever comes in, parseFrame answers
// without throwing; what it keeps is a valid trade; what it drops is counted with a
// short, single-line detail; identical trades get ordinals 0, 1, 2… and no two kept
// trades of a frame share a trade id. Fixed seeds, bounded runs (FINNHUBD_FUZZ_RUNS
// multiplies them for a longer local hunt).
import t from 'tap'
import fc from 'fast-check'
import { FRAME_REJECT_REASONS, parseFrame, TRADE_REJECT_REASONS, type FrameOptions, type ParsedFrame } from '../../daemon/core/frame.js'
import { tradeId, tradeIdName } from '../../daemon/core/transform.js'
import { checkDecodedTrade, checkPrice, checkSymbol, checkTradeTs, checkVolume, parseConditions } from '../../daemon/core/validate.js'
import { holds, runs } from '../fixtures/fuzz.js'

const SEED = 160601

const NOW = Date.UTC(2026, 11, 1, 12)
const OPTIONS: FrameOptions[] = [
  { keepZeroVolume: true, maxFutureSkewMs: 86_400_000 },
  { keepZeroVolume: false, maxFutureSkewMs: 0 }
]

// ---- generators --------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map(c => String.fromCharCode(c))
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  loneSurrogate,
  fc.constantFrom('', 'AAPL', 'BINANCE:BTCUSDT', 'aapl', ' AAPL', 'AAPL\n', 'A\u0000', 'ÄPFEL', '\u2028', '\ufeff', 'X'.repeat(64), 'X'.repeat(65), '1', '12', '-', 'x'.repeat(17)),
  fc.integer({ min: 100, max: 100_000 }).map(n => 'y'.repeat(n))
)
const goodSymbol = fc.constantFrom('AAPL', 'BINANCE:BTCUSDT', 'OANDA:EUR_USD', 'BRK.B', 'X'.repeat(64))
const goodPrice = fc.oneof(fc.constantFrom(1, 187.12, 5e-324, 1.7976931348623157e308, 0.1), fc.double({ min: Number.MIN_VALUE, max: 1e12, noNaN: true }))
const goodVolume = fc.oneof(fc.constantFrom(0, -0, 1, 0.011467, 5e-324), fc.double({ min: 0, max: 1e9, noNaN: true }))
const goodTs = fc.oneof(fc.constantFrom(NOW, NOW - 1, Date.UTC(2000, 0, 1)), fc.integer({ min: Date.UTC(2000, 0, 1), max: NOW }))
const goodConditions = fc.oneof(
  fc.constantFrom(null, undefined, [], [''], ['1'], [1], ['1', '12'], [12, '1'], ['', ''], ['x'.repeat(16)], Array.from({ length: 64 }, (_, i) => String(i))),
  fc.array(fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 4 }), fc.integer({ min: -1000, max: 1000 })), { maxLength: 5 })
)
/** Values no field accepts: wrong types, non-finite or negative numbers, nested junk. */
const junk = fc.oneof(
  fc.constantFrom(null, true, false, 0, -0, -1, 1.5, 1e21, Number.MAX_SAFE_INTEGER + 2, '1', '', [], {}, [null], [[]], { s: 'AAPL' }),
  hostileString,
  fc.jsonValue({ maxDepth: 3 })
)
const field = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: junk })

/** One entry of `data`: mostly trade-shaped objects (some fields bad or absent, extra fields), sometimes anything. */
const tradeEntry: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      s: field(goodSymbol),
      p: field(goodPrice),
      t: field(goodTs),
      v: field(goodVolume),
      c: field(goodConditions),
      extra: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })
    }, { requiredKeys: [] })
  },
  { weight: 1, arbitrary: junk }
)

/** A trade frame whose entries repeat: identical trades (and near-identical ones) are common. */
const tradeFrame = fc.tuple(
  fc.array(tradeEntry, { minLength: 1, maxLength: 8 }),
  fc.array(fc.nat(), { maxLength: 150 }),
  fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), { nil: undefined })
).map(([pool, picks, extra]) => JSON.stringify({ ...extra, type: 'trade', data: picks.map(i => pool[i % pool.length]) }))

/** Nesting thousands of levels deep, as text (neither this generator nor JSON.stringify recurses over it). */
const deep = fc.tuple(fc.integer({ min: 1, max: 120_000 }), fc.constantFrom('[', '{"a":'), fc.boolean()).map(([n, open, closed]) => {
  const close = open === '[' ? ']' : '}'
  return open.repeat(n) + '1' + (closed ? close.repeat(n) : close.repeat(Math.floor(n / 2)))
})
const deepFrame = fc.tuple(deep, fc.constantFrom('frame', 'data', 'trade', 'c', 'p', 'type', 'msg')).map(([nest, where]) => {
  switch (where) {
    case 'frame': return nest
    case 'data': return `{"type":"trade","data":${nest}}`
    case 'trade': return `{"type":"trade","data":[${nest}]}`
    case 'c': return `{"type":"trade","data":[{"s":"AAPL","p":1,"t":${NOW},"v":1,"c":${nest}}]}`
    case 'p': return `{"type":"trade","data":[{"s":"AAPL","p":${nest},"t":${NOW},"v":1}]}`
    case 'type': return `{"type":${nest}}`
    default: return `{"type":"error","msg":${nest}}`
  }
})

/** Number texts JSON.parse turns into edge values: overflow to Infinity, underflow to 0, -0, subnormals, huge integers. */
const numberText = fc.oneof(
  fc.constantFrom('1e308', '-1e308', '1e400', '-1e400', '5e-324', '1e-400', '-0', '0', '-0.0', '0e0', '1E2', '9007199254740993', '1700000000000.5',
    '123456789012345678901234567890', '0.' + '0'.repeat(400) + '1', '1' + '0'.repeat(400), String(NOW), String(NOW + 86_400_001)),
  fc.double().filter(Number.isFinite).map(String)
)
const numberFrame = fc.tuple(numberText, numberText, numberText, numberText).map(([p, t, v, c]) =>
  `{"type":"trade","data":[{"s":"AAPL","p":${p},"t":${t},"v":${v},"c":[${c}]},{"s":"AAPL","p":1,"t":${t},"v":${v}}]}`)

/** Raw text with duplicate keys: JSON.parse keeps the last one. */
const duplicateKeyFrame = fc.constantFrom(
  '{"type":"ping","type":"trade","data":[{"s":"AAPL","p":1,"t":' + NOW + ',"v":1}]}',
  '{"type":"trade","type":"ping"}',
  '{"type":"trade","data":[],"data":[{"s":"AAPL","p":1,"t":' + NOW + ',"v":1}]}',
  '{"type":"trade","data":[{"s":"AAPL","s":"MSFT","p":1,"p":-1,"t":' + NOW + ',"v":1}]}',
  '{"type":"trade","data":[{"s":"AAPL","p":1,"t":' + NOW + ',"v":1,"c":null,"c":["1"]}]}',
  '{"__proto__":{"type":"trade"},"type":"trade","data":[{"__proto__":{"s":"AAPL"},"p":1,"t":' + NOW + ',"v":1}]}',
  '{"type":"trade","data":[{"s":"AAPL","p":1,"t":' + NOW + ',"v":1,"constructor":1,"toString":2}]}'
)

/** Strings with raw lone surrogates and escapes inside an otherwise good frame. */
const unicodeFrame = fc.tuple(hostileString, hostileString, fc.constantFrom('\\ud800', '\\udfff', '\\ud83d\\ude00', '\\u0000', '\\u2028', '\\n')).map(([s, code, escape]) =>
  `{"type":"trade","data":[{"s":${JSON.stringify(s)},"p":1,"t":${NOW},"v":1,"c":[${JSON.stringify(code)},"${escape}"]},{"s":"A${escape}","p":1,"t":${NOW},"v":1}],"x":"${escape}"}`)

/** `c` in every shape. */
const conditionsFrame = fc.oneof(junk, goodConditions, fc.array(junk, { maxLength: 70 })).map(c =>
  `{"type":"trade","data":[{"s":"AAPL","p":1,"t":${NOW},"v":1${c === undefined ? '' : `,"c":${JSON.stringify(c)}`}}]}`)

const knownTypeFrame = fc.tuple(fc.constantFrom('ping', 'error', 'news', 'trade', '', 'TRADE', 'x'.repeat(500), 'a\nb'), junk).map(([type, value]) =>
  JSON.stringify({ type, msg: value, data: value }))

const anythingText = fc.anything({ maxDepth: 4 }).map(value => {
  try {
    return JSON.stringify(value) ?? 'undefined'
  } catch {
    return String(typeof value)
  }
})

const textFrame: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue().map(v => JSON.stringify(v)),
  anythingText, tradeFrame, tradeFrame, deepFrame, numberFrame, duplicateKeyFrame, unicodeFrame, conditionsFrame, knownTypeFrame,
  // Truncated text: a frame cut anywhere.
  fc.tuple(tradeFrame, fc.nat()).map(([text, n]) => text.slice(0, n % (text.length + 1))),
  fc.string({ unit: 'binary', maxLength: 200 })
)

interface Input { data: string | Buffer, isBinary: boolean }
const input: fc.Arbitrary<Input> = fc.oneof(
  { weight: 6, arbitrary: textFrame.map(data => ({ data, isBinary: false })) },
  // The same text as a Buffer, sometimes with bytes that are not UTF-8 spliced in.
  {
    weight: 2,
    arbitrary: fc.tuple(textFrame, fc.uint8Array({ maxLength: 8 }), fc.nat()).map(([text, bytes, at]) => {
      const buf = Buffer.from(text, 'utf8')
      const cut = at % (buf.length + 1)
      return { data: Buffer.concat([buf.subarray(0, cut), Buffer.from(bytes), buf.subarray(cut)]), isBinary: false }
    })
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map(b => ({ data: Buffer.from(b), isBinary: false })) },
  { weight: 1, arbitrary: fc.oneof(textFrame.map(s => Buffer.from(s)), fc.uint8Array({ maxLength: 300 }).map(b => Buffer.from(b))).map(data => ({ data, isBinary: true })) }
)

// ---- the properties ----------------------------------------------------------

/** A log detail: short and on one line, whatever the input held. */
function checkDetail (detail: unknown, what: string): void {
  if (typeof detail !== 'string') throw new Error(`${what}: detail is not a string`)
  if (detail.length > 300) throw new Error(`${what}: detail is ${detail.length} characters: ${detail.slice(0, 120)}`)
  // Line breaks to some reader (C0 controls, NEL, U+2028, U+2029) would split the log line.
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  if (/[\u0000-\u001f\u0085\u2028\u2029]/.test(detail)) throw new Error(`${what}: detail is not single-line: ${JSON.stringify(detail.slice(0, 200))}`)
}

/** What the frame's own `data` is, parsed independently (undefined when it is not a trade frame with a list). */
function dataLength (data: string | Buffer, isBinary: boolean): number | undefined {
  if (isBinary) return undefined
  try {
    const msg = JSON.parse(typeof data === 'string' ? data : data.toString('utf8')) as unknown
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return undefined
    const frame = msg as Record<string, unknown>
    return frame['type'] === 'trade' && Array.isArray(frame['data']) ? frame['data'].length : undefined
  } catch {
    return undefined
  }
}

function checkFrame ({ data, isBinary }: Input, options: FrameOptions): ParsedFrame {
  let parsed: ParsedFrame
  try {
    parsed = parseFrame(data, isBinary, NOW, options)
  } catch (err) {
    throw new Error(`parseFrame threw: ${String(err)}`)
  }
  const expectedEntries = dataLength(data, isBinary)
  switch (parsed.kind) {
    case 'malformed':
      if (!FRAME_REJECT_REASONS.includes(parsed.reason) || parsed.reason === 'internal') throw new Error(`bad frame reason ${parsed.reason}`)
      if (isBinary !== (parsed.reason === 'binary')) throw new Error(`binary=${isBinary} but reason ${parsed.reason}`)
      if (expectedEntries !== undefined) throw new Error(`a trade frame with ${expectedEntries} entries was called malformed (${parsed.reason})`)
      checkDetail(parsed.detail, `malformed ${parsed.reason}`)
      break
    case 'other':
      if (typeof parsed.type !== 'string' || parsed.type.length > 40) throw new Error(`other type is ${parsed.type.length} characters`)
      break
    case 'error':
      if (typeof parsed.message !== 'string') throw new Error('error frame message is not a string')
      break
    case 'ping':
      break
    case 'trades': {
      const { trades, rejected } = parsed
      if (expectedEntries === undefined) throw new Error('trades from something that is not a trade frame with a list')
      if (trades.length + rejected.length !== expectedEntries) {
        throw new Error(`kept ${trades.length} + rejected ${rejected.length} ≠ ${expectedEntries} entries`)
      }
      for (const r of rejected) {
        if (!TRADE_REJECT_REASONS.includes(r.reason)) throw new Error(`bad trade reason ${r.reason}`)
        checkDetail(r.detail, `trade reject ${r.reason}`)
      }
      const counts = new Map<string, number>()
      const ids = new Set<string>()
      for (const trade of trades) {
        const problem = checkSymbol(trade.s) ?? checkPrice(trade.p) ?? checkVolume(trade.v) ?? checkTradeTs(trade.t, NOW + options.maxFutureSkewMs)
        if (problem !== null) throw new Error(`kept a trade the validator refuses: ${problem.detail}`)
        const conditions = parseConditions(trade.c)
        if (!conditions.ok) throw new Error(`kept conditions the validator refuses: ${conditions.problem.detail}`)
        if (trade.c !== null && trade.c.some(code => typeof code !== 'string')) throw new Error('kept a condition code that is not text')
        if (trade.ingest_ts !== NOW) throw new Error('ingest_ts is not the receive time')
        const decoded = checkDecodedTrade(trade, NOW, Math.max(options.maxFutureSkewMs, 0))
        if (decoded !== null) throw new Error(`the process role would refuse a kept trade: ${decoded.field} ${decoded.detail}`)
        if (!options.keepZeroVolume && trade.v === 0) throw new Error('kept v = 0 with keepZeroVolume false')
        // Identical means identical to the trade id: the same name but for the ordinal.
        const key = tradeIdName({ ...trade, ordinal: 0 })
        const expected = counts.get(key) ?? 0
        if (trade.ordinal !== expected) throw new Error(`ordinal ${trade.ordinal}, expected ${expected} for ${JSON.stringify(key)}`)
        counts.set(key, expected + 1)
        const id = tradeId(trade)
        if (ids.has(id)) throw new Error(`two kept trades of one frame share the trade id ${id} (${JSON.stringify(trade)})`)
        ids.add(id)
      }
      break
    }
    default:
      throw new Error(`unknown kind ${(parsed as { kind: string }).kind}`)
  }
  return parsed
}

t.test(`every frame gets an answer; kept trades are valid, drops counted, details one short line, ordinals consistent (${runs(1500)} inputs × 2 option sets)`, async t => {
  holds(t, fc.property(input, fc.constantFrom(...OPTIONS), (frame, options) => { checkFrame(frame, options) }), { seed: SEED, numRuns: runs(1500) })
})

t.test(`trade frames of mixed good and bad trades: every entry is kept or rejected, once (${runs(600)} inputs)`, async t => {
  holds(t, fc.property(tradeFrame, fc.constantFrom(...OPTIONS), (text, options) => {
    const parsed = checkFrame({ data: text, isBinary: false }, options)
    if (parsed.kind !== 'trades') throw new Error(`a trade frame came out as ${parsed.kind}`)
  }), { seed: SEED + 1, numRuns: runs(600) })
})

t.test(`nesting up to 120,000 levels deep anywhere in a frame: an answer, no stack overflow (${runs(60)} inputs)`, async t => {
  holds(t, fc.property(deepFrame, fc.boolean(), (text, asBuffer) => {
    checkFrame({ data: asBuffer ? Buffer.from(text) : text, isBinary: false }, OPTIONS[0] as FrameOptions)
  }), { seed: SEED + 2, numRuns: runs(60) })
})

// Regression cases the properties found (see the fix comments in daemon/core/frame.ts).
t.test('regression: a JSON syntax error\'s detail stays on one line (V8 quotes the raw text, newlines included)', async t => {
  const parsed = parseFrame('{"type":"trade",\n"data":[\nx', false, NOW, OPTIONS[0] as FrameOptions)
  t.equal(parsed.kind, 'malformed')
  if (parsed.kind === 'malformed') {
    t.equal(parsed.reason, 'invalid_json')
    t.notMatch(parsed.detail, /\n/)
    t.ok(parsed.detail.length <= 300)
  }
})

t.test('regression: c = [] and c = [""] make the same trade id, so in one frame they get ordinals 0 and 1', async t => {
  const frame = JSON.stringify({ type: 'trade', data: [{ s: 'AAPL', p: 1, t: NOW, v: 1, c: [] }, { s: 'AAPL', p: 1, t: NOW, v: 1, c: [''] }] })
  const parsed = parseFrame(frame, false, NOW, OPTIONS[0] as FrameOptions)
  t.equal(parsed.kind, 'trades')
  if (parsed.kind !== 'trades') return
  t.same(parsed.trades.map(tr => tr.ordinal), [0, 1], 'the same as a frame of more than 64 trades numbers them')
  t.not(tradeId(parsed.trades[0]!), tradeId(parsed.trades[1]!), 'two rows, not one overwriting the other')
})

t.test('regression: a value holding U+2028 (a line break to JavaScript and YAML) is escaped in a detail', async t => {
  const parsed = parseFrame('{"type":"trade","data":["\u2028",{"s":"A\u2029","p":1,"t":1,"v":1}]}', false, NOW, OPTIONS[0] as FrameOptions)
  t.equal(parsed.kind, 'trades')
  if (parsed.kind !== 'trades') return
  t.equal(parsed.rejected.length, 2)
  for (const r of parsed.rejected) t.notMatch(r.detail, /[\u2028\u2029]/, r.reason)
  t.match(parsed.rejected[0]?.detail, /\\u2028/)
})
