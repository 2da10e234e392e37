// The shared Prometheus text reader: prom-client's own output round-trips (property),
// and malformed lines are skipped and reported, never thrown.
import t from 'tap'
import fc from 'fast-check'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { metricByLabel, metricSum, parsePromText, parsePromValue } from '../../tools/verify/prom-text.js'

const labelValue = fc.oneof(fc.string({ unit: 'grapheme' }), fc.constantFrom('"', '\\', '\n', '\\"', 'a\\nb', '}', ',x="y"', 'é€😀'))

t.test('every value prom-client writes reads back with its labels', async t => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.record({ v: labelValue, n: fc.oneof(fc.double({ noNaN: true, min: -1e12, max: 1e12 }), fc.constantFrom(NaN, Infinity, -Infinity, 0)) }), { minLength: 1, maxLength: 8 }),
    fc.array(fc.double({ noNaN: true, min: 0, max: 100 }), { maxLength: 5 }),
    async (series, observations) => {
      const registry = new Registry()
      const gauge = new Gauge({ name: 'g', help: 'a "gauge"\\ with\nnewline', labelNames: ['l', 'm'], registers: [registry] })
      const counter = new Counter({ name: 'c_total', help: 'c', labelNames: ['l'], registers: [registry] })
      const hist = new Histogram({ name: 'h', help: 'h', labelNames: ['l'], buckets: [1, 10], registers: [registry] })
      const expected = new Map<string, number>()
      // -0 is written as 0 (`${-0}`), so it is expected back as 0.
      for (const { v, n } of series) { gauge.set({ l: v, m: 'x' }, n); expected.set(v, n === 0 ? 0 : n) }
      for (const { v } of series) counter.inc({ l: v }, 1)
      for (const o of observations) hist.observe({ l: series[0]?.v ?? '' }, o)
      const parsed = parsePromText(await registry.metrics())
      t.same(parsed.errors, [])
      const gauges = parsed.samples.filter(s => s.name === 'g')
      t.equal(gauges.length, expected.size)
      for (const s of gauges) t.ok(Object.is(s.value, expected.get(s.labels['l'] as string)), 'gauge value')
      for (const [v, n] of expected) t.ok(Object.is(metricSum(await registry.metrics(), 'g', { l: v }), n))
      const counts = metricByLabel(await registry.metrics(), 'c_total', 'l')
      t.same(Object.keys(counts).sort(), [...expected.keys()].sort())
      if (observations.length > 0) {
        t.equal(metricSum(await registry.metrics(), 'h_count'), observations.length)
        t.equal(metricSum(await registry.metrics(), 'h_bucket', { le: '+Inf' }), observations.length)
      }
    }), { numRuns: 50 })
})

t.test('values, timestamps, comments', async t => {
  t.equal(parsePromValue('+Inf'), Infinity)
  t.equal(parsePromValue('-Inf'), -Infinity)
  t.ok(Number.isNaN(parsePromValue('NaN')))
  t.equal(parsePromValue('1.5e3'), 1500)
  t.equal(parsePromValue(''), undefined)
  const { samples, errors } = parsePromText('# HELP x h\n# TYPE x counter\nx{a="q\\"\\\\\\n"} 3 1700000000000\r\ny 4\n\n')
  t.same(errors, [])
  t.same(samples, [{ name: 'x', labels: { a: 'q"\\\n' }, value: 3, timestamp: 1700000000000 }, { name: 'y', labels: {}, value: 4 }])
})

t.test('malformed lines are skipped and reported, never thrown', async t => {
  const bad = ['x{a="b} 1', 'x{a=b} 1', 'x{a="b"', 'x 1 2 3', 'x abc', 'x', '1x 2', 'x{a="\\q"} 1', 'x{a="1",a="2"} 1', 'x 1 1.5']
  const { samples, errors } = parsePromText([...bad, 'ok 1'].join('\n'))
  t.same(samples, [{ name: 'ok', labels: {}, value: 1 }], 'only the good line')
  t.same(errors.map(e => e.line), bad.map((_, i) => i + 1), 'each bad line reported with its number')
  t.ok(Number.isNaN(metricSum(bad.join('\n'), 'x')), 'no readable x: NaN')
})
