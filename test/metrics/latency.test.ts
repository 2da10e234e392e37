// Stage latency: HDR quantiles over a sliding window, exported per stage and quantile.
import t from 'tap'
import { Registry } from 'prom-client'
import { latencyBetween, registerLatencyMetrics, StageLatency } from '../../daemon/metrics/latency.js'

t.test('quantiles of what was recorded; old windows age out', async t => {
  let now = 0
  const l = new StageLatency(1000, () => now)
  t.ok(Number.isNaN(l.quantileMs('end_to_end', 0.5)), 'no data, no number')
  for (let i = 1; i <= 100; i++) l.record('end_to_end', i)
  l.record('end_to_end', 500, 10)
  t.equal(l.count('end_to_end'), 110)
  t.ok(Math.abs(l.quantileMs('end_to_end', 0.5) - 55) < 1, 'p50')
  t.ok(Math.abs(l.quantileMs('end_to_end', 1) - 500) < 1, 'max')
  now = 1500
  t.equal(l.count('end_to_end'), 110, 'the previous window still counts')
  now = 2600
  t.equal(l.count('end_to_end'), 0, 'two windows later it has aged out')
  l.record('consume_to_decoded', 0.0001)
  t.ok(l.quantileMs('consume_to_decoded', 0.5) >= 0.001, 'clamped to 1 µs')
  now = 10_000
  t.equal(l.count('consume_to_decoded'), 0, 'a long idle gap clears both windows')

  const registry = new Registry()
  registerLatencyMetrics(registry, l)
  l.record('decoded_to_written', 20)
  const text = await registry.metrics()
  t.match(text, /finnhubd_stage_latency_seconds\{stage="decoded_to_written",quantile="0.99"\} 0.02/)
  t.notMatch(text, /stage="end_to_end"/, 'stages without data are left out')
})

t.test('recordSinceEach records one value per run of equal stamps, into the window and since the start', async t => {
  let now = 0
  const l = new StageLatency(1000, () => now)
  t.teardown(() => l.destroy())
  const rows = [{ at: 90 }, { at: 90 }, { at: 90 }, { at: 95 }, { at: 90 }]
  l.recordSinceEach('end_to_end', 100, rows.length, i => rows[i]!.at)
  l.recordSinceEach('end_to_end', 100, 0, () => { throw new Error('no item to read') })
  t.equal(l.count('end_to_end'), 5)
  t.ok(Math.abs(l.quantileMs('end_to_end', 0.5) - 10) < 0.01, 'three at 10 ms')
  t.ok(Math.abs(l.quantileMs('end_to_end', 1) - 10) < 0.01 && Math.abs(l.quantileMs('end_to_end', 0.7) - 10) < 0.01)
  t.ok(Math.abs(l.quantileMs('end_to_end', 0.79) - 10) < 0.01, 'one at 5 ms among five: p20 is 5')
  t.ok(Math.abs(l.quantileMs('end_to_end', 0.2) - 5) < 0.01)
  const first = l.snapshot()
  now = 5000
  t.equal(l.count('end_to_end'), 0, 'the window has aged out')
  l.record('end_to_end', 40, 2)
  const second = l.snapshot()
  t.equal(second.end_to_end.count, 7, 'the histogram since the start keeps everything')
  t.same(latencyBetween(null, second.end_to_end).count, 7)
  const between = latencyBetween(first.end_to_end, second.end_to_end)
  t.same({ count: between.count, p50: Math.round(between.p50), max: Math.round(between.max) }, { count: 2, p50: 40, max: 40 })
  const empty = latencyBetween(first.frame_to_ack, second.frame_to_ack)
  t.equal(empty.count, 0)
  t.ok(Number.isNaN(empty.p99), 'no data, no percentile')
})
