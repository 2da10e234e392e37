// What a reload changes, pure: leaf-by-leaf differences, which of them apply live,
// and the configuration the daemon runs on afterwards.
import t from 'tap'
import { validateConfig } from '../../daemon/config/load.js'
import { describeChange, diffConfig, effectiveConfig, HOT_KEYS } from '../../daemon/config/reload.js'

const base = validateConfig({ finnhub: { symbols: ['AAPL', 'MSFT'], token: 'old-secret' } })

t.test('no change, no differences', async t => {
  t.same(diffConfig(base, validateConfig({ finnhub: { symbols: ['AAPL', 'MSFT'], token: 'old-secret' } })), [])
})

t.test('each differing leaf is named, arrays compare whole, hot keys are marked', async t => {
  const next = validateConfig({
    logLevel: 'debug',
    finnhub: { symbols: ['AAPL', 'TSLA'], token: 'new-secret' },
    kafka: { lingerMs: 50, commitIntervalMs: 500 },
    workers: { batchSize: 100 }
  })
  const changes = diffConfig(base, next)
  t.same(changes.map(c => [c.path, c.hot]), [
    ['logLevel', true],
    ['finnhub.token', true],
    ['finnhub.symbols', true],
    ['kafka.lingerMs', false],
    ['kafka.commitIntervalMs', true],
    ['workers.batchSize', true]
  ])
  t.same(changes.find(c => c.path === 'finnhub.symbols'), { path: 'finnhub.symbols', from: ['AAPL', 'MSFT'], to: ['AAPL', 'TSLA'], hot: true })
})

t.test('the effective config keeps restart-only keys at their running values', async t => {
  const next = validateConfig({ logLevel: 'warn', finnhub: { symbols: ['TSLA'], token: 'old-secret' }, kafka: { lingerMs: 50, topic: 'other' } })
  const changes = diffConfig(base, next)
  const eff = effectiveConfig(base, next, changes)
  t.equal(eff.logLevel, 'warn')
  t.same(eff.finnhub.symbols, ['TSLA'])
  t.equal(eff.kafka.lingerMs, base.kafka.lingerMs, 'needs a restart: unchanged')
  t.equal(eff.kafka.topic, base.kafka.topic)
  t.ok(Object.isFrozen(eff.kafka), 'frozen like every config')
  // A later reload of the same file reports the restart-only keys again.
  t.same(diffConfig(eff, next).map(c => c.path), ['kafka.topic', 'kafka.lingerMs'])
})

t.test('secrets never appear in a described change', async t => {
  const next = validateConfig({ finnhub: { symbols: ['AAPL', 'MSFT'], token: 'new-secret' }, cassandra: { username: 'u', password: 'p' } })
  const described = diffConfig(base, next).map(describeChange)
  t.notMatch(JSON.stringify(described), /secret|"p"/)
  t.same(described.find(d => d.key === 'finnhub.token'), { key: 'finnhub.token', from: '[redacted]', to: '[redacted]' })
  t.same(described.find(d => d.key === 'cassandra.username'), { key: 'cassandra.username', from: null, to: 'u' })
})

t.test('every hot key exists in the schema', async t => {
  const leaves = new Set<string>()
  const walk = (o: unknown, path: string[]): void => {
    if (o !== null && typeof o === 'object' && !Array.isArray(o)) for (const [k, v] of Object.entries(o)) walk(v, [...path, k])
    else leaves.add(path.join('.'))
  }
  walk(base, [])
  for (const k of HOT_KEYS) t.ok(leaves.has(k), k)
})
