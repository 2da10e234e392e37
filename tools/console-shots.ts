// `node dist/tools/console-shots.js [--live-seconds N] [--out DIR]`: the console
// screenshots of docs/, taken from a real run (the local stack, the real daemon with
// both roles, the simulator, Debian's Chromium), so they show what a user sees:
//  1. two days of history (up to three hours ago) of two symbols, replayed through
//     the simulator's replay mode (trades whose times are in the past: the daemon
//     stores them as it would a late feed, and builds every candle resolution);
//  2. then the replaying simulator goes away and a live one takes its port: the
//     daemon reconnects, and its ledger records the stretch between the last trade
//     it received and the first after as a `disconnected` gap (it cannot know the
//     feed had no trades to send);
//  3. the live feed at 500 trades/s for --live-seconds (default 240), so the
//     Pipeline view's figures are the steady ones, not the start-up's;
//  4. docs/console-pipeline.png (the Pipeline view) and docs/console-candles.png
//     (Trades and candles: one-hour candles over seven days, the gap shaded and
//     listed). The run's keyspace and topic are dropped at the end.

import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium, type Page } from 'playwright-core'
import { runMigrate } from '../daemon/cassandra/migrate-command.js'
import { validateConfig } from '../daemon/config/load.js'
import { startDaemon } from '../daemon/daemon.js'
import { createTopic } from '../daemon/kafka/admin.js'
import { createLogger } from '../daemon/log.js'
import { CQL_DIR, PROJECT_ROOT } from '../daemon/paths.js'
import { runEntry } from '../daemon/args.js'
import { FinnhubSimulator } from './simulator/server.js'
import { stackEndpoints, stackOptions } from './stack/options.js'
import { selectComponents, up } from './stack/stack.js'
import { dropRunData } from './verify/verify.js'

const SYMBOLS = ['BINANCE:BTCUSDT', 'BINANCE:ETHUSDT']
const HOUR = 3_600_000
const CHROMIUM = process.env['FINNHUBD_CHROMIUM'] ?? '/usr/bin/chromium'
const say = (line: string): void => { process.stderr.write(`[shots ${new Date().toISOString().slice(11, 19)}] ${line}\n`) }
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Polls an expression in the page with evaluate (the console's CSP has no 'unsafe-eval', which waitForFunction's polling needs). */
async function waitInPage (page: Page, expression: string, timeoutMs: number): Promise<boolean> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    if (await page.evaluate(expression) === true) return true
    await sleep(200)
  }
  return false
}

/** Two days of trades (a random walk per symbol, one every ~2 s), ending three hours ago, as a replay file of 20-trade frames over ~40 s. */
function historyFile (now: number): { file: string, trades: number } {
  let seed = 7
  const rnd = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
  const end = now - 3 * HOUR
  const start = end - 48 * HOUR
  // Near the simulator's own price range (it starts each symbol between 10 and 510), mean-reverting.
  const target: Record<string, number> = { 'BINANCE:BTCUSDT': 240, 'BINANCE:ETHUSDT': 180 }
  const price: Record<string, number> = { ...target }
  const trades: Array<{ s: string, p: number, t: number, v: number, c: string[] }> = []
  for (let t = start; t < end; t += 1000) {
    for (const s of SYMBOLS) {
      if (rnd() < 0.5) continue
      const p = price[s] as number
      price[s] = p * (1 + (rnd() - 0.5) * 0.004) + ((target[s] as number) * (1 + 0.15 * Math.sin(t / (9 * HOUR))) - p) * 0.002
      trades.push({ s, p: Math.round((price[s] as number) * 100) / 100, t: t + Math.floor(rnd() * 1000), v: Math.round(rnd() * 1e4) / 1e4 + 0.0001, c: ['1'] })
    }
  }
  const frames: string[] = []
  for (let i = 0; i < trades.length; i += 20) frames.push(JSON.stringify({ type: 'trade', data: trades.slice(i, i + 20) }))
  const file = join(tmpdir(), `finnhubd-shots-history-${now}.jsonl`)
  writeFileSync(file, frames.map((frame, i) => JSON.stringify({ at: Math.round(i * 40_000 / frames.length), frame })).join('\n') + '\n')
  return { file, trades: trades.length }
}

