// Where the project's own files (cql/, schemas/) are, whether we run from the
// compiled dist/ tree or from the TypeScript sources under test, and the loading of
// the Avro schema file: the one place the trade schema is read from disk.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type avro from 'avsc'
import { FinnhubdError } from './core/errors.js'
import { tradeTypeOf } from './core/trade-schema.js'

function findRoot (start: string): string {
  let dir = start
  for (;;) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'finnhubd') return dir
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`finnhubd's package.json not found above ${start}`)
    dir = parent
  }
}

export const PROJECT_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))
export const CQL_DIR = join(PROJECT_ROOT, 'cql')
export const SCHEMAS_DIR = join(PROJECT_ROOT, 'schemas')
export const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** Relative schema paths are relative to the installation, so the daemon finds them from any cwd. */
export function resolveSchemaPath (schemaPath: string): string {
  return resolve(PROJECT_ROOT, schemaPath)
}

/** Reads the Avro Trade schema at `path` (see resolveSchemaPath) into its avsc Type. */
export function loadTradeType (path: string): avro.Type {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_SCHEMA',
      `cannot load the Avro schema ${path}: ${(err as Error).message}; check schemaPath / SCHEMA_PATH`, { cause: err })
  }
  return tradeTypeOf(text, path)
}
