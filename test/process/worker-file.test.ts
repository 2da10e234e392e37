// The worker pool runs the code its caller runs: from the sources (this test, under the
// TypeScript loader) the worker is workers/decode-batch.ts; from dist/ it is the built one.
// Before, the worker always loaded from dist/, so an edit to core/ did nothing until a rebuild.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../daemon/paths.js'
import { WORKER_FILE } from '../../daemon/process.js'

t.test('from the sources, the workers load the sources', async t => {
  t.equal(WORKER_FILE, join(PROJECT_ROOT, 'workers', 'decode-batch.ts'))
  t.ok(existsSync(WORKER_FILE))
})

t.test('from dist/, the workers load dist/', async t => {
  const built = join(PROJECT_ROOT, 'dist', 'daemon', 'process.js')
  t.ok(existsSync(built), 'dist/ is built (npm run build:dev)')
  const { WORKER_FILE: fromDist } = await import(built) as { WORKER_FILE: string }
  t.equal(fromDist, join(PROJECT_ROOT, 'dist', 'workers', 'decode-batch.js'))
  t.ok(existsSync(fromDist))
})
