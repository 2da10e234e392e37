// Structured logs: JSON lines, run-time level changes, rate-limited events, errors.
import t from 'tap'
import { createLogger, MAX_LIMIT_KEYS } from '../daemon/log.js'

function capture (level: 'info' | 'debug' = 'info'): { lines: Array<Record<string, unknown>>, clock: { now: number }, log: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = []
  const clock = { now: 1_700_000_000_000 }
  const log = createLogger({ level, write: l => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => clock.now, limitIntervalMs: 1000 })
  return { lines, clock, log }
}

t.test('one JSON object per line with time, level, msg and fields', async t => {
  const { lines, log } = capture()
  log.info('hello', { a: 1 })
  log.debug('hidden')
  log.error('bad', { err: Object.assign(new Error('boom'), { code: 'X' }), big: 10n })
  t.same(lines, [
    { time: '2023-11-14T22:13:20.000Z', level: 'info', msg: 'hello', a: 1 },
    { time: '2023-11-14T22:13:20.000Z', level: 'error', msg: 'bad', err: { name: 'Error', message: 'boom', code: 'X' }, big: '10' }
  ])
})

t.test('the level changes at run time, for children too', async t => {
  const { lines, log } = capture()
  const child = log.child({ component: 'kafka' })
  child.debug('no')
  log.level = 'debug'
  child.debug('yes')
  log.trace('no')
  t.equal(child.level, 'debug')
  t.same(lines.map(l => [l['msg'], l['component']]), [['yes', 'kafka']])
  log.level = 'fatal'
  log.error('no'); log.warn('no'); log.fatal('last')
  t.same(lines.map(l => l['msg']), ['yes', 'last'])
})

t.test('limited() logs once per interval per key and counts what it suppressed', async t => {
  const { lines, clock, log } = capture()
  for (let i = 0; i < 5; i++) log.limited('warn', 'k', 'flood', { i })
  log.limited('warn', 'other', 'another key')
  clock.now += 1000
  log.limited('warn', 'k', 'flood', { i: 5 })
  clock.now += 1000
  log.limited('warn', 'k', 'flood', { i: 6 })
  log.limited('debug', 'quiet', 'below level')
  t.same(lines.map(l => [l['msg'], l['i'], l['suppressed']]), [
    ['flood', 0, undefined],
    ['another key', undefined, undefined],
    ['flood', 5, 4],
    ['flood', 6, undefined]
  ])
})

t.test('limited() remembers a bounded number of keys: endless distinct keys from a peer cost no unbounded memory', async t => {
  const lines: string[] = []
  const clock = { now: 0 }
  const log = createLogger({ level: 'info', write: l => lines.push(l), now: () => clock.now, limitIntervalMs: 1000 })
  const n = 5 * MAX_LIMIT_KEYS
  for (let i = 0; i < n; i++) log.limited('warn', `peer-${i}`, 'a distinct error', { i })
  t.equal(lines.length, n, 'each new key logs once')
  // Within the same interval: the oldest keys were forgotten (so they log again), the newest are still held.
  log.limited('warn', 'peer-0', 'again', { i: 0 })
  log.limited('warn', `peer-${n - 1}`, 'again', { i: n - 1 })
  t.same(lines.slice(n).map(l => JSON.parse(l).i), [0], 'the oldest key was forgotten, the newest one is still limited')
})

t.test('the default writer writes to stdout', async t => {
  const written: string[] = []
  const orig = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string) => { written.push(chunk); return true }) as typeof process.stdout.write
  try {
    createLogger({ level: 'info' }).info('to stdout')
  } finally {
    process.stdout.write = orig
  }
  t.equal(written.length, 1)
  t.match(written[0], /^\{"time":"[^"]+","level":"info","msg":"to stdout"\}\n$/)
})
