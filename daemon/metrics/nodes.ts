// One gauge series per Cassandra host and per Kafka broker, from what /readyz shows
// (the driver's host list, librdkafka's statistics): 1 up, 0 down. A node no client
// knows any more drops out at the next scrape.

import { Gauge, type Registry } from 'prom-client'
import type { Readiness } from '../readiness.js'

export function registerNodeMetrics (registry: Registry, read: () => Readiness): void {
  // eslint-disable-next-line no-new -- registered through `registers`
  new Gauge({
    name: 'finnhubd_cassandra_host_up',
    help: '1 while the Cassandra driver holds the host up, by host, data center and rack',
    labelNames: ['host', 'dc', 'rack'],
    registers: [registry],
    collect () {
      this.reset()
      for (const n of read().checks['cassandra']?.nodes ?? []) this.set({ host: n.node, dc: n.datacenter ?? '', rack: n.rack ?? '' }, n.up ? 1 : 0)
    }
  })
  // eslint-disable-next-line no-new -- registered through `registers`
  new Gauge({
    name: 'finnhubd_kafka_broker_up',
    help: '1 while the Kafka client (producer or consumer) is connected to the broker, by broker "id host:port"',
    labelNames: ['client', 'broker'],
    registers: [registry],
    collect () {
      const checks = read().checks
      this.reset()
      for (const [client, key] of [['producer', 'kafka_producer'], ['consumer', 'kafka_consumer']] as const) {
        for (const n of checks[key]?.nodes ?? []) this.set({ client, broker: n.node }, n.up ? 1 : 0)
      }
    }
  })
}
