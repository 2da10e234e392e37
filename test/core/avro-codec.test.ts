// Avro framing: single-object encoding with the spec's CRC-64-AVRO fingerprint, the
// Confluent wire format, and poison detection on decode.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import avro from 'avsc'
import { rabinFingerprint64, singleObjectFingerprint, TradeDecoder, TradeEncoder } from '../../daemon/core/avro-codec.js'
import { type TradeRecord } from '../../daemon/core/trade-schema.js'
import { loadTradeType, SCHEMAS_DIR } from '../../daemon/paths.js'

const type = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
const trade: TradeRecord = { s: 'BINANCE:BTCUSDT', p: 7296.89, t: 1575526691134, v: 0.011467, c: ['1'], ingest_ts: 1575526691140, ordinal: 1 }
const fingerprintHex = singleObjectFingerprint(type).toString('hex')
const decoder = new TradeDecoder(type, { byFingerprint: new Map([[fingerprintHex, type]]), bySchemaId: new Map([[7, type]]) })

t.test('the Rabin fingerprint matches the Avro specification test vectors', async t => {
  // From Avro's schema-tests: canonical "null", "boolean", "int" and their 64-bit fingerprints.
  t.equal(BigInt.asIntN(64, rabinFingerprint64(Buffer.from('"null"'))), 7195948357588979594n)
  t.equal(BigInt.asIntN(64, rabinFingerprint64(Buffer.from('"boolean"'))), -6970731678124411036n)
  t.equal(BigInt.asIntN(64, rabinFingerprint64(Buffer.from('"int"'))), 8247732601305521295n)
  t.equal(singleObjectFingerprint(avro.Type.forSchema('null')).readBigInt64LE(), 7195948357588979594n, 'stored little-endian')
})

t.test('single-object encoding: C3 01, fingerprint, body; round-trips', async t => {
  const encoder = new TradeEncoder(type, { kind: 'single-object' })
  const buf = encoder.encode(trade)
  t.same([...buf.subarray(0, 2)], [0xc3, 0x01])
  t.equal(buf.toString('hex', 2, 10), fingerprintHex)
  t.same(buf.subarray(10), type.toBuffer(trade), 'the body is plain Avro binary')
  t.same(decoder.decode(buf), { ok: true, trade })
})

t.test('Confluent wire format: 00, big-endian schema id, body; round-trips', async t => {
  const encoder = new TradeEncoder(type, { kind: 'confluent', schemaId: 7 })
  const buf = encoder.encode(trade)
  t.equal(buf[0], 0)
  t.equal(buf.readUInt32BE(1), 7)
  t.same(decoder.decode(buf), { ok: true, trade })
})

t.test('encodeView reuses one buffer and grows it for a large record', async t => {
  const encoder = new TradeEncoder(type, { kind: 'single-object' })
  const a = encoder.encodeView(trade)
  const copy = Buffer.from(a)
  const b = encoder.encodeView({ ...trade, s: 'AAPL' })
  t.equal(a.buffer, b.buffer, 'same backing memory')
  t.not(Buffer.compare(copy, a), 0, 'the earlier view was overwritten: callers must copy or hand it to a copying producer')
  const big = { ...trade, c: Array.from({ length: 20_000 }, (_, i) => `c${i}`) }
  const grown = encoder.encode(big)
  t.same(decoder.decode(grown), { ok: true, trade: big })
  t.same(decoder.decode(encoder.encode(trade)), { ok: true, trade }, 'small records still encode after growing')
})

t.test('poison records are named, never thrown', async t => {
  const good = new TradeEncoder(type, { kind: 'single-object' }).encode(trade)
  const cases: Array<[string, Buffer | null, string, RegExp]> = [
    ['null value', null, 'empty', /no value/],
    ['empty value', Buffer.alloc(0), 'empty', /no value/],
    ['JSON text', Buffer.from('{"s":"AAPL"}'), 'unknown_framing', /first byte 0x7b is neither/],
    ['short single-object header', Buffer.from([0xc3, 0x01, 1, 2]), 'truncated', /needs 10 bytes, record has 4/],
    ['short Confluent header', Buffer.from([0x00, 0, 0]), 'truncated', /needs 5 bytes, record has 3/],
    ['unknown fingerprint', Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 0xab), good.subarray(10)]), 'unknown_schema', /fingerprint abababababababab/],
    ['unknown schema id', Buffer.concat([Buffer.from([0, 0, 0, 0, 99]), good.subarray(10)]), 'unknown_schema', /schema id 99/],
    ['truncated body', good.subarray(0, good.length - 3), 'invalid_body', /truncated/],
    ['trailing bytes', Buffer.concat([good, Buffer.from([1, 2])]), 'invalid_body', /2 trailing bytes/],
    ['garbage body', Buffer.concat([good.subarray(0, 10), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]), 'invalid_body', /./]
  ]
  for (const [name, value, reason, detail] of cases) {
    const result = decoder.decode(value)
    t.equal(result.ok, false, name)
    if (!result.ok) {
      t.equal(result.reason, reason, `${name}: ${reason}`)
      t.match(result.detail, detail, `${name}: detail`)
    }
  }
})

