// Kafka goes away during ingest (its process is stopped, then started again). The
// producer buffers up to kafka.maxBufferedMessages and no further: beyond the
// bound trades are dropped with a counted reason. Every trade accepted into the
// buffer arrives once Kafka is back. Runs on a private single-node Kafka so the
// shared stack the other tests use is never stopped.
import t from 'tap'
import { Registry } from 'prom-client'
import { validateConfig } from '../../daemon/config/load.js'
import { startIngest } from '../../daemon/ingest.js'
import { createLogger } from '../../daemon/log.js'
import { FinnhubSimulator } from '../../tools/simulator/server.js'
import { stackEndpoints } from '../../tools/stack/options.js'
import { down, selectComponents, up } from '../../tools/stack/stack.js'
import { createTopic, readTopic, waitFor } from '../fixtures/kafka.js'
import { privateStackOptions } from '../fixtures/ports.js'

t.setTimeout(300_000)

t.test('Kafka stopped mid-stream: bounded buffer, counted drops, every buffered trade delivered after', async t => {
  const o = await privateStackOptions(t.testdir({}), { kafkaHeapMb: 512 })
  const kafka = selectComponents(['kafka'])
  const quiet = (): void => {}
  await up(o, process.env, kafka, quiet)
  t.teardown(() => down(o, kafka, quiet))
  const { kafkaBootstrap } = stackEndpoints(o)
  const topic = 'finnhub.outage'
  await createTopic(kafkaBootstrap, topic)

  const BOUND = 3000
  const sim = new FinnhubSimulator({ token: 'x', ratePerSec: 2000, seed: 11 })
  await sim.start()
  t.teardown(() => sim.close())
  const config = validateConfig({
    finnhub: { url: sim.url, token: 'x', symbols: ['AAPL', 'MSFT', 'BINANCE:BTCUSDT'] },
    kafka: { bootstrapServers: [kafkaBootstrap], topic, maxBufferedMessages: BOUND, lingerMs: 2, statsIntervalMs: 100 }
  })
  const logs: string[] = []
  const ingest = await startIngest(config, { log: createLogger({ level: 'info', write: l => logs.push(l), limitIntervalMs: 0 }), registry: new Registry() })
  t.teardown(() => ingest.stop(Date.now() + 5_000))
  const c = ingest.counters

  t.ok(await waitFor(() => c.delivered > 1000), 'trades flow into Kafka')
  await down(o, kafka, quiet)
  const deliveredAtStop = c.delivered
  let maxBuffered = 0
  const sampler = setInterval(() => { maxBuffered = Math.max(maxBuffered, ingest.producer.buffered) }, 20)
  t.ok(await waitFor(() => c.dropped.queue_full > 500, 60_000), 'once the buffer is full, trades are dropped')
  sim.pause()
  await new Promise(resolve => setTimeout(resolve, 200))
  clearInterval(sampler)
  t.ok(maxBuffered > BOUND / 2 && maxBuffered <= BOUND, `librdkafka held up to the bound and never more (max ${maxBuffered} ≤ ${BOUND})`)
  t.equal(c.tradesReceived, c.produced + c.dropped.queue_full, 'every trade received was either buffered or counted as dropped')
  t.ok(logs.some(l => /Kafka buffer is full/.test(l) && /maxBufferedMessages/.test(l)), 'the drop is logged with what to change')

  await up(o, process.env, kafka, quiet)
  t.ok(await waitFor(() => c.delivered === c.produced, 120_000), `all ${c.produced} buffered trades acknowledged after Kafka returned`)
  t.equal(c.dropped.delivery_failed, 0, 'none timed out')
  t.ok(c.delivered - deliveredAtStop > 0 && c.delivered - deliveredAtStop <= BOUND + 1000, 'what was held during the outage was at most the bound (plus what was in flight at the stop)')
  const messages = await readTopic(kafkaBootstrap, topic, { expect: c.produced, settleMs: 1500, deadlineMs: 90_000 })
  t.equal(messages.length, c.produced, 'the topic holds exactly the trades accepted: nothing lost, nothing duplicated')
})
