import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig, readConfigFile, redactConfig, validateConfig, ENV_OVERRIDE_NAMES } from '../../daemon/config/load.js'
import { configError } from '../fixtures/config-error.js'

t.test('defaults alone are a valid, frozen config', async t => {
  const { config, sources, file } = loadConfig()
  t.equal(file, null)
  t.same(sources, {})
  t.equal(config.kafka.topic, 'finnhub.trades')
  t.equal(config.kafka.deadLetterTopic, 'finnhub.trades.dlq')
  t.equal(config.cassandra.keyspace, 'finnhub')
  t.equal(config.cassandra.tradesTable, 'trades')
  t.equal(config.cassandra.port, 19042, 'defaults point at the local stack, not a standard port')
  t.same(config.kafka.bootstrapServers, ['127.0.0.1:19092'])
  t.same(config.roles, ['ingest', 'process'])
  t.equal(config.http.host, '127.0.0.1')
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.kafka) && Object.isFrozen(config.finnhub.symbols), 'deeply frozen')
  t.throws(() => { (config.kafka as { topic: string }).topic = 'x' }, TypeError)
})

t.test('a YAML file and a JSON file are read; omitted keys keep defaults', async t => {
  const dir = t.testdir({
    'c.yaml': 'logLevel: debug\nkafka:\n  lingerMs: 20\n  topic: my.trades\nfinnhub:\n  symbols: [AAPL, "BINANCE:BTCUSDT"]\n',
    'c.json': JSON.stringify({ cassandra: { contactPoints: ['10.0.0.1', '10.0.0.2'], port: 9042 } }),
    'empty.yaml': '# nothing set\n'
  })
  const yaml = loadConfig({ file: join(dir, 'c.yaml') }).config
  t.equal(yaml.logLevel, 'debug')
  t.equal(yaml.kafka.lingerMs, 20)
  t.equal(yaml.kafka.topic, 'my.trades')
  t.equal(yaml.kafka.compression, 'lz4', 'sibling key keeps its default')
  t.same(yaml.finnhub.symbols, ['AAPL', 'BINANCE:BTCUSDT'])
  const json = loadConfig({ file: join(dir, 'c.json') }).config
  t.same(json.cassandra.contactPoints, ['10.0.0.1', '10.0.0.2'])
  t.equal(json.cassandra.port, 9042)
  t.equal(loadConfig({ file: join(dir, 'empty.yaml') }).config.kafka.topic, 'finnhub.trades')
})

t.test('unknown keys are rejected with their full key path', async t => {
  const err = configError(() => validateConfig({ kafka: { lingrMs: 5, topic: 'x' }, extra: 1 }, 'test.yaml'))
  t.match(err.message, /invalid configuration \(test\.yaml\)/)
  t.match(err.message, /unknown key "kafka\.lingrMs"/)
  t.match(err.message, /unknown key "extra"/)
  const two = configError(() => validateConfig({ http: { a: 1, b: 2 } }))
  t.match(two.message, /unknown keys "http\.a", "http\.b": remove them/)
})

t.test('bad values name the key path, the rule and the value given', async t => {
  const err = configError(() => validateConfig({
    kafka: { lingerMs: -1, bootstrapServers: ['no-port'] },
    cassandra: { port: 70000 },
    finnhub: { symbols: ['AAPL', 'bad symbol!'], url: 'http://x' },
    logLevel: 'verbose',
    roles: []
  }))
  t.match(err.message, /kafka\.lingerMs: .*>=0.*got -1/)
  t.match(err.message, /kafka\.bootstrapServers\.0: expected host:port, got "no-port"/)
  t.match(err.message, /cassandra\.port: .*got 70000/)
  t.match(err.message, /finnhub\.symbols\.1: expected a Finnhub symbol .*got "bad symbol!"/)
  t.match(err.message, /finnhub\.url: expected a ws:\/\/ or wss:\/\/ URL/)
  t.match(err.message, /logLevel: .*"verbose"/)
  t.match(err.message, /roles: /)
  t.match(err.message, /finnhubd config/, 'says how to see the effective config')
})

