// Produces keyed values into a topic as fast as librdkafka takes them and waits for
// every acknowledgement: the benchmarks' pre-fill, and the tests' record writer.

import Kafka from 'node-rdkafka'

export async function produceAll (bootstrap: string, topic: string, records: ReadonlyArray<{ key: string, value: Buffer }>): Promise<void> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': bootstrap,
    'enable.idempotence': true,
    'linger.ms': 5,
    'queue.buffering.max.messages': 1_000_000,
    'queue.buffering.max.kbytes': 1_048_576,
    dr_cb: true
  } as Kafka.ProducerGlobalConfig)
  await new Promise<void>((resolve, reject) => { producer.connect({ timeout: 10_000 }, err => { err ? reject(err) : resolve() }) })
  producer.setPollInterval(10)
  const state = { acked: 0, failed: null as Error | null }
  producer.on('delivery-report', err => { if (err) state.failed = new Error(err.message); else state.acked++ })
  for (const r of records) {
    for (;;) {
      try {
        producer.produce(topic, null, r.value, r.key)
        break
      } catch (err) {
        if ((err as { code?: number }).code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) throw err
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    }
  }
  await new Promise<void>((resolve, reject) => { producer.flush(60_000, err => { err ? reject(err) : resolve() }) })
  const deadline = Date.now() + 10_000
  while (state.acked < records.length && state.failed === null && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  await new Promise<void>(resolve => { producer.disconnect(() => resolve()) })
  if (state.failed !== null) throw state.failed
  if (state.acked < records.length) throw new Error(`only ${state.acked} of ${records.length} records acknowledged`)
}
