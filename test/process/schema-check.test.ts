// The process role on a keyspace older than this build (real stack): a table of a
// configured candle resolution missing means every write of it would be retried for
// ever and no offset committed, so the role refuses to start and names the tables and
// `finnhubd migrate`; with that resolution left out of candles.resolutions it starts.
import t from 'tap'
import { Registry } from 'prom-client'
import type { Config } from '../../daemon/config/schema.js'
import { createLogger } from '../../daemon/log.js'
import { StageLatency } from '../../daemon/metrics/latency.js'
import { startProcess } from '../../daemon/process.js'
import { cassandraClient, pipelineConfig } from '../fixtures/pipeline.js'

t.setTimeout(120_000)

t.test('a missing candle table refuses the start by name; without that resolution the role starts', async t => {
  const config = await pipelineConfig()
  const client = cassandraClient(config)
  t.teardown(async () => {
    await client.execute(`DROP KEYSPACE IF EXISTS ${config.cassandra.keyspace}`).catch(() => {})
    await client.shutdown()
  })
  await client.execute(`DROP TABLE ${config.cassandra.keyspace}.candles_1h`)
  await client.execute(`DROP TABLE ${config.cassandra.keyspace}.candles_1d`)
  const deps = (): Parameters<typeof startProcess>[1] => ({ log: createLogger({ level: 'fatal' }), registry: new Registry(), latency: new StageLatency() })
  await t.rejects(startProcess(config, deps()), {
    code: 'FINNHUBD_ERR_MIGRATION',
    message: new RegExp(`keyspace ${config.cassandra.keyspace} has no table candles_1h, candles_1d: .*run \`finnhubd migrate\``)
  })
  const fewer: Config = { ...config, candles: { ...config.candles, resolutions: ['1m', '5m', '15m'] } }
  const role = await startProcess(fewer, deps())
  t.ok(role.consumer.connected, 'started without the longer resolutions')
  await role.stop()
})
