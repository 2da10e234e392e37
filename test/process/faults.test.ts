// The process role under faults, on real components. Cassandra goes away mid-stream
// (its process is stopped, then started again; a private instance, so the shared
// stack the other tests use is never touched): the consumer pauses, no offset
// moves past an unwritten row, and once Cassandra is back every trade is stored
// exactly once. The daemon is killed with SIGKILL mid-stream and started again:
// nothing lost, nothing counted twice in the candles. Long on purpose.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { startDaemon } from '../../daemon/daemon.js'
import { tradeId } from '../../daemon/core/transform.js'
import { createLogger } from '../../daemon/log.js'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { stackEndpoints, stackOptions } from '../../stack/options.js'
import { down, selectComponents, up } from '../../stack/stack.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { waitFor } from '../fixtures/kafka.js'
import {
  candleDifferences, cassandraClient, committedOffsets, encodeTrades, pipelineConfig, produceValues,
  readCandles, readTrades, recomputeCandles, syntheticTrades
} from '../fixtures/pipeline.js'

t.setTimeout(420_000)

const { kafkaBootstrap } = testEndpoints()
const SYMBOLS = ['AAPL', 'MSFT', 'BINANCE:BTCUSDT']
const never = new Promise<string>(() => {})
const quiet = (): void => {}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>(resolve => server.close(() => resolve()))
  return typeof address === 'object' && address !== null ? address.port : 0
}

const sum = (offsets: number[]): number => offsets.reduce((a, b) => a + Math.max(0, b), 0)

t.test('Cassandra stopped mid-stream: pause, no commit past unwritten rows, every trade stored once after it returns', async t => {
  const shared = stackOptions(process.env)
  // A folder of our own, removed only after the instance is down (a tap testdir may
  // be removed first, and with it the pid file that `down` needs).
  const dir = mkdtempSync(join(tmpdir(), 'finnhubd-faults-'))
  const o = stackOptions({}, {
    dir,
    cacheDir: shared.cacheDir,
    cassandraPort: await freePort(),
    cassandraStoragePort: await freePort(),
    cassandraHeapMb: 512
  })
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
  await produceValues(kafkaBootstrap, config.kafka.topic, encodeTrades(first))
  const logs: string[] = []
  const daemon = await startDaemon({ config, roles: ['process'], log: createLogger({ level: 'warn', write: l => logs.push(l), limitIntervalMs: 0 }), stopSignal: never })
  t.teardown(() => daemon.stop('teardown'))
  const c = daemon.process!.counters
  t.ok(await waitFor(() => c.rowsWritten >= first.length && c.inFlightBatches === 0, 60_000), 'the first trades are stored')

  await down(o, cassandraOnly, quiet)
  await produceValues(kafkaBootstrap, config.kafka.topic, encodeTrades(second))
  t.ok(await waitFor(() => c.paused === 1, 60_000), 'the consumer pauses at its in-flight bound while Cassandra is away')
  const written = c.rowsWritten
  // Every record is one row, so the committed offsets may never count more than the rows written.
  let worst = -Infinity
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 400))
    worst = Math.max(worst, sum(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3)) - c.rowsWritten)
  }
  t.ok(worst <= 0, `no offset committed past an unwritten row (committed − written ≤ 0, saw ${worst})`)
  t.equal(c.rowsWritten, written, 'nothing is written while Cassandra is down')
  t.ok(c.cassandraErrors > 0 && c.cassandraUp === 0, 'the failures are counted')
  t.ok(logs.some(l => /Cassandra trade write failed; retrying/.test(l)), 'and logged with what to do')

  await up(o, process.env, cassandraOnly, quiet)
  const all = [...first, ...second]
  t.ok(await waitFor(() => c.inFlightBatches === 0 && c.paused === 0 && c.consumed >= all.length, 120_000), 'writing resumed by itself and caught up')
  t.ok(await waitFor(() => c.cassandraUp === 1), 'Cassandra is up again for the writer')
  await daemon.stop('test')
  // Shut down in the test body while Cassandra runs: a driver client whose host is gone may keep retrying.
  const client = cassandraClient(config)
  const stored = await readTrades(client, config, SYMBOLS, all.map(x => x.t))
  t.equal(stored.length, all.length, 'every trade stored')
  t.same(stored.map(r => r.trade_id).sort(), all.map(tradeId).sort(), 'exactly once, by deterministic id')
  t.same(candleDifferences(await readCandles(client, config, SYMBOLS, all.map(x => x.t)), recomputeCandles(stored)), [], 'candles equal the recomputation')
  await client.shutdown()
  t.equal(sum(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3)), all.length, 'and everything is committed')
})

t.test('SIGKILL mid-stream, start again: nothing lost, nothing counted twice', async t => {
  const config = await pipelineConfig({ workers: { batchSize: 300 } })
  const file = join(t.testdir({}), 'finnhubd.json')
  writeFileSync(file, JSON.stringify({ ...config, roles: ['process'] }))
  const start = (): ChildProcess => spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'daemon', 'cli.js'), '--config', file, 'run'], { stdio: ['ignore', 'ignore', 'pipe'] })
  const trades = syntheticTrades(24_000, SYMBOLS, Date.now() - 300_000, 10)
  const records = encodeTrades(trades)
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  const count = async (): Promise<number> => (await readTrades(client, config, SYMBOLS, trades.map(x => x.t))).length

  await produceValues(kafkaBootstrap, config.kafka.topic, records.slice(0, 8000))
  let child = start()
  let stored = 0
  for (let i = 0; i < 200 && stored === 0; i++) {
    await new Promise(resolve => setTimeout(resolve, 250))
    stored = await count()
  }
  t.ok(stored > 0, 'the daemon is storing')
  const feeding = produceValues(kafkaBootstrap, config.kafka.topic, records.slice(8000, 16000))
  child.kill('SIGKILL')
  await new Promise(resolve => child.once('exit', resolve))
  await feeding
  t.ok(await count() < trades.length, 'killed mid-stream')

  child = start()
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  await produceValues(kafkaBootstrap, config.kafka.topic, records.slice(16000))
  let last = -1
  for (let i = 0; i < 240; i++) {
    await new Promise(resolve => setTimeout(resolve, 500))
    last = await count()
    if (last >= trades.length) break
  }
  t.equal(last, trades.length, 'every trade stored after the restart')
  // Candles are written after the trades of a batch: wait until the last ones land.
  let problems: string[] = []
  for (let i = 0; i < 40; i++) {
    const stored = await readTrades(client, config, SYMBOLS, trades.map(x => x.t))
    problems = candleDifferences(await readCandles(client, config, SYMBOLS, trades.map(x => x.t)), recomputeCandles(stored))
    if (problems.length === 0) break
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  t.same(problems, [], 'candles equal the recomputation: nothing of the replayed records was counted twice')
  child.kill('SIGTERM')
  const code = await new Promise(resolve => child.once('exit', resolve))
  t.equal(code, 0, `SIGTERM drains and exits 0${stderr === '' ? '' : ` (stderr: ${stderr.slice(0, 500)})`}`)
  t.equal(sum(await committedOffsets(kafkaBootstrap, config.kafka.groupId, config.kafka.topic, 3)), trades.length, 'the drain committed everything')
})
