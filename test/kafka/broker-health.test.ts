// Broker health from librdkafka's statistics, pure.
import t from 'tap'
import { brokerHealth, kafkaCheck } from '../../daemon/kafka/admin.js'

t.test('bootstrap entries are not brokers; UP counts', async t => {
  t.same(brokerHealth(undefined), { up: 0, known: 0, nodes: [] })
  t.same(brokerHealth({
    '127.0.0.1:19092/bootstrap': { state: 'UP', nodeid: -1 },
    '127.0.0.1:19093/2': { state: 'CONNECT', nodeid: 2 },
    '127.0.0.1:19092/1': { state: 'UP', nodeid: 1, nodename: 'kafka-1.example:19092' }
  }), {
    up: 1,
    known: 2,
    nodes: [
      { node: '1 kafka-1.example:19092', up: true, state: 'UP' },
      { node: '2 127.0.0.1:19093', up: false, state: 'CONNECT' }
    ]
  }, 'each broker of the cluster by id and address, in id order; without nodename the key names it')
})

t.test('a check is red when disconnected or when no known broker is up', async t => {
  t.same(kafkaCheck(false, null), { ok: false, detail: 'disconnected' })
  t.same(kafkaCheck(true, null), { ok: true, detail: 'connected' }, 'before the first statistics')
  t.same(kafkaCheck(true, { up: 0, known: 0, nodes: [] }), { ok: false, detail: 'no broker known', nodes: [] }, 'statistics without any broker of the cluster')
  const down = { node: '1 a:9092', up: false, state: 'DOWN' }
  t.same(kafkaCheck(true, { up: 0, known: 1, nodes: [down] }), { ok: false, detail: '0/1 brokers up', nodes: [down] })
  const three = [{ node: '1 a:9092', up: true, state: 'UP' }, { node: '2 b:9092', up: true, state: 'UP' }, { node: '3 c:9092', up: false, state: 'CONNECT' }]
  t.same(kafkaCheck(true, { up: 2, known: 3, nodes: three }), { ok: true, detail: '2/3 brokers up', nodes: three }, 'the nodes go to /readyz')
  t.same(kafkaCheck(false, { up: 0, known: 1, nodes: [down] }), { ok: false, detail: 'disconnected', nodes: [down] }, 'last known nodes while disconnected')
})