async function main (argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { 'live-seconds': { type: 'string' }, out: { type: 'string' } }, strict: true })
  const liveSeconds = Number(values['live-seconds'] ?? 240)
  const out = values.out ?? join(PROJECT_ROOT, 'docs')
  mkdirSync(out, { recursive: true })
  const options = stackOptions(process.env)
  await up(options, process.env, selectComponents([]), say)
  const endpoints = stackEndpoints(options)
  const now = Date.now()
  const id = `shots_${now}`
  const history = historyFile(now)
  say(`history: ${history.trades} trades of ${SYMBOLS.join(', ')}, two days up to three hours ago`)

  const replay = new FinnhubSimulator({ token: 'shots', ratePerSec: 0, replayFile: history.file, replaySpeed: 1 })
  await replay.start()
  const port = Number(new URL(replay.url).port)
  const topic = `finnhubd.${id}`
  const config = validateConfig({
    logLevel: 'warn',
    finnhub: { url: replay.url, token: 'shots', symbols: SYMBOLS },
    kafka: { bootstrapServers: [endpoints.kafkaBootstrap], topic, deadLetterTopic: `${topic}.dlq`, groupId: `g_${id}` },
    cassandra: { contactPoints: [endpoints.cassandraHost], port: endpoints.cassandraPort, keyspace: id },
    http: { host: '127.0.0.1', port: 0 },
    stateDir: join(tmpdir(), `finnhubd-${id}-state`)
  })
  await runMigrate(config, CQL_DIR, () => {})
  await createTopic(endpoints.kafkaBootstrap, topic, config.kafka.topicPartitions)
  let stop!: (why: string) => void
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], http: true, log: createLogger({ level: 'warn' }), stopSignal: new Promise(resolve => { stop = resolve }) })
  let live: FinnhubSimulator | null = null
  try {
    const stored = (): number => daemon.process?.counters.rowsWritten ?? 0
    for (const until = Date.now() + 180_000; stored() < history.trades && Date.now() < until;) await sleep(500)
    say(`history stored: ${stored()} rows`)
    await replay.close()
    live = new FinnhubSimulator({ token: 'shots', ratePerSec: 500, port })
    await live.start()
    say(`the live feed on the same port; ${liveSeconds} s of it`)
    await sleep(liveSeconds * 1000)

    const url = daemon.http?.url ?? ''
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'], headless: true })
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
      await page.goto(`${url}/#pipeline`)
      await waitInPage(page, "document.getElementById('total-received').textContent !== '–'", 15_000)
      await sleep(40_000) // the page's throughput chart draws what it received since it opened
      await page.screenshot({ path: join(out, 'console-pipeline.png') })
      await page.goto(`${url}/?symbol=BINANCE%3ABTCUSDT&interval=1h#trades`)
      await page.selectOption('#minutes', '10080')
      if (!await waitInPage(page, "document.getElementById('candle-chart').dataset.interval === '1h' && Number(document.getElementById('candle-chart').dataset.candles || 0) > 40", 20_000)) {
        throw new Error('the one-hour chart did not fill (fewer than 40 candles after 20 s)')
      }
      await sleep(1000)
      await page.screenshot({ path: join(out, 'console-candles.png') })
      say(`screenshots: ${join(out, 'console-pipeline.png')}, ${join(out, 'console-candles.png')}`)
    } finally {
      await browser.close()
    }
  } finally {
    stop('screenshots taken')
    await daemon.stopped
    await live?.close()
    await dropRunData(config, [], [topic, `${topic}.dlq`])
  }
  return 0
}

await runEntry(async () => await main(process.argv.slice(2)), { prefix: 'finnhubd console-shots', command: 'node dist/tools/console-shots.js' })
