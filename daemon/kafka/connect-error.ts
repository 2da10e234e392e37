// What a failed Kafka connection means for the operator. librdkafka reports a refused
// login, an untrusted certificate or a listener of the other protocol in its log
// (node-rdkafka's event.log: a client polls its error events only once connected)
// and keeps retrying, so a start with wrong settings would otherwise wait for the
// connect timeout and then say only "broker transport failure". These errors are definitive: the
// caller stops at the first one and names the setting to change. Pure, and the
// messages carry no secret (librdkafka's own texts hold none).

import { FinnhubdError } from '../core/errors.js'
import type { Config } from '../config/schema.js'

export interface KafkaErrorLike { code?: number | string, message: string }

// librdkafka's local error codes (rdkafka.h).
const ERR_AUTHENTICATION = -169
const ERR_SSL = -181

const firstLine = (text: string): string => (text.split('\n')[0] ?? '').slice(0, 400)

const NAMES_HINT = 'use the broker names its certificate lists in kafka.bootstrapServers (and the brokers\' advertised listeners), ' +
  'or, for a test only, kafka.security.ssl.verifyHostname: false'

/**
 * The FinnhubdError for an error that retrying will not cure (credentials, TLS, the
 * protocol), or null for one that might pass (a broker down, a timeout).
 */
export function definitiveKafkaError (err: KafkaErrorLike, kafka: Config['kafka']): FinnhubdError | null {
  const at = kafka.bootstrapServers.join(',')
  const sec = kafka.security
  const text = err.message
  const said = `librdkafka: ${firstLine(text)}`
  if (/PLAINTEXT broker listener|wrong version number|incorrect security\.protocol|SSL listener\?|http request|packet length too long|unexpected eof while reading/i.test(text)) {
    return new FinnhubdError('FINNHUBD_ERR_KAFKA_PROTOCOL',
      `Kafka at ${at} speaks another protocol than kafka.security.protocol=${sec.protocol} (${said}); ` +
      'set kafka.security.protocol (KAFKA_SECURITY_PROTOCOL) to what the listener on that port expects: plaintext, ssl, sasl_plaintext or sasl_ssl')
  }
  if (err.code === ERR_AUTHENTICATION || /SASL authentication error|Authentication failed|SASL handshake failed|Unsupported SASL mechanism/i.test(text)) {
    const who = `user "${sec.sasl.username ?? '(none)'}" with ${sec.sasl.mechanism}`
    return new FinnhubdError('FINNHUBD_ERR_KAFKA_AUTH',
      `Kafka at ${at} refused the SASL login of ${who} (${said}); check kafka.security.sasl.username and its password ` +
      '(kafka.security.sasl.passwordFile, KAFKA_SASL_PASSWORD or the systemd credential kafka-sasl-password) and kafka.security.sasl.mechanism')
  }
  if (/certificate verify failed|could not be verified|self.signed|unable to get local issuer|certificate has expired|hostname mismatch|IP address mismatch|Broker certificate/i.test(text)) {
    if (/hostname mismatch|IP address mismatch|name mismatch/i.test(text)) {
      return new FinnhubdError('FINNHUBD_ERR_KAFKA_TLS',
        `the certificate of Kafka at ${at} is not for the host connected to (${said}); ${NAMES_HINT}`)
    }
    // librdkafka 2.12 words an unknown CA and a certificate for another name alike.
    return new FinnhubdError('FINNHUBD_ERR_KAFKA_TLS',
      `the certificate of Kafka at ${at} could not be verified (${said}): either it is not signed by a CA this client trusts — ` +
      'set kafka.security.ssl.caFile to the CA that signed the brokers\' certificates (null uses the system\'s trusted CAs) — ' +
      `or it does not name the host connected to: ${NAMES_HINT}`)
  }
  if (err.code === ERR_SSL || /SSL handshake failed|SSL alert|tlsv1 alert|sslv3 alert/i.test(text)) {
    return new FinnhubdError('FINNHUBD_ERR_KAFKA_TLS',
      `the TLS handshake with Kafka at ${at} failed (${said}); check kafka.security.ssl (caFile, certificateFile and keyFile for mutual TLS) and kafka.security.protocol`)
  }
  return null
}

/** librdkafka's text for a connection the broker closed before answering the first request. */
const CLOSED_AT_FIRST_REQUEST = /(Disconnected|connection closed by peer).*in state APIVERSION_QUERY/i

/**
 * Watches one client's connect: each error event and log line goes to observe(), which
 * answers the definitive error once there is one. Beyond definitiveKafkaError's texts:
 * a client without TLS whose connection the broker closes at the first request, twice
 * (librdkafka 2.12 says no more when a TLS listener meets a plaintext client), is
 * taken for the other protocol; once could be a broker restarting.
 */
export class KafkaConnectWatch {
  readonly #kafka: Config['kafka']
  #closedAtFirstRequest = 0

  constructor (kafka: Config['kafka']) {
    this.#kafka = kafka
  }

  observe (err: KafkaErrorLike): FinnhubdError | null {
    const definitive = definitiveKafkaError(err, this.#kafka)
    if (definitive !== null) return definitive
    const protocol = this.#kafka.security.protocol
    if ((protocol === 'plaintext' || protocol === 'sasl_plaintext') && CLOSED_AT_FIRST_REQUEST.test(err.message) && ++this.#closedAtFirstRequest >= 2) {
      return new FinnhubdError('FINNHUBD_ERR_KAFKA_PROTOCOL',
        `Kafka at ${this.#kafka.bootstrapServers.join(',')} closed the connection at the first request, twice (librdkafka: ${firstLine(err.message)}): ` +
        `the listener on that port probably expects TLS, and kafka.security.protocol is ${protocol}; ` +
        'set kafka.security.protocol (KAFKA_SECURITY_PROTOCOL) to ssl or sasl_ssl, with kafka.security.ssl.caFile')
    }
    return null
  }
}
