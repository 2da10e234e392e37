// The bench's SVG chart (tools/bench/chart.ts): a well-formed document, every plottable
// point drawn once, gaps for missing values, and empty input still a valid chart.
import t from 'tap'
import { linearTicks, logTicks, renderChart, segments, type ChartSpec } from '../../tools/bench/chart.js'

/** Checks the document is well-formed XML as far as this generator can go wrong: balanced tags, quoted attributes, escaped text, no NaN. */
function wellFormed (svg: string): string[] {
  const problems: string[] = []
  if (!svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')) problems.push('no XML declaration and svg root')
  const body = svg.replace(/^<\?xml[^>]*\?>/, '')
  const stack: string[] = []
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g
  let last = 0
  let roots = 0
  for (let m = tag.exec(body); m !== null; m = tag.exec(body)) {
    const between = body.slice(last, m.index)
    if (between.includes('<') || between.includes('>')) problems.push(`stray markup before ${m[0].slice(0, 40)}: ${between.slice(0, 40)}`)
    if (/&(?!amp;|lt;|gt;|quot;)/.test(between)) problems.push(`unescaped & in ${between}`)
    last = m.index + m[0].length
    const [, close, name, , self] = m as unknown as [string, string, string, string, string]
    if (close === '/') {
      if (stack.pop() !== name) problems.push(`</${name}> closes the wrong element`)
    } else if (self !== '/') {
      if (stack.length === 0) roots++
      stack.push(name)
    }
  }
  if (body.slice(last).trim() !== '') problems.push(`text after the root: ${body.slice(last, last + 40)}`)
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`)
  if (roots !== 1) problems.push(`${roots} root elements`)
  if (/NaN|undefined|Infinity/.test(svg)) problems.push('NaN, undefined or Infinity in the output')
  return problems
}

/** Points drawn: coordinate pairs of every polyline plus every dot. */
function drawnPoints (svg: string): number {
  let count = 0
  for (const m of svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)) count += (m[1] ?? '').trim().split(/\s+/).length
  return count + (svg.match(/<circle /g) ?? []).length
}

const series = (n: number, f: (i: number) => number | null): Array<readonly [number, number | null]> => Array.from({ length: n }, (_, i) => [i, f(i)] as const)

t.test('a two-panel chart: well-formed, one polyline per series, every point drawn, legend and markers', async t => {
  const spec: ChartSpec = {
    title: 'latency over time <source_to_written> & stored/s',
    xLabel: 'seconds since the latency phase began',
    panels: [
      {
        yLabel: 'ms',
        logY: true,
        series: [
          { name: 'latency p99', points: series(30, i => 5 + i * 10), color: '#d62728' },
          { name: 'latency p50', points: series(30, i => 1 + i), color: '#d62728', dashed: true }
        ]
      },
      { yLabel: 'trades/s', series: [{ name: 'stored/s', points: series(30, i => 2000 + i), color: '#1f77b4' }] }
    ],
    markers: [{ x: 0, label: 'latency 4,800/s' }, { x: 15, label: 'steady 2,000/s' }]
  }
  const svg = renderChart(spec)
  t.same(wellFormed(svg), [], 'well-formed')
  t.equal((svg.match(/<polyline /g) ?? []).length, 3, 'one polyline per series')
  t.equal(drawnPoints(svg), 90, 'every point drawn')
  t.match(svg, /latency over time &lt;source_to_written&gt; &amp; stored\/s/, 'the title escaped')
  for (const name of ['latency p99', 'latency p50', 'stored/s', 'latency 4,800/s', 'steady 2,000/s', 'ms (log)', 'trades/s', 'seconds since the latency phase began']) t.ok(svg.includes(`>${name}<`), `text "${name}"`)
  t.equal((svg.match(/stroke-dasharray="5,3"/g) ?? []).length, 2, 'the dashed series and its legend entry')
  t.equal((svg.match(/stroke-dasharray="2,3"/g) ?? []).length, 4, 'each marker drawn across both panels')
  const late = renderChart({ ...spec, markers: [{ x: 1, label: 'early' }, { x: 29, label: 'late' }] })
  t.match(late, /<text x="[\d.]+" y="[\d.]+" font-family="sans-serif" font-size="11" fill="#333">early</, 'a label right of its line')
  t.match(late, /<text x="[\d.]+" y="[\d.]+" text-anchor="end" [^>]*>late</, 'near the right edge, left of it')
})

t.test('gaps: NaN, null and infinite values split a line; on a log axis so do 0 and negatives', async t => {
  const points = [[0, 1], [1, 2], [2, NaN], [3, 4], [4, null], [5, 6], [6, 7], [7, Infinity], [8, 0], [9, -1], [10, 3]] as Array<readonly [number, number | null]>
  t.same(segments(points, false).map(s => s.length), [2, 1, 2, 3], 'linear: 0 and -1 are values')
  t.same(segments(points, true).map(s => s.length), [2, 1, 2, 1], 'log: 0 and -1 are gaps')
  const svg = renderChart({ title: 'gaps', xLabel: 's', panels: [{ yLabel: 'ms', logY: true, series: [{ name: 'p99', points, color: '#000' }] }] })
  t.same(wellFormed(svg), [], 'well-formed')
  t.equal((svg.match(/<polyline /g) ?? []).length, 2, 'two runs of several points')
  t.equal((svg.match(/<circle /g) ?? []).length, 2, 'two single points as dots')
  t.equal(drawnPoints(svg), 6)
})

t.test('empty input: no series, empty series, all-NaN series, no panels: still a valid chart', async t => {
  for (const [what, spec] of [
    ['no series', { title: 'x', xLabel: 's', panels: [{ yLabel: 'ms', logY: true, series: [] }] }],
    ['an empty series', { title: 'x', xLabel: 's', panels: [{ yLabel: 'ms', logY: true, series: [{ name: 'p99', points: [], color: '#000' }] }] }],
    ['all NaN', { title: 'x', xLabel: 's', panels: [{ yLabel: 'ms', series: [{ name: 'p99', points: series(5, () => NaN), color: '#000' }] }] }],
    ['no panels, a marker', { title: 'x', xLabel: 's', panels: [], markers: [{ x: 3, label: 'm' }] }],
    ['one point', { title: 'x', xLabel: 's', panels: [{ yLabel: 'ms', logY: true, series: [{ name: 'p99', points: [[4, 4]], color: '#000' }] }] }]
  ] as Array<[string, ChartSpec]>) {
    const svg = renderChart(spec)
    t.same(wellFormed(svg), [], `${what}: well-formed`)
    t.equal(drawnPoints(svg), what === 'one point' ? 1 : 0, `${what}: points drawn`)
    if (what !== 'one point' && spec.panels.length > 0) t.match(svg, />no data</, `${what}: says no data`)
  }
})

t.test('ticks: linear from 0 past the maximum, log by decades', async t => {
  t.same(linearTicks(0, 9), [0, 2, 4, 6, 8, 10])
  t.same(linearTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1], 'a flat zero still has an axis')
  t.same(logTicks(3, 450), [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
  t.same(logTicks(0.5, 20_000), [0.1, 1, 10, 100, 1000, 10_000, 100_000])
  t.same(logTicks(5, 5), [1, 2, 5, 10])
})
