// The pure half of retention: which options each table should have, what an ALTER must
// change (and only that), and the retention settings' bounds on hostile values
// (negative, fractional, NaN, infinite, huge, strings: a config error naming the key).
import t from 'tap'
import fc from 'fast-check'
import { desiredOptions, planTableChange, RETENTION_TABLES, TWCS_CLASS } from '../../daemon/cassandra/retention.js'
import { validateConfig } from '../../daemon/config/load.js'
import { MAX_RETENTION_DAYS } from '../../daemon/config/schema.js'
import { configError } from '../fixtures/config-error.js'
import { holds, runs } from '../fixtures/fuzz.js'

const SEED = 260101

t.test('each table gets its window and the TTL of its setting', async t => {
  const cassandra = validateConfig({ cassandra: { tradesTable: 'ticks', tradesRetentionDays: 2, candlesRetentionDays: 400 } }).cassandra
  t.same(desiredOptions(cassandra), [
    { table: 'ticks', ttlSeconds: 172_800, windowUnit: 'DAYS', windowSize: 1 },
    { table: 'candles_1m', ttlSeconds: 34_560_000, windowUnit: 'DAYS', windowSize: 1 },
    { table: 'candles_5m', ttlSeconds: 34_560_000, windowUnit: 'DAYS', windowSize: 30 },
    { table: 'candles_15m', ttlSeconds: 34_560_000, windowUnit: 'DAYS', windowSize: 30 },
    { table: 'candles_1h', ttlSeconds: 34_560_000, windowUnit: 'DAYS', windowSize: 30 },
    { table: 'candles_1d', ttlSeconds: 34_560_000, windowUnit: 'DAYS', windowSize: 365 },
    { table: 'gaps', ttlSeconds: 34_560_000, windowUnit: 'DAYS', windowSize: 30 }
  ])
  const defaults = desiredOptions(validateConfig({}).cassandra)
  t.same(defaults.map(o => o.ttlSeconds), [2_592_000, 0, 0, 0, 0, 0, 0], 'by default trades live 30 days, candles and gaps forever')
  const gapsTtl = (tradesRetentionDays: number, candlesRetentionDays: number): number | undefined =>
    desiredOptions(validateConfig({ cassandra: { tradesRetentionDays, candlesRetentionDays } }).cassandra).find(o => o.table === 'gaps')?.ttlSeconds
  t.equal(gapsTtl(400, 90), 400 * 86_400, 'gaps outlive the trades they qualify when trades live longer')
  t.equal(gapsTtl(30, 90), 90 * 86_400, 'and the candles when those do')
  t.equal(gapsTtl(0, 90), 0, 'forever when trades live forever')
  t.equal(gapsTtl(30, 0), 0, 'or candles')
  t.same(desiredOptions(cassandra, [{ table: 'gaps', retention: 'tradesRetentionDays', windowUnit: 'HOURS', windowSize: 6 }]),
    [{ table: 'gaps', ttlSeconds: 172_800, windowUnit: 'HOURS', windowSize: 6 }], 'a new table is one entry')
  t.equal(RETENTION_TABLES.length, 7)
})

const want = { table: 'trades', ttlSeconds: 86_400, windowUnit: 'DAYS', windowSize: 1 } as const
const twcs = { class: TWCS_CLASS, compaction_window_unit: 'DAYS', compaction_window_size: '1', max_threshold: '32', min_threshold: '4' }