t.test('wrong types and cross-field rules are reported', async t => {
  t.match(configError(() => validateConfig({ kafka: 'x' })).message, /kafka: .*object.*got "x"/)
  t.match(configError(() => validateConfig({ finnhub: { reconnectInitialDelayMs: 5000, reconnectMaxDelayMs: 100 } })).message,
    /finnhub\.reconnectMaxDelayMs: must be ≥ finnhub\.reconnectInitialDelayMs \(5000\)/)
  t.match(configError(() => validateConfig({ kafka: { deadLetterTopic: 'finnhub.trades' } })).message,
    /kafka\.deadLetterTopic: must differ from kafka\.topic/)
  // Pairs whose secret half may come from a file, the environment or a credential are
  // checked once the secrets are in (test/config/secrets.test.ts).
  t.match(configError(() => loadConfig({ env: { CASSANDRA_USER: 'u' } })).message,
    /cassandra\.username and cassandra\.password go together/)
  t.match(configError(() => validateConfig({ cassandra: { keyspace: 'drop table;' } })).message,
    /cassandra\.keyspace: expected a CQL identifier/)
})

t.test('the seed environment names override the file and are named in errors', async t => {
  const dir = t.testdir({ 'c.yaml': 'kafka:\n  topic: from.file\ncassandra:\n  keyspace: fromfile\n' })
  const { config, sources } = loadConfig({
    file: join(dir, 'c.yaml'),
    env: {
      FINNHUB_TOKEN: 'tok-123',
      KAFKA_BOOTSTRAP_SERVERS: 'k1:9092, k2:9092',
      KAFKA_TOPIC: 'from.env',
      SCHEMA_PATH: '/opt/trade.avsc',
      CASSANDRA_HOST: 'c1,c2',
      CASSANDRA_PORT: '9042',
      CASSANDRA_USER: 'app',
      CASSANDRA_PASSWORD: 'secret',
      CASSANDRA_KEYSPACE: 'market',
      CASSANDRA_TABLE: 'ticks',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081',
      FINNHUB_SYMBOLS: 'AAPL,MSFT',
      UNRELATED: 'ignored',
      KAFKA_TOPIC_EMPTY: ''
    }
  })
  t.equal(config.finnhub.token, 'tok-123')
  t.same(config.kafka.bootstrapServers, ['k1:9092', 'k2:9092'])
  t.equal(config.kafka.topic, 'from.env', 'env wins over the file')
  t.equal(config.schemaPath, '/opt/trade.avsc')
  t.same(config.cassandra.contactPoints, ['c1', 'c2'])
  t.equal(config.cassandra.port, 9042)
  t.equal(config.cassandra.username, 'app')
  t.equal(config.cassandra.password, 'secret')
  t.equal(config.cassandra.keyspace, 'market')
  t.equal(config.cassandra.tradesTable, 'ticks')
  t.equal(config.kafka.schemaRegistryUrl, 'http://127.0.0.1:8081')
  t.same(config.finnhub.symbols, ['AAPL', 'MSFT'])
  t.equal(sources['kafka.topic'], 'KAFKA_TOPIC')
  t.equal(sources['cassandra.tradesTable'], 'CASSANDRA_TABLE')
  for (const name of ['FINNHUB_TOKEN', 'KAFKA_BOOTSTRAP_SERVERS', 'KAFKA_TOPIC', 'SCHEMA_PATH', 'CASSANDRA_HOST', 'CASSANDRA_PORT',
    'CASSANDRA_USER', 'CASSANDRA_PASSWORD', 'CASSANDRA_KEYSPACE', 'CASSANDRA_TABLE']) {
    t.ok(ENV_OVERRIDE_NAMES.includes(name), `${name} is an override`)
  }

  const bad = configError(() => loadConfig({ env: { CASSANDRA_PORT: 'abc', KAFKA_BOOTSTRAP_SERVERS: 'k1' } }))
  t.match(bad.message, /cassandra\.port \(from CASSANDRA_PORT\): .*got "abc"/)
  t.match(bad.message, /kafka\.bootstrapServers\.0: expected host:port, got "k1"/)
  t.equal(loadConfig({ env: { SCHEMA_REGISTRY_URL: 'none' } }).config.kafka.schemaRegistryUrl, null, '"none" clears the registry')
})

t.test('an env override does not hide a wrong-typed section of the file', async t => {
  const err = configError(() => validateConfig({ kafka: ['a'] }))
  t.match(err.message, /kafka: /)
  const dir = t.testdir({ 'c.yaml': 'kafka: 5\n' })
  t.match(configError(() => loadConfig({ file: join(dir, 'c.yaml'), env: { KAFKA_TOPIC: 'x' } })).message, /kafka: .*got 5/)
})

