// The process role under faults, on real components. Cassandra goes away mid-stream
// (its process is stopped, then started again; a private instance, so the shared
// stack the other tests use is never touched): the consumer pauses, no offset
// moves past an unwritten row, and once Cassandra is back every trade is stored
// exactly once. The daemon is killed with SIGKILL mid-stream and started again:
// nothing lost, nothing counted twice in the candles. Long on purpose.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tradeId } from '../../daemon/core/transform.js'
import { stackEndpoints } from '../../tools/stack/options.js'
import { down, selectComponents, up } from '../../tools/stack/stack.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { privateStackOptions } from '../fixtures/ports.js'
import { spawnDaemon, type DaemonChild } from '../fixtures/daemon-child.js'
import {
  candleDifferences, cassandraClient, committedOffsets, committedTotal, encodeTrades, pipelineConfig, produceValues,
  readCandles, readTrades, recomputeCandles, syntheticTrades
} from '../fixtures/pipeline.js'

t.setTimeout(420_000)

const { kafkaBootstrap } = testEndpoints()
const SYMBOLS = ['AAPL', 'MSFT', 'BINANCE:BTCUSDT']
const quiet = (): void => {}

async function poll (check: () => Promise<boolean>, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return false
}

/** `finnhubd run` with this config (the process role) in a child process. */
function startChild (t: Test, config: object): DaemonChild {
  const file = join(mkdtempSync(join(tmpdir(), 'finnhubd-conf-')), 'finnhubd.json')
  writeFileSync(file, JSON.stringify({ ...config, roles: ['process'] }))
  return spawnDaemon(t, file)
}

t.test('Cassandra stopped mid-stream: pause, no commit past unwritten rows, every trade stored once after it returns', async t => {
  // A folder of our own, removed only after the instance is down (a tap testdir may
  // be removed first, and with it the pid file that `down` needs).
  const dir = mkdtempSync(join(tmpdir(), 'finnhubd-faults-'))
  const o = await privateStackOptions(dir, { cassandraHeapMb: 512 })
  const cassandraOnly = selectComponents(['cassandra'])
  t.teardown(async () => {
    await down(o, cassandraOnly, quiet)
    rmSync(dir, { recursive: true, force: true })
  })
  await up(o, process.env, cassandraOnly, quiet)
  const { cassandraHost, cassandraPort } = stackEndpoints(o)
  const config = await pipelineConfig({ workers: { maxQueue: 4, batchSize: 200 } }, { ...testEndpoints(), cassandraHost, cassandraPort })

  const first = syntheticTrades(3000, SYMBOLS, Date.now() - 240_000)
  const second = syntheticTrades(3000, SYMBOLS, Date.now() - 120_000)
  const all = [...first, ...second]
  await produceValues(kafkaBootstrap, config.kafka.topic, encodeTrades(first))
  // The daemon runs as its own process (`finnhubd run`, as systemd would start it): the
  // driver's state after a Cassandra restart is then the daemon's own business.
  const child = startChild(t, { ...config, logLevel: 'debug' })
  const committed = async (): Promise<number> => committedTotal(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3))
  t.ok(await poll(async () => await committed() === first.length, 60_000), 'the first trades are stored and committed')

  await down(o, cassandraOnly, quiet)
  await produceValues(kafkaBootstrap, config.kafka.topic, encodeTrades(second))
  t.ok(await poll(async () => child.lines.some(l => l.msg === 'consumer paused: in-flight bound reached'), 60_000),
    'the consumer pauses at its in-flight bound while Cassandra is away')
  // Nothing can be written while Cassandra is down, so the committed offsets must not move.
  let most = 0
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 400))
    most = Math.max(most, await committed())
  }
  t.equal(most, first.length, 'no offset committed past an unwritten row')
  t.ok(child.lines.some(l => /Cassandra trade write failed; retrying/.test(String(l.msg)) && /check that it runs and that cassandra\.contactPoints/.test(String(l.msg))),
    'the failures are logged with what to do')
  t.notOk(child.lines.some(l => /npm run stack/.test(String(l.msg))), 'a running daemon never tells its operator to start the local development stack')

  await up(o, process.env, cassandraOnly, quiet)
  t.ok(await poll(async () => await committed() === all.length, 120_000), 'writing resumed by itself, caught up, and committed')
  t.equal(await child.stop(), 0, 'SIGTERM: drained and exited 0')
  // Shut down in the test body while Cassandra runs: a driver client whose host is gone may keep retrying.
  const client = cassandraClient(config)
  const stored = await readTrades(client, config, SYMBOLS, all.map(x => x.t))
  t.equal(stored.length, all.length, 'every trade stored')
  t.same(stored.map(r => r.trade_id).sort(), all.map(tradeId).sort(), 'exactly once, by deterministic id')
  t.same(candleDifferences(await readCandles(client, config, SYMBOLS, all.map(x => x.t)), recomputeCandles(stored)), [], 'candles equal the recomputation')
  await client.shutdown()
  t.ok(child.lines.some(l => l.msg === 'consumer resumed'), 'the consumer resumed by itself')
})

t.test('SIGKILL mid-stream, start again: nothing lost, nothing counted twice', async t => {
  const config = await pipelineConfig({ workers: { batchSize: 300 } })
  const trades = syntheticTrades(24_000, SYMBOLS, Date.now() - 300_000, 10)
  const records = encodeTrades(trades)
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const count = async (): Promise<number> => (await readTrades(client, config, SYMBOLS, trades.map(x => x.t))).length

  await produceValues(kafkaBootstrap, config.kafka.topic, records.slice(0, 8000))
  const first = startChild(t, config)
  t.ok(await poll(async () => await count() > 0, 60_000), 'the daemon is storing')
  const feeding = produceValues(kafkaBootstrap, config.kafka.topic, records.slice(8000, 16000))
  first.process.kill('SIGKILL')
  await first.exited
  await feeding
  t.ok(await count() < trades.length, 'killed mid-stream')

  const second = startChild(t, config)
  await produceValues(kafkaBootstrap, config.kafka.topic, records.slice(16000))
  t.ok(await poll(async () => await count() >= trades.length, 120_000), 'every trade stored after the restart')
  t.equal(await count(), trades.length, 'once each')
  // Candles are written after the trades of a batch: wait until the last ones land.
  let problems: string[] = []
  await poll(async () => {
    const stored = await readTrades(client, config, SYMBOLS, trades.map(x => x.t))
    problems = candleDifferences(await readCandles(client, config, SYMBOLS, trades.map(x => x.t)), recomputeCandles(stored))
    return problems.length === 0
  }, 20_000)
  t.same(problems, [], 'candles equal the recomputation: nothing of the replayed records was counted twice')
  t.equal(await second.stop(), 0, 'SIGTERM drains and exits 0')
  t.equal(committedTotal(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3)), trades.length, 'the drain committed everything')
})
