// Every error finnhubd raises on purpose is a FinnhubdError with a stable `code`
// (undici style), so callers, logs and tests match on the code, never on the text,
// and the message always says what to do next.

export type FinnhubdErrorCode =
  | 'FINNHUBD_ERR_CONFIG'
  | 'FINNHUBD_ERR_CASSANDRA_UNREACHABLE'
  | 'FINNHUBD_ERR_CASSANDRA_AUTH'
  | 'FINNHUBD_ERR_CASSANDRA_REJECTED'
  | 'FINNHUBD_ERR_MIGRATION'
  | 'FINNHUBD_ERR_SCHEMA'
  | 'FINNHUBD_ERR_SCHEMA_REGISTRY'
  | 'FINNHUBD_ERR_KAFKA_UNREACHABLE'
  | 'FINNHUBD_ERR_KAFKA_AUTH'
  | 'FINNHUBD_ERR_KAFKA_TLS'
  | 'FINNHUBD_ERR_KAFKA_PROTOCOL'
  | 'FINNHUBD_ERR_CASSANDRA_TLS'
  | 'FINNHUBD_ERR_FINNHUB_AUTH'
  | 'FINNHUBD_ERR_FINNHUB_REST'
  | 'FINNHUBD_ERR_STACK_JAVA'
  | 'FINNHUBD_ERR_STACK_PORT'
  | 'FINNHUBD_ERR_STACK_DOWNLOAD'
  | 'FINNHUBD_ERR_STACK_START'
  | 'FINNHUBD_ERR_USAGE'
  | 'FINNHUBD_ERR_HTTP'

export class FinnhubdError extends Error {
  readonly code: FinnhubdErrorCode

  constructor (code: FinnhubdErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FinnhubdError'
    this.code = code
  }
}

export function isFinnhubdError (err: unknown, code?: FinnhubdErrorCode): err is FinnhubdError {
  return err instanceof FinnhubdError && (code === undefined || err.code === code)
}
