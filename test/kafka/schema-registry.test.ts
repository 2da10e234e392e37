// The schema-registry path against a real Confluent-API-compatible registry (Apicurio
// Registry 3, run for this test): the ingest role registers `<topic>-value` and writes
// the Confluent wire format (0x00, schema id, body); the process role decodes it by
// that id and stores every trade; a schema the registry refuses is a clear error.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startDaemon } from '../../daemon/daemon.js'
import { createLogger } from '../../daemon/log.js'
import { registerSchema } from '../../daemon/kafka/schema-registry.js'
import { SCHEMAS_DIR } from '../../daemon/paths.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { testEndpoints } from '../fixtures/endpoints.js'
import { readTopic } from '../fixtures/kafka.js'
import { cassandraClient, pipelineConfig, readTrades, waitCommitted } from '../fixtures/pipeline.js'
import { startRegistry } from '../fixtures/registry.js'

t.setTimeout(300_000)

t.test('Confluent wire format through a real registry, end to end; a refused schema says why', async t => {
  const registry = await startRegistry(t)
  const N = 1500
  const SYMBOLS = ['AAPL', 'MSFT']
  const sim = new FinnhubSimulator({ token: 'tok', ratePerSec: 3000, keepSent: true, maxTotalTrades: N, seed: 3 })
  await sim.start()
  t.teardown(() => sim.close())
  const config = await pipelineConfig({ finnhub: { url: sim.url, token: 'tok', symbols: SYMBOLS }, kafka: { schemaRegistryUrl: registry } })
  const daemon = await startDaemon({ config, roles: ['ingest', 'process'], log: createLogger({ level: 'error', write: () => {} }), stopSignal: new Promise(() => {}) })
  t.equal(daemon.ingest?.framing.kind, 'confluent')
  const schemaId = daemon.ingest?.framing.kind === 'confluent' ? daemon.ingest.framing.schemaId : -1
  t.ok(await waitCommitted(config, N, 90_000), `all ${N} trades stored and committed`)
  await daemon.stop('test')
  t.same(daemon.process?.counters.poison, { empty: 0, unknown_framing: 0, truncated: 0, unknown_schema: 0, invalid_body: 0, invalid_trade: 0, internal: 0, cassandra_rejected: 0 }, 'nothing was poison')

  const subject = await (await fetch(`${registry}/subjects/${encodeURIComponent(`${config.kafka.topic}-value`)}/versions/latest`)).json() as { id: number }
  t.equal(subject.id, schemaId, 'the id in use is the one the registry holds for <topic>-value')
  const records = await readTopic(testEndpoints().kafkaBootstrap, config.kafka.topic, { expect: N, settleMs: 500 })
  t.equal(records.length, N)
  t.ok(records.every(m => m.value !== undefined && m.value !== null && m.value[0] === 0 && m.value.readUInt32BE(1) === schemaId), 'every record: magic 0, then the schema id')
  const client = cassandraClient(config)
  t.teardown(() => client.shutdown())
  t.equal((await readTrades(client, config, SYMBOLS, sim.sent().map(s => s.t))).length, N, 'and stored')

  // A schema the registry refuses under its compatibility rule.
  const subjectName = `${config.kafka.topic}-value`
  await fetch(`${registry}/config/${encodeURIComponent(subjectName)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ compatibility: 'BACKWARD' }) })
  const incompatible = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'trade.avsc'), 'utf8')) as { fields: Array<{ name: string }> }
  incompatible.fields = [...incompatible.fields.filter(f => f.name !== 'p'), { name: 'venue', type: 'string' } as { name: string }]
  await t.rejects(registerSchema({ registryUrl: registry, subject: subjectName, schema: JSON.stringify(incompatible) }), {
    code: 'FINNHUBD_ERR_SCHEMA_REGISTRY',
    message: /rejected the schema for subject .*-value \(HTTP 409/
  })
})
