// The console in a real headless Chromium (Debian's, driven by playwright-core),
// against the daemon on the real stack with the simulator sending: the Pipeline
// view's numbers move, the Topic view lists records of the symbols sent, the candle
// chart draws candles. A screenshot of each view goes to test/artifacts/.
import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import { startDaemon } from '../../daemon/daemon.js'
import { createLogger } from '../../daemon/log.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { CHROMIUM, CHROMIUM_ARGS } from '../fixtures/chromium.js'
import { waitFor } from '../fixtures/kafka.js'
import { pipelineConfig } from '../fixtures/pipeline.js'

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
  await page.screenshot({ path: join(ARTIFACTS, 'console-pipeline.png'), fullPage: true })

  // Topic: the latest records, with the symbols sent.
  await page.click('nav a[data-view=topic]')
  await page.waitForSelector('#topic-records tbody tr', { timeout: 15_000 })
  const keys = await page.$$eval('#topic-records tbody tr', rows => rows.map(r => r.children[3]?.textContent ?? ''))
  t.equal(keys.length, 50, 'fifty records by default')
  t.ok(keys.every(k => SYMBOLS.includes(k)), `only the symbols sent (${[...new Set(keys)].join(', ')})`)
  t.match(await page.textContent('#topic-name'), new RegExp(`${config.kafka.topic.replace(/\./g, '\\.')}: 50 records`))
  await page.screenshot({ path: join(ARTIFACTS, 'console-topic.png'), fullPage: true })

  // Trades and candles: the chart draws the symbol's candles.
  await page.goto(`${url}/?symbol=BINANCE%3AETHUSDT#trades`)
  t.ok(await waitInPage(page, "Number(document.getElementById('candle-chart').dataset.candles || 0) > 0", 20_000), 'the chart has candles')
  t.equal(await page.inputValue('#symbol'), 'BINANCE:ETHUSDT')
  t.ok((await page.$$('#trades tbody tr')).length > 0, 'the latest trades are listed')
  await page.waitForTimeout(500)
  const candlePixels = await page.evaluate(COUNT_CANDLE_PIXELS) as number
  t.ok(candlePixels > 20, `the chart draws candles (${candlePixels} pixels in candle colours)`)
  await page.screenshot({ path: join(ARTIFACTS, 'console-trades.png'), fullPage: true })

  // The resolution picker: one-hour candles of the same trades; a range the interval cannot draw is not offered.
  t.ok(await page.$eval('#minutes option[value="525600"]', o => (o as HTMLOptionElement).disabled), 'a year of 1 min candles is not offered')
  await page.selectOption('#interval', '1h')
  t.ok(await waitInPage(page, "document.getElementById('candle-chart').dataset.interval === '1h' && Number(document.getElementById('candle-chart').dataset.candles || 0) > 0", 20_000), 'the chart has one-hour candles')
  t.equal(await page.textContent('#candle-title'), 'One-hour candles')
  t.notOk(await page.$eval('#minutes option[value="43200"]', o => (o as HTMLOptionElement).disabled), 'thirty days of 1 h candles are offered')
  await page.selectOption('#minutes', '43200')
  t.ok(await waitInPage(page, "document.getElementById('candle-chart').dataset.interval === '1h' && document.getElementById('minutes').value === '43200'", 20_000), '30 days of 1 h candles')
  t.match(await page.textContent('#candle-count') ?? '', /^\d+ candles, \d+ latest trades, \d+ gaps$/, 'read without an error')
  t.ok(await page.$eval('#trades-error', e => (e as HTMLElement).hidden), 'no error shown')
  t.same(problems, [], 'no script errors on the page')
})
