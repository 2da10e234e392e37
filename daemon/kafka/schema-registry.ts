// Registers the Trade schema with a Confluent-compatible schema registry (subject
// "<topic>-value", the TopicNameStrategy) and returns its id for the Confluent wire
// format. Done once at start; the id is cached for the life of the process.

import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Config } from '../config/schema.js'
import { FinnhubdError } from '../core/errors.js'

export interface RegisterOptions {
  registryUrl: string
  subject: string
  schema: string
  timeoutMs?: number
  /** Basic auth (kafka.schemaRegistry.username / password). */
  username?: string | null
  password?: string | null
  /** A CA bundle for a registry whose certificate a private CA signed. */
  caFile?: string | null
}

interface Answer { status: number, text: () => Promise<string>, ok: boolean }

// node:https rather than fetch: fetch takes no CA of its own without undici's Agent,
// which is not a dependency. Redirects are not followed (the credentials would go along).
async function post (url: URL, body: string, opts: RegisterOptions): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/vnd.schemaregistry.v1+json', 'content-length': String(Buffer.byteLength(body)) }
  if (opts.username != null && opts.password != null) {
    headers['authorization'] = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise<Answer>((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers,
      timeout: opts.timeoutMs ?? 10_000,
      ...(url.protocol === 'https:' && opts.caFile != null ? { ca: readFileSync(opts.caFile) } : {})
    }, res => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => { if ((size += c.length) <= 1_000_000) chunks.push(c) })
      res.on('end', () => {
        const status = res.statusCode ?? 0
        resolve({ status, ok: status >= 200 && status < 300, text: async () => Buffer.concat(chunks).toString('utf8') })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 10_000} ms`)) })
    req.on('error', reject)
    req.end(body)
  })
}

export async function registerSchema (opts: RegisterOptions): Promise<number> {
  const url = new URL(`${opts.registryUrl.replace(/\/+$/, '')}/subjects/${encodeURIComponent(opts.subject)}/versions`)
  let res: Answer
  try {
    res = await post(url, JSON.stringify({ schema: opts.schema, schemaType: 'AVRO' }), opts)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const tls = code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code)
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA_REGISTRY',
      `cannot reach the schema registry at ${opts.registryUrl} (${(err as Error).message}); ` +
      (tls
        ? 'its certificate is not trusted: set kafka.schemaRegistry.caFile to the CA that signed it'
        : 'check kafka.schemaRegistryUrl / SCHEMA_REGISTRY_URL, or set it to null for single-object encoding'),
      { cause: err })
  }
  if (res.status === 401 || res.status === 403) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA_REGISTRY',
      `the schema registry at ${opts.registryUrl} refused ${opts.username != null ? `the credentials of user "${opts.username}"` : 'a request without credentials'} (HTTP ${res.status}); ` +
      'set kafka.schemaRegistry.username and its password (passwordFile, SCHEMA_REGISTRY_PASSWORD or the systemd credential schema-registry-password)')
  }
  if (res.status >= 300 && res.status < 400) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA_REGISTRY',
      `the schema registry at ${opts.registryUrl} answered with a redirect (HTTP ${res.status}), which finnhubd does not follow with credentials; set kafka.schemaRegistryUrl to the final address`)
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
export async function tradeSchemaId (kafka: Pick<Config['kafka'], 'schemaRegistryUrl' | 'topic' | 'schemaRegistry'>, schemaPath: string): Promise<number | null> {
  if (kafka.schemaRegistryUrl === null) return null
  const r = kafka.schemaRegistry
  return await registerSchema({
    registryUrl: kafka.schemaRegistryUrl,
    username: r.username,
    password: r.password,
    caFile: r.caFile,
    timeoutMs: r.timeoutMs,
    subject: `${kafka.topic}-value`,
    schema: JSON.stringify(JSON.parse(readFileSync(schemaPath, 'utf8')))
  })
}
