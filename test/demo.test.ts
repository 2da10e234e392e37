// `finnhubd demo` end to end: the stack (already running for the suite), the
// migrations, the simulator, both roles, the live line, and a clean stop. Long on
// purpose: it waits for real Kafka and Cassandra.
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { validateConfig } from '../daemon/config/load.js'
import { createLogger } from '../daemon/log.js'
import { runDemo } from '../tools/demo.js'
import { main } from '../daemon/cli.js'
import { testEndpoints } from './fixtures/endpoints.js'
import { uniqueName } from './fixtures/kafka.js'

t.setTimeout(180_000)

t.test('the demo runs the whole pipeline, prints live lines, and stops cleanly', async t => {
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>(resolve => blocker.close(() => resolve())))
  const blockedPort = (blocker.address() as AddressInfo).port
  const id = uniqueName('demo').replace(/-/g, '_')
  const config = validateConfig({
    logLevel: 'warn',
    finnhub: { symbols: ['BINANCE:BTCUSDT', 'AAPL'] },
    kafka: { topic: `finnhubd.${id}`, deadLetterTopic: `finnhubd.${id}.dlq`, groupId: id },
    cassandra: { keyspace: `k_${id}` },
    // A port this test holds: the demo moves to a free port and says so.
    http: { port: blockedPort }
  })
  const out: string[] = []
  let stop!: (reason: string) => void
  const stopSignal = new Promise<string>(resolve => { stop = resolve })
  t.teardown(() => { stop('teardown') })
  const lines = async (pattern: RegExp, n: number): Promise<boolean> => {
    const until = Date.now() + 90_000
    while (out.filter(l => pattern.test(l)).length < n && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 100))
    return out.filter(l => pattern.test(l)).length >= n
  }
  const env = { ...process.env, FINNHUB_TOKEN: '' }
  const done = runDemo({ env, config, out: l => out.push(l), log: createLogger({ level: 'error', write: () => {} }), stopSignal, statusEveryMs: 1000, simRatePerSec: 300 })
  t.ok(await lines(/^in \d[\d,]*\/s {2}out \d[\d,]*\/s {2}lag \d[\d,]* {2}p99 .* errors \+\d+ {2}\(stored [\d,]+ in all\)$/, 3), 'live status lines')
  t.ok(await lines(/stored [1-9][\d,]* in all/, 1), 'trades are stored')
  t.match(out.join('\n'), /no FINNHUB_TOKEN: trades come from the simulator/)
  t.match(out.join('\n'), /\[migrate\] applied \d+ migration/)
  const served = /\[demo\] health and metrics: (http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(out.join('\n'))
  t.ok(served, 'the demo serves HTTP and says where')
  t.match(out.join('\n'), new RegExp(`port ${blockedPort} on 127\\.0\\.0\\.1 is taken; serving /metrics on a free port instead`))
  const readyz = await fetch(`${served?.[1] ?? ''}/readyz`)
  t.equal(readyz.status, 200, 'ready')
  t.match(await (await fetch(`${served?.[1] ?? ''}/metrics`)).text(), /^finnhubd_cassandra_rows_written_total \d+/m)
  t.match(out.join('\n'), new RegExp(`\\[demo\\] the web console: ${served?.[1] ?? ''}/ `), 'and where the console is')
  t.match(await (await fetch(`${served?.[1] ?? ''}/`)).text(), /<title>finnhubd console<\/title>/, 'which answers')
  stop('test')
  t.equal(await done, 0, 'exits 0 on the stop signal')

  const { cassandraHost, cassandraPort } = testEndpoints()
  const qenv = { CASSANDRA_KEYSPACE: `k_${id}`, CASSANDRA_HOST: cassandraHost, CASSANDRA_PORT: String(cassandraPort) }
  const q: string[] = []
  const code = await main(['query', 'AAPL', '--limit', '3'], { env: qenv, out: l => q.push(l), err: l => q.push(l) })
  t.equal(code, 0)
  t.equal(q.length, 3, 'query prints the latest trades')
  t.match(q[0], /^\d{4}-\d\d-\d\dT.*Z {2}[\d.]+ × [\d.]+ {2}c=.* id [0-9a-f-]{36} {2}lag \d+ ms$/)
  const c: string[] = []
  t.equal(await main(['query', 'AAPL', '--candles', '--since', '1h'], { env: qenv, out: l => c.push(l), err: l => c.push(l) }), 0)
  t.match(c[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z {2}O [\d.]+ H [\d.]+ L [\d.]+ C [\d.]+ {2}vol [\d.]+ {2}vwap .* trades \d+$/, 'and the candles')
  const none: string[] = []
  t.equal(await main(['query', 'NOPE'], { env: qenv, out: l => none.push(l), err: l => none.push(l) }), 0)
  t.match(none.join(''), /no trades for NOPE since/)
  const bad: string[] = []
  t.equal(await main(['query', 'AAPL', '--since', 'soon'], { env: {}, out: l => bad.push(l), err: l => bad.push(l) }), 2)
  t.match(bad.join(''), /--since soon is neither/)
})