t.test('an older writer schema is resolved to the current reader', async t => {
  const current = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'trade.avsc'), 'utf8')) as { fields: Array<{ name: string }> }
  const v1 = avro.Type.forSchema({ ...current, fields: current.fields.filter(f => f.name !== 'c') } as avro.Schema)
  const reader = loadTradeType(join(SCHEMAS_DIR, 'trade.avsc'))
  const fp = singleObjectFingerprint(v1).toString('hex')
  const dec = new TradeDecoder(reader, { byFingerprint: new Map([[fp, v1]]), bySchemaId: new Map() })
  const { c: _dropped, ...rest } = trade
  const buf = new TradeEncoder(v1, { kind: 'single-object' }).encode({ ...rest } as unknown as TradeRecord)
  t.same(dec.decode(buf), { ok: true, trade: { ...trade, c: null } }, 'a field missing in the writer takes its default')
  t.same(dec.decode(buf), { ok: true, trade: { ...trade, c: null } }, 'the resolver is cached and reused')
})

t.test('bounded block reads: maps and skipped fields too, valid ones exactly as avsc reads them, lying counts refused at once', async t => {
  const withMap = avro.Type.forSchema({
    type: 'record',
    name: 'M',
    fields: [{ name: 'm', type: { type: 'map', values: 'string' } }, { name: 'a', type: { type: 'array', items: 'long' } }]
  })
  const value = { m: { x: '1', y: 'two' }, a: [1, 2, 3] }
  const buf = withMap.toBuffer(value)
  t.same(withMap.fromBuffer(buf), value, 'a valid map and array read as before')
  // A map block that claims 100,000,000 entries in a few bytes: refused as truncated, not read item by item.
  const lying = Buffer.concat([Buffer.from([0x80, 0xc2, 0xd7, 0x2f]), Buffer.from([0x02, 0x78, 0x02, 0x31])])
  // (Unbounded, this read 100,000,000 entries and ran past the test's timeout.)
  t.throws(() => withMap.fromBuffer(lying), 'the decode fails')
  // A writer with fields the reader lacks: the resolver skips them (the skippers are bounded too).
  const writer = avro.Type.forSchema({
    type: 'record',
    name: 'M',
    fields: [{ name: 'm', type: { type: 'map', values: 'string' } }, { name: 'a', type: { type: 'array', items: 'long' } }, { name: 'extra', type: { type: 'array', items: 'string' } }, { name: 'extraMap', type: { type: 'map', values: 'long' } }]
  })
  const reader = avro.Type.forSchema({ type: 'record', name: 'M', fields: [{ name: 'm', type: { type: 'map', values: 'string' } }, { name: 'a', type: { type: 'array', items: 'long' } }] })
  const resolver = reader.createResolver(writer)
  const written = writer.toBuffer({ ...value, extra: ['p', 'q'], extraMap: { k: 5 } })
  t.same(reader.fromBuffer(written, resolver), value, 'skipped fields skip exactly')
  // Skipped blocks with a byte size (negative count) and a lying size or count.
  const head = writer.toBuffer({ ...value, extra: [], extraMap: {} }).subarray(0, buf.length)
  for (const [what, tail] of [
    ['a negative byte size', Buffer.from([0x03, 0x01])],
    ['a lying item count', Buffer.from([0x80, 0xc2, 0xd7, 0x2f, 0x02, 0x61])],
    ['a sized block past the end', Buffer.from([0x03, 0xfe, 0xff, 0x07])]
  ] as const) {
    t.throws(() => reader.fromBuffer(Buffer.concat([head, tail]), resolver), `${what}: refused`)
  }
})
