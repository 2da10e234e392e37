// Where the project's own files (cql/, schemas/) are, whether we run from the
// compiled dist/ tree or from the TypeScript sources under test.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

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
