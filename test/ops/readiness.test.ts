// /readyz follows Kafka for real: a private broker (its own folder and ports, so the
// shared stack the other tests use is never touched) is killed under a running
// daemon and started again. The producer's and the consumer's checks go red while
// no broker is up and green again after; the daemon keeps running throughout.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDaemon } from '../../daemon/daemon.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { stackEndpoints } from '../../tools/stack/options.js'
import { down, selectComponents, up } from '../../tools/stack/stack.js'
import { waitFor } from '../fixtures/kafka.js'
import { pipelineConfig } from '../fixtures/pipeline.js'
import { privateStackOptions } from '../fixtures/ports.js'
import { testEndpoints } from '../fixtures/endpoints.js'

t.setTimeout(240_000)

t.test('Kafka down → /readyz 503 naming both Kafka checks; back up → 200', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'finnhubd-readiness-'))
  const o = await privateStackOptions(dir, { kafkaHeapMb: 256 })
  const kafkaOnly = selectComponents(['kafka'])
  t.teardown(async () => {
    await down(o, kafkaOnly, () => {})
    rmSync(dir, { recursive: true, force: true })
  })
  await up(o, process.env, kafkaOnly, () => {})
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 200 })
  await sim.start()
  t.teardown(() => sim.close())
  const endpoints = { ...testEndpoints(), kafkaBootstrap: stackEndpoints(o).kafkaBootstrap }
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: ['AAPL'] }, http: { port: 0 } }, endpoints)
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], log: createLogger({ level: 'fatal' }), http: true })
  t.teardown(() => daemon.stop('teardown'))
  const url = daemon.http?.url as string
  const readyz = async (): Promise<{ status: number, body: { checks: Record<string, { ok: boolean, detail: string }> } }> => {
    const res = await fetch(`${url}/readyz`)
    return { status: res.status, body: await res.json() as { checks: Record<string, { ok: boolean, detail: string }> } }
  }
  t.ok(await waitFor(() => daemon.readiness().ready && daemon.ingest?.producer.brokers?.up === 1, 30_000), 'ready, with the broker seen up')
  t.match(await readyz(), { status: 200, body: { checks: { kafka_producer: { ok: true, detail: '1/1 brokers up' }, kafka_consumer: { ok: true } } } })
  // Each node under its check, and a gauge per node.
  const broker = new RegExp(`^\\d+ ${stackEndpoints(o).kafkaBootstrap.replace(/\./g, '\\.')}$`)
  const green = (await readyz()).body.checks as Record<string, { nodes?: Array<Record<string, unknown>> }>
  t.match(green['kafka_producer']?.nodes, [{ node: broker, up: true, state: 'UP' }])
  t.equal(green['kafka_producer']?.nodes?.length, 1, 'the one broker')
  t.match(green['cassandra']?.nodes, [{ node: `${endpoints.cassandraHost}:${endpoints.cassandraPort}`, up: true, state: 'UP', datacenter: 'datacenter1' }])
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /^finnhubd_kafka_broker_up\{client="producer",broker="\d+ 127\.0\.0\.1:\d+"\} 1$/m, 'a broker gauge')
  t.match(metrics, /^finnhubd_kafka_broker_up\{client="consumer",broker="\d+ 127\.0\.0\.1:\d+"\} 1$/m)
  t.match(metrics, new RegExp(`^finnhubd_cassandra_host_up\\{host="${endpoints.cassandraHost.replace(/\./g, '\\.')}:${endpoints.cassandraPort}",dc="datacenter1",rack="rack1"\\} 1$`, 'm'), 'a host gauge')

  await down(o, kafkaOnly, () => {})
  // Each client learns it from its own next statistics event: wait for both.
  t.ok(await waitFor(() => { const c = daemon.readiness().checks; return c['kafka_producer']?.ok === false && c['kafka_consumer']?.ok === false }, 30_000),
    'not ready once the broker is gone, by both Kafka checks')
  const red = await readyz()
  t.equal(red.status, 503)
  const gone = /^(0\/1 brokers up|no broker known)$/
  t.match(red.body.checks, { kafka_producer: { ok: false, detail: gone }, kafka_consumer: { ok: false, detail: gone }, cassandra: { ok: true } })
  const redNodes = (red.body.checks as Record<string, { nodes?: Array<Record<string, unknown>> }>)['kafka_producer']?.nodes ?? []
  t.ok(redNodes.every(n => n['up'] === false), `the broker is shown down (${JSON.stringify(redNodes)})`)

  await up(o, process.env, kafkaOnly, () => {})
  t.ok(await waitFor(() => daemon.readiness().ready, 60_000), 'ready again once the broker is back')
  t.equal((await readyz()).status, 200)
  t.equal(await daemon.stop('test'), 0, 'and it drains normally')
})
