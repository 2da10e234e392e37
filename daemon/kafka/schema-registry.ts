// Registers the Trade schema with a Confluent-compatible schema registry (subject
// "<topic>-value", the TopicNameStrategy) and returns its id for the Confluent wire
// format. Done once at start; the id is cached for the life of the process.

import { readFileSync } from 'node:fs'
import { FinnhubdError } from '../core/errors.js'

export interface RegisterOptions {
  registryUrl: string
  subject: string
  schema: string
  timeoutMs?: number
  fetchImpl?: typeof fetch
}

export async function registerSchema (opts: RegisterOptions): Promise<number> {
  const url = `${opts.registryUrl.replace(/\/+$/, '')}/subjects/${encodeURIComponent(opts.subject)}/versions`
  let res: Response
  try {
    res = await (opts.fetchImpl ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: opts.schema, schemaType: 'AVRO' }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000)
    })
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA_REGISTRY',
      `cannot reach the schema registry at ${opts.registryUrl} (${(err as Error).message}); check kafka.schemaRegistryUrl / SCHEMA_REGISTRY_URL, or set it to null for single-object encoding`,
      { cause: err })
  }
  const text = await res.text()
  if (!res.ok) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA_REGISTRY',
      `the schema registry rejected the schema for subject ${opts.subject} (HTTP ${res.status}: ${text.slice(0, 300)}); ` +
      'a 409 means it breaks the subject\'s compatibility rule: evolve schemas/trade.avsc compatibly or change the rule')
  }
  const body = JSON.parse(text) as { id?: unknown }
  if (typeof body.id !== 'number') {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA_REGISTRY', `the schema registry answered without a numeric id: ${text.slice(0, 200)}`)
  }
  return body.id
}

/**
 * The id of the Trade schema (the file at schemaPath) under "<topic>-value", for the
 * Confluent wire format; null when no registry is configured (single-object encoding).
 */
export async function tradeSchemaId (kafka: { schemaRegistryUrl: string | null, topic: string }, schemaPath: string): Promise<number | null> {
  if (kafka.schemaRegistryUrl === null) return null
  return await registerSchema({
    registryUrl: kafka.schemaRegistryUrl,
    subject: `${kafka.topic}-value`,
    schema: JSON.stringify(JSON.parse(readFileSync(schemaPath, 'utf8')))
  })
}
