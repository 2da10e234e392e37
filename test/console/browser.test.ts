// The console in a real headless Chromium (Debian's, driven by playwright-core),
// against the daemon on the real stack with the simulator sending: the Pipeline
// view's numbers move, the Topic view lists records of the symbols sent, the candle
// chart draws candles and shades a gap written to the ledger, which is listed below it. A screenshot of each view goes to test/artifacts/.
import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import { writeGap } from '../../daemon/cassandra/gaps.js'
import { startDaemon } from '../../daemon/daemon.js'
import { createLogger } from '../../daemon/log.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { CHROMIUM, CHROMIUM_ARGS } from '../fixtures/chromium.js'
import { waitFor } from '../fixtures/kafka.js'
import { cassandraClient, pipelineConfig } from '../fixtures/pipeline.js'

t.setTimeout(240_000)

const SYMBOLS = ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT', 'AAPL']
const ARTIFACTS = join(PROJECT_ROOT, 'test', 'artifacts')

// Runs in the page (a string: the test's TypeScript knows no DOM). Candle bodies are
// drawn in the up and down colours; count such pixels on the chart's canvases.
const COUNT_CANDLE_PIXELS = `(() => {
  const near = (d, i, r, g, b) => Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12 && Math.abs(d[i + 2] - b) < 12
  let n = 0
  for (const c of document.querySelectorAll('#candle-chart canvas')) {
    if (c.width === 0 || c.height === 0) continue
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
    for (let i = 0; i < d.length; i += 4) if (near(d, i, 0x3f, 0xb9, 0x50) || near(d, i, 0xf8, 0x51, 0x49)) n++
  }
  return n
})()`

// The gap shading: the down colour at 18 % over the panel (#171d24), or unblended on a layer of its own.
const COUNT_SHADE_PIXELS = `(() => {
  const near = (d, i, r, g, b) => Math.abs(d[i] - r) < 7 && Math.abs(d[i + 1] - g) < 7 && Math.abs(d[i + 2] - b) < 7
  let n = 0
  for (const c of document.querySelectorAll('#candle-chart canvas')) {
    if (c.width === 0 || c.height === 0) continue
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
    for (let i = 0; i < d.length; i += 4) if ((near(d, i, 63, 38, 43) && d[i + 3] === 255) || (near(d, i, 0xf8, 0x51, 0x49) && d[i + 3] > 20 && d[i + 3] < 80)) n++
  }
  return n
})()`

const number = async (page: Page, selector: string): Promise<number> => Number((await page.textContent(selector) ?? '').replace(/,/g, ''))

/**
 * Polls the expression `check` in the page until it holds or `timeoutMs` passes. Not waitForFunction:
 * Playwright re-evaluates its predicate inside the page, which the console's CSP (no
 * 'unsafe-eval') refuses whenever the first check is false; page.evaluate runs through
 * the DevTools protocol, outside the page's CSP.
 */
