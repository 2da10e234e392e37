// What a failed Kafka connection means for the operator. librdkafka reports a refused
// login, an untrusted certificate or a listener of the other protocol as an error
// event and keeps retrying, so a start with wrong settings would otherwise wait for
// the connect timeout and then say only "timed out". These errors are definitive: the
// caller stops at the first one and names the setting to change. Pure, and the
// messages carry no secret (librdkafka's own texts hold none).

import { FinnhubdError } from '../core/errors.js'
import type { Config } from '../config/schema.js'

export interface KafkaErrorLike { code?: number | string, message: string }

// librdkafka's local error codes (rdkafka.h).
const ERR_AUTHENTICATION = -169
const ERR_SSL = -181

const firstLine = (text: string): string => (text.split('\n')[0] ?? '').slice(0, 400)

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
        `the certificate of Kafka at ${at} is not for the host connected to (${said}); use the broker names its certificate lists ` +
        'in kafka.bootstrapServers (and the brokers\' advertised listeners), or, for a test only, kafka.security.ssl.verifyHostname: false')
    }
    return new FinnhubdError('FINNHUBD_ERR_KAFKA_TLS',
      `the certificate of Kafka at ${at} is not trusted (${said}); set kafka.security.ssl.caFile to the CA that signed the brokers' certificates ` +
      '(null uses the system\'s trusted CAs)')
  }
  if (err.code === ERR_SSL || /SSL handshake failed|SSL alert|tlsv1 alert|sslv3 alert/i.test(text)) {
    return new FinnhubdError('FINNHUBD_ERR_KAFKA_TLS',
      `the TLS handshake with Kafka at ${at} failed (${said}); check kafka.security.ssl (caFile, certificateFile and keyFile for mutual TLS) and kafka.security.protocol`)
  }
  return null
}
