// The one librdkafka configuration every Kafka client of the daemon starts from (the
// trade producer and consumer, the dead-letter producer, the admin client, the topic
// reader, the connection probe): brokers, client id, security and the deployment's
// pass-through properties. A client adds only what is its own on top, so a new client
// cannot forget TLS or SASL. Pure: no I/O, testable without a broker.

import type { Config } from '../config/schema.js'

export type KafkaProperties = Record<string, string | number | boolean>

/** The base properties for a client named `${kafka.clientId}${suffix}`. */
export function kafkaClientConfig (kafka: Config['kafka'], suffix = ''): KafkaProperties {
  return {
    // The deployment's own first: the schema refuses every property set below
    // (ownedKafkaProperty), and the client's own come after, so none can be overridden.
    ...kafka.clientProperties,
    'metadata.broker.list': kafka.bootstrapServers.join(','),
    'client.id': `${kafka.clientId}${suffix}`,
    ...kafkaSecurityProperties(kafka.security)
  }
}

/** security.protocol, sasl.* and ssl.* for kafka.security (secrets already resolved by the loader). */
export function kafkaSecurityProperties (sec: Config['kafka']['security']): KafkaProperties {
  const out: KafkaProperties = { 'security.protocol': sec.protocol }
  if (sec.protocol === 'sasl_plaintext' || sec.protocol === 'sasl_ssl') {
    out['sasl.mechanisms'] = sec.sasl.mechanism
    if (sec.sasl.username !== null) out['sasl.username'] = sec.sasl.username
    if (sec.sasl.password !== null) out['sasl.password'] = sec.sasl.password
  }
  if (sec.protocol === 'ssl' || sec.protocol === 'sasl_ssl') {
    const ssl = sec.ssl
    if (ssl.caFile !== null) out['ssl.ca.location'] = ssl.caFile
    if (ssl.certificateFile !== null) out['ssl.certificate.location'] = ssl.certificateFile
    if (ssl.keyFile !== null) out['ssl.key.location'] = ssl.keyFile
    if (ssl.keyPassword !== null) out['ssl.key.password'] = ssl.keyPassword
    out['ssl.endpoint.identification.algorithm'] = ssl.verifyHostname ? 'https' : 'none'
  }
  return out
}