t.test('planTableChange: nothing when the table matches, only what differs otherwise', async t => {
  t.equal(planTableChange(want, { compaction: twcs, defaultTimeToLive: 86_400 }), null, 'matching: no ALTER')
  t.equal(planTableChange(want, { compaction: { class: 'TimeWindowCompactionStrategy' }, defaultTimeToLive: 86_400 }), null,
    'a short class name and TWCS\'s own defaults (1 DAYS) match too')

  const stcs = planTableChange(want, { compaction: { class: 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', max_threshold: '32', min_threshold: '4' }, defaultTimeToLive: 0 })
  t.same(stcs, {
    table: 'trades',
    clauses: [`compaction = {'class': '${TWCS_CLASS}', 'compaction_window_unit': 'DAYS', 'compaction_window_size': '1'}`, 'default_time_to_live = 86400'],
    changes: ['compaction SizeTieredCompactionStrategy → TimeWindowCompactionStrategy (1 DAYS)', 'default_time_to_live 0 (forever) → 86400 (1 d)']
  }, 'another strategy\'s options are not carried over')

  const ttlOnly = planTableChange(want, { compaction: twcs, defaultTimeToLive: 0 })
  t.same(ttlOnly?.clauses, ['default_time_to_live = 86400'])

  const window = planTableChange({ ...want, windowSize: 30 }, { compaction: { ...twcs, unchecked_tombstone_compaction: 'it\'s' }, defaultTimeToLive: 86_400 })
  t.same(window?.clauses, [`compaction = {'class': '${TWCS_CLASS}', 'compaction_window_unit': 'DAYS', 'compaction_window_size': '30', ` +
    '\'max_threshold\': \'32\', \'min_threshold\': \'4\', \'unchecked_tombstone_compaction\': \'it\'\'s\'}'], 'TWCS\'s other options stay, quoted')
  t.same(window?.changes, ['compaction TimeWindowCompactionStrategy (1 DAYS) → TimeWindowCompactionStrategy (30 DAYS)'])

  const hours = planTableChange({ ...want, windowUnit: 'HOURS', windowSize: 1, ttlSeconds: 7 }, { compaction: twcs, defaultTimeToLive: 86_400 })
  t.same(hours?.changes, ['compaction TimeWindowCompactionStrategy (1 DAYS) → TimeWindowCompactionStrategy (1 HOURS)', 'default_time_to_live 86400 (1 d) → 7 (7 s)'])
  t.same(planTableChange(want, { compaction: {}, defaultTimeToLive: 86_400 })?.changes, ['compaction unknown → TimeWindowCompactionStrategy (1 DAYS)'])
})

t.test('planTableChange: applying its plan always leads to no further change', async t => {
  holds(t, fc.property(
    fc.record({ ttl: fc.nat({ max: 315_360_000 }), unit: fc.constantFrom('MINUTES', 'HOURS', 'DAYS' as const), size: fc.integer({ min: 1, max: 400 }) }),
    fc.record({ ttl: fc.nat({ max: 315_360_000 }), cls: fc.constantFrom('SizeTieredCompactionStrategy', 'LeveledCompactionStrategy', 'UnifiedCompactionStrategy', TWCS_CLASS), unit: fc.constantFrom('MINUTES', 'HOURS', 'DAYS'), size: fc.integer({ min: 1, max: 400 }) }),
    (w, h) => {
      const target = { table: 't', ttlSeconds: w.ttl, windowUnit: w.unit, windowSize: w.size }
      const have = { compaction: { class: h.cls, compaction_window_unit: h.unit, compaction_window_size: String(h.size) }, defaultTimeToLive: h.ttl }
      const plan = planTableChange(target, have)
      const same = h.cls === TWCS_CLASS && h.unit === w.unit && h.size === w.size && h.ttl === w.ttl
      if (same) return plan === null
      if (plan === null) return false
      // What the ALTER sets, as system_schema would then say.
      const after = {
        compaction: plan.clauses.some(c => c.startsWith('compaction')) ? { class: TWCS_CLASS, compaction_window_unit: w.unit, compaction_window_size: String(w.size) } : have.compaction,
        defaultTimeToLive: plan.clauses.some(c => c.startsWith('default_time_to_live')) ? w.ttl : h.ttl
      }
      return planTableChange(target, after) === null && plan.clauses.length === plan.changes.length
    }), { seed: SEED, numRuns: runs(500) })
})

const KEYS = [['cassandra', 'tradesRetentionDays'], ['cassandra', 'candlesRetentionDays'], ['kafka', 'topicRetentionMs'], ['kafka', 'deadLetterRetentionMs']] as const
const withValue = (section: string, key: string, value: unknown): unknown => ({ [section]: { [key]: value } })

t.test('retention settings: hostile values are config errors that name the key', async t => {
  for (const [section, key] of KEYS) {
    for (const bad of [-2, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '30', null, true, [], {}, 2 ** 64]) {
      const err = configError(() => validateConfig(withValue(section, key, bad)))
      t.match(err.message, `${section}.${key}`, `${section}.${key} = ${String(bad)} is refused by name`)
    }
  }
  t.match(configError(() => validateConfig(withValue('cassandra', 'tradesRetentionDays', -1))).message, 'cassandra.tradesRetentionDays: expected a number of days, or 0 to keep rows forever')
  t.match(configError(() => validateConfig(withValue('cassandra', 'candlesRetentionDays', MAX_RETENTION_DAYS + 1))).message, `expected at most ${MAX_RETENTION_DAYS} days`)
  t.match(configError(() => validateConfig(withValue('kafka', 'topicRetentionMs', 0))).message,
    'kafka.topicRetentionMs: expected -1 (keep forever) or a number of milliseconds of at least 60000')
  t.equal(validateConfig(withValue('cassandra', 'tradesRetentionDays', 0)).cassandra.tradesRetentionDays, 0, '0: forever')
  t.equal(validateConfig(withValue('cassandra', 'candlesRetentionDays', MAX_RETENTION_DAYS)).cassandra.candlesRetentionDays, MAX_RETENTION_DAYS)
  t.equal(validateConfig(withValue('kafka', 'deadLetterRetentionMs', -1)).kafka.deadLetterRetentionMs, -1, '-1: forever')
  t.equal(validateConfig(withValue('kafka', 'topicRetentionMs', 60_000)).kafka.topicRetentionMs, 60_000)
})

t.test('retention settings: any number is either accepted as is or refused by name', async t => {
  holds(t, fc.property(fc.constantFrom(...KEYS), fc.oneof(fc.double(), fc.integer({ min: -10, max: 10_000 }), fc.maxSafeInteger()), ([section, key], value) => {
    const daysOk = Number.isInteger(value) && value >= 0 && value <= MAX_RETENTION_DAYS
    const msOk = Number.isInteger(value) && (value === -1 || (value >= 60_000 && value <= Number.MAX_SAFE_INTEGER))
    const ok = section === 'cassandra' ? daysOk : msOk
    try {
      const config = validateConfig(withValue(section, key, value)) as unknown as Record<string, Record<string, unknown>>
      return ok && config[section]?.[key] === value
    } catch (err) {
      return !ok && (err as Error).message.includes(`${section}.${key}`)
    }
  }), { seed: SEED, numRuns: runs(1_000) })
})