t.test('file problems are clear errors', async t => {
  const dir = t.testdir({
    'bad.yaml': 'kafka:\n  topic: [unclosed\n',
    'bad.json': '{"kafka": ',
    'list.yaml': '- a\n- b\n',
    'scalar.json': '42'
  })
  t.match(configError(() => readConfigFile(join(dir, 'missing.yaml'))).message, /cannot read config file .*missing\.yaml \(ENOENT\)/)
  t.match(configError(() => readConfigFile(join(dir, 'bad.yaml'))).message, /bad\.yaml is not valid YAML: .* at line \d+, column \d+/)
  t.match(configError(() => readConfigFile(join(dir, 'bad.json'))).message, /bad\.json is not valid JSON/)
  t.match(configError(() => readConfigFile(join(dir, 'list.yaml'))).message, /must hold a mapping .* not a list/)
  t.match(configError(() => readConfigFile(join(dir, 'scalar.json'))).message, /not number/)
})

t.test('secrets never appear in printed config or in errors', async t => {
  const { config } = loadConfig({ env: { FINNHUB_TOKEN: 'tok-SECRET', CASSANDRA_USER: 'u', CASSANDRA_PASSWORD: 'pw-SECRET' } })
  const printed = JSON.stringify(redactConfig(config))
  t.notMatch(printed, /SECRET/)
  t.match(printed, /"token":"\[redacted\]"/)
  t.match(printed, /"password":"\[redacted\]"/)
  t.equal(config.finnhub.token, 'tok-SECRET', 'the config itself keeps the real value')
  t.equal(redactConfig(loadConfig().config).finnhub.token, '', 'an unset token stays visibly unset')

  const err = configError(() => validateConfig({ finnhub: { token: 42 }, cassandra: { username: 'u', password: 7 } }))
  t.notMatch(err.message, /42|: 7\b/)
  t.match(err.message, /finnhub\.token: .*got \[redacted\]/)
})

t.test('long values are shortened in errors', async t => {
  const err = configError(() => validateConfig({ kafka: { topic: 'x'.repeat(300) } }))
  t.match(err.message, /"x{70,}\.\.\./)
  t.notMatch(err.message, /x{100}/)
})

t.test('the printed config is itself a valid config file', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'full.json')
  writeFileSync(file, JSON.stringify(redactConfig(loadConfig().config)))
  t.equal(loadConfig({ file }).config.kafka.topic, 'finnhub.trades', 'the printed config is itself a valid config file')
})

t.test('discovery settings: patterns must compile, an empty symbol list needs discovery, REST delays are ordered', async t => {
  const bad = configError(() => validateConfig({ finnhub: { discovery: { enabled: true, include: ['USDT$', '(unclosed'] } } }))
  t.match(bad.message, /finnhub\.discovery\.include\.1: expected a valid regular expression, e\.g\. "\^BINANCE:\.\*USDT\$", got "\(unclosed"/)
  const none = configError(() => validateConfig({ finnhub: { symbols: [] } }))
  t.match(none.message, /finnhub\.symbols: nothing to subscribe to: list symbols here, or turn on finnhub\.discovery\.enabled/)
  t.same(validateConfig({ finnhub: { symbols: [], discovery: { enabled: true } } }).finnhub.symbols, [], 'discovery alone is fine')
  t.same(validateConfig({ roles: ['process'], finnhub: { symbols: [] } }).finnhub.symbols, [], 'and a process-only daemon subscribes to nothing')
  const market = configError(() => validateConfig({ finnhub: { discovery: { exchanges: [{ market: 'bonds', exchange: 'X' }] } } }))
  t.match(market.message, /finnhub\.discovery\.exchanges\.0\.market: /)
  const delays = configError(() => validateConfig({ finnhub: { rest: { retryInitialDelayMs: 5000, retryMaxDelayMs: 100 } } }))
  t.match(delays.message, /finnhub\.rest\.retryMaxDelayMs: must be ≥ finnhub\.rest\.retryInitialDelayMs \(5000\)/)
  t.equal(loadConfig({ env: { FINNHUB_REST_URL: 'http://127.0.0.1:1/api/v1' } }).config.finnhub.rest.url, 'http://127.0.0.1:1/api/v1')
})
