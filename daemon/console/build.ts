// `npm run build`'s last step: the console's page, script and style sheet, and the
// charting library's standalone build (lightweight-charts, from node_modules, with its
// licence), copied into dist/console, which the daemon serves. Nothing is fetched at
// run time: the console works on a machine with no internet.

import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { PROJECT_ROOT } from '../paths.js'
import { CONSOLE_DIR } from './console.js'

export function buildConsole (out = CONSOLE_DIR): string[] {
  const source = join(PROJECT_ROOT, 'daemon', 'console', 'static')
  const charts = dirname(createRequire(import.meta.url).resolve('lightweight-charts/package.json'))
  mkdirSync(out, { recursive: true })
  const copies: Array<[string, string]> = [
    ...readdirSync(source).map((f): [string, string] => [join(source, f), f]),
    [join(charts, 'dist', 'lightweight-charts.standalone.production.js'), 'lightweight-charts.js'],
    [join(charts, 'LICENSE'), 'lightweight-charts.LICENSE']
  ]
  for (const [from, to] of copies) copyFileSync(from, join(out, to))
  return copies.map(([, to]) => to)
}

if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  const files = buildConsole()
  process.stdout.write(`console: ${files.length} files in ${CONSOLE_DIR}\n`)
}
