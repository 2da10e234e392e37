// Broker health from librdkafka's statistics, pure.
import t from 'tap'
import { brokerHealth, kafkaCheck } from '../../daemon/kafka/admin.js'

t.test('bootstrap entries are not brokers; UP counts', async t => {
  t.same(brokerHealth(undefined), { up: 0, known: 0 })
  t.same(brokerHealth({
    '127.0.0.1:19092/bootstrap': { state: 'UP', nodeid: -1 },
    '127.0.0.1:19092/1': { state: 'UP', nodeid: 1 },
    '127.0.0.1:19093/2': { state: 'CONNECT', nodeid: 2 }
  }), { up: 1, known: 2 })
})

t.test('a check is red when disconnected or when no known broker is up', async t => {
  t.same(kafkaCheck(false, null), { ok: false, detail: 'disconnected' })
  t.same(kafkaCheck(true, null), { ok: true, detail: 'connected' }, 'before the first statistics')
  t.same(kafkaCheck(true, { up: 0, known: 0 }), { ok: false, detail: 'no broker known' }, 'statistics without any broker of the cluster')
  t.same(kafkaCheck(true, { up: 0, known: 1 }), { ok: false, detail: '0/1 brokers up' })
  t.same(kafkaCheck(true, { up: 2, known: 3 }), { ok: true, detail: '2/3 brokers up' })
})