async function waitInPage (page: Page, check: string, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (await page.evaluate(check) !== true) {
    if (Date.now() > until) return false
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return true
}

t.test('the three views in a browser', async t => {
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 400, seed: 31 })
  await sim.start()
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: SYMBOLS }, http: { port: 0 }, candles: { flushIntervalMs: 50 } })
  let stop!: (why: string) => void
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], http: true, log: createLogger({ level: 'error' }), stopSignal: new Promise(resolve => { stop = resolve }) })
  t.teardown(async () => {
    stop('test over')
    await daemon.stopped
    await sim.close()
  })
  t.ok(await waitFor(() => (daemon.process?.counters.rowsWritten ?? 0) > 500, 60_000), 'trades are stored')
  const url = daemon.http?.url ?? ''

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  const problems: string[] = []
  page.on('pageerror', err => problems.push(err.message))
  page.on('console', msg => { if (msg.type() === 'error') problems.push(msg.text()) })
  mkdirSync(ARTIFACTS, { recursive: true })

  // Pipeline: pushed numbers that change over time.
  await page.goto(`${url}/#pipeline`)
  t.ok(await waitInPage(page, "document.getElementById('total-received').textContent !== '–'", 15_000), 'the totals filled in')
  const received = await number(page, '#total-received')
  const written = await number(page, '#total-written')
  await page.waitForTimeout(3000)
  t.ok(await number(page, '#total-received') > received, 'trades received grow on the page')
  t.ok(await number(page, '#total-written') > written, 'and trades stored')
  t.ok(await number(page, '#rate-received') > 0, 'the rate is shown')
  t.equal(await page.textContent('#stream-state'), 'live')
  t.same(await page.$$eval('#connections .conn', els => els.map(e => `${e.getAttribute('data-name') ?? ''}:${e.classList.contains('ok')}`)),
    ['finnhub:true', 'kafka_producer:true', 'kafka_consumer:true', 'cassandra:true'], 'every connection shows up')
  t.ok((await page.$$('#latency tbody tr')).length >= 6, 'a latency row per stage')
  // Errors: what is non-zero first, largest first; the zeros folded into one last row.
  const errorRows = await page.$$eval('#errors tbody tr', rows => rows.map(r => ({ cls: r.className, text: r.textContent ?? '' })))
  t.ok(errorRows.length >= 1 && errorRows.length < 10, `a few rows, not one per reason (${errorRows.length})`)
  t.match(errorRows[errorRows.length - 1]?.text ?? '', /^(all \d+|\d+ more) at zero/, 'the zeros are folded into the last row')
  t.ok(errorRows.slice(0, -1).every(r => r.cls === 'nonzero'), 'every other row is non-zero')
  await page.screenshot({ path: join(ARTIFACTS, 'console-pipeline.png'), fullPage: true })

  // Topic: the latest records, with the symbols sent.
  await page.click('nav a[data-view=topic]')
  await page.waitForSelector('#topic-records tbody tr', { timeout: 15_000 })
  const keys = await page.$$eval('#topic-records tbody tr', rows => rows.map(r => r.children[3]?.textContent ?? ''))
  t.equal(keys.length, 50, 'fifty records by default')
  t.ok(keys.every(k => SYMBOLS.includes(k)), `only the symbols sent (${[...new Set(keys)].join(', ')})`)
  t.match(await page.textContent('#topic-name'), new RegExp(`${config.kafka.topic.replace(/\./g, '\\.')}: 50 records`))
  await page.screenshot({ path: join(ARTIFACTS, 'console-topic.png'), fullPage: true })

  // A gap of ETHUSDT half an hour ago, four minutes and a quarter long, as the ledger writes it.
  const minute = 60_000
  const gapStart = Math.floor(Date.now() / minute) * minute - 30 * minute + 15_000
  const gapEnd = gapStart + 4 * minute
  const store = cassandraClient(config)
  t.teardown(() => store.shutdown())
  await writeGap(store, config.cassandra.keyspace, { id: `${new Date(gapStart).toISOString()}/stalled/browser.0`, reason: 'stalled', start: gapStart, end: gapEnd, symbols: ['BINANCE:ETHUSDT'], dropped: null, openedAt: gapStart }, 'browser-test', Date.now())

  // Trades and candles: the chart draws the symbol's candles.
  await page.goto(`${url}/?symbol=BINANCE%3AETHUSDT#trades`)
  t.ok(await waitInPage(page, "Number(document.getElementById('candle-chart').dataset.candles || 0) > 0", 20_000), 'the chart has candles')
  t.equal(await page.inputValue('#symbol'), 'BINANCE:ETHUSDT')
  t.ok((await page.$$('#trades tbody tr')).length > 0, 'the latest trades are listed')
  await page.waitForTimeout(500)
  const candlePixels = await page.evaluate(COUNT_CANDLE_PIXELS) as number
  t.ok(candlePixels > 20, `the chart draws candles (${candlePixels} pixels in candle colours)`)
  // The gap: shaded over the five minutes it touches, and listed. (Other gaps may show too: the
  // daemon's own ledger records any it sees.)
  const shaded = new Set((await page.getAttribute('#candle-chart', 'data-shaded') ?? '').split(' ').filter(x => x !== '').map(Number))
  const touched = [0, 1, 2, 3, 4].map(i => gapStart - 15_000 + i * minute)
  t.same(touched.filter(m => !shaded.has(m)), [], 'the shading series has a column in each minute the gap touches')
  const shadePixels = await page.evaluate(COUNT_SHADE_PIXELS) as number
  t.ok(shadePixels > 100, `the shading is drawn (${shadePixels} pixels in the gap colour)`)
  const listed = await page.$$eval('#gaps tbody tr', rows => rows.map(r => [...r.children].map(c => c.textContent ?? '')))
  t.ok(listed.some(r => r.join('|') === [new Date(gapStart).toISOString(), new Date(gapEnd).toISOString(), 'stalled', 'unknown', 'BINANCE:ETHUSDT'].join('|')), 'the gap is listed under the chart', { listed })
  t.match(await page.textContent('#candle-count') ?? '', /, [1-9]\d* gaps$/)
  await page.screenshot({ path: join(ARTIFACTS, 'console-trades.png'), fullPage: true })

  // The resolution picker: one-hour candles of the same trades; a range the interval cannot draw is not offered.
  t.ok(await page.$eval('#minutes option[value="525600"]', o => (o as unknown as { disabled: boolean }).disabled), 'a year of 1 min candles is not offered')
  await page.selectOption('#interval', '1h')
  t.ok(await waitInPage(page, "document.getElementById('candle-chart').dataset.interval === '1h' && Number(document.getElementById('candle-chart').dataset.candles || 0) > 0", 20_000), 'the chart has one-hour candles')
  t.equal(await page.textContent('#candle-title'), 'One-hour candles')
  t.notOk(await page.$eval('#minutes option[value="43200"]', o => (o as unknown as { disabled: boolean }).disabled), 'thirty days of 1 h candles are offered')
  await page.selectOption('#minutes', '43200')
  t.ok(await waitInPage(page, "document.getElementById('candle-chart').dataset.interval === '1h' && document.getElementById('minutes').value === '43200'", 20_000), '30 days of 1 h candles')
  t.match(await page.textContent('#candle-count') ?? '', /^\d+ candles, \d+ latest trades, \d+ gaps$/, 'read without an error')
  t.ok(await page.$eval('#trades-error', e => (e as unknown as { hidden: boolean }).hidden), 'no error shown')
  t.same(problems, [], 'no script errors on the page')
})
