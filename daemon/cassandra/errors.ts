// What a failed Cassandra request means for the rows in it. Transient failures
// (timeouts, unavailable, overloaded, bootstrapping, no host, a broken connection,
// and schema problems an operator fixes with `finnhubd migrate`) are retried until
// written: nothing is lost and nothing is committed meanwhile. A request that the
// server or the driver refuses because of what is *in* it (InvalidRequest such as a
// partition key over 65,535 bytes, a value the driver cannot encode) would fail the
// same way forever: retrying it stalls the partition, so its rows are isolated and
// dead-lettered instead (daemon/cassandra/writer.ts).

import cassandra from 'cassandra-driver'

export type CassandraFailure =
  | { kind: 'transient', hint: string }
  | { kind: 'rejected', message: string }

const codes = cassandra.types.responseErrorCodes

// InvalidRequest is also the answer to a missing table or column: that is the schema's
// fault, not the rows', and every row would be refused the same way. Never dead-letter for it.
const SCHEMA_PROBLEM = /unconfigured table|keyspace .* does not exist|undefined column|unknown identifier|doesn't exist|does not exist/i

export function classifyCassandraError (err: unknown): CassandraFailure {
  if (err instanceof cassandra.errors.ResponseError) {
    if (err.code === codes.invalid) {
      if (SCHEMA_PROBLEM.test(err.message)) return { kind: 'transient', hint: 'the keyspace or a table is missing or out of date: run `finnhubd migrate` against this cluster' }
      return { kind: 'rejected', message: `Cassandra refused the request: ${err.message}` }
    }
    if (err.code === codes.unauthorized || err.code === codes.badCredentials) {
      return { kind: 'transient', hint: 'the Cassandra user may not write these tables: check CASSANDRA_USER and its grants' }
    }
    if (err.code === codes.syntaxError || err.code === codes.configError) {
      return { kind: 'transient', hint: 'the statement does not fit the cluster: check cassandra.keyspace and cassandra.tradesTable, then run `finnhubd migrate`' }
    }
  }
  // The driver encodes parameters before sending: a value it cannot encode throws one of
  // these synchronously (e.g. a partition key over 65,535 bytes is a RangeError).
  if (err instanceof cassandra.errors.ArgumentError || err instanceof TypeError || err instanceof RangeError) {
    return { kind: 'rejected', message: `the Cassandra driver could not encode the request: ${(err as Error).message}` }
  }
  return { kind: 'transient', hint: 'Cassandra is unreachable or overloaded: check that it runs and that cassandra.contactPoints and cassandra.port point at it' }
}
