// The seed's .env, read by --env-file: every seed variable is honoured or reported
// with what replaces it, unknown names are errors, the process's environment wins.
import t, { type Test } from 'tap'
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { main, type CliIo } from '../../daemon/cli.js'
import { ENV_OVERRIDE_NAMES, loadConfig } from '../../daemon/config/load.js'
import { readEnvFile, SEED_VARIABLES_WITHOUT_MEANING } from '../../daemon/config/env-file.js'
import { isFinnhubdError } from '../../daemon/core/errors.js'
import { PROJECT_ROOT, SCHEMAS_DIR } from '../../daemon/paths.js'

const SEED_ENV = join(PROJECT_ROOT, 'test', 'fixtures', 'seed', '.env')

function run (argv: string[], env: CliIo['env'] = {}): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  return main(argv, { env, out: l => out.push(l), err: l => err.push(l) })
    .then(code => ({ code, out: out.join('\n'), err: err.join('\n') }))
}

/** The seed's .env, verbatim, in a folder laid out like the seed's (its schema where SCHEMA_PATH says). */
function seedFolder (t: Test, withSchema = true): string {
  const dir = t.testdir({})
  copyFileSync(SEED_ENV, join(dir, '.env'))
  if (withSchema) {
    mkdirSync(join(dir, 'scripts', 'schemas'), { recursive: true })
    copyFileSync(join(SCHEMAS_DIR, 'trade.avsc'), join(dir, 'scripts', 'schemas', 'trades.avsc'))
  }
  return dir
}

t.test('the seed README\'s example .env maps onto the config, variable by variable', async t => {
  t.match(readFileSync(SEED_ENV, 'utf8'), /CASSANDRA_BROADCAST_ADDRESS=172\.19\.0\.10/, 'the fixture is the seed\'s example')
  const dir = seedFolder(t)
  const { config, sources, warnings, envFile } = loadConfig({ envFile: join(dir, '.env'), env: {} })
  t.equal(envFile, join(dir, '.env'))
  t.equal(config.finnhub.token, 'your_finnhub_api_token')
  t.same(config.kafka.bootstrapServers, ['broker:29092'])
  t.equal(config.kafka.topic, 'finnhub.trades')
  t.equal(config.schemaPath, join(dir, 'scripts', 'schemas', 'trades.avsc'), 'a relative SCHEMA_PATH is relative to the .env file')
  t.same(config.cassandra.contactPoints, ['cassandra'])
  t.equal(config.cassandra.port, 9042)
  t.equal(config.cassandra.username, 'cassandra')
  t.equal(config.cassandra.password, 'cassandra')
  t.equal(config.cassandra.keyspace, 'finnhub')
  t.equal(config.cassandra.tradesTable, 'trades')
  t.equal(config.cassandra.localDataCenter, 'dc1', 'CASSANDRA_DC is the data center the driver treats as local')
  t.equal(sources['kafka.bootstrapServers'], `KAFKA_BOOTSTRAP_SERVERS in ${join(dir, '.env')}`)
  t.equal(sources['cassandra.localDataCenter'], `CASSANDRA_DC in ${join(dir, '.env')}`)
  // Every other seed variable is reported, once, with what replaces it.
  const reported = warnings.map(w => w.split(' ')[0])
  t.same(reported.sort(), ['CASSANDRA_BROADCAST_ADDRESS', 'CASSANDRA_CLUSTER_NAME', 'CASSANDRA_LISTEN_ADDRESS', 'CASSANDRA_RACK', 'GRAFANA_ADMIN_PASSWORD', 'GRAFANA_ADMIN_USER'])
  const broadcast = warnings.find(w => w.startsWith('CASSANDRA_BROADCAST_ADDRESS')) ?? ''
  t.match(broadcast, /from .*\.env\) is ignored: it has no meaning here.*CASSANDRA_HOST:CASSANDRA_PORT; remove it/)
  t.notMatch(warnings.join('\n'), /admin\b(?! in your)/, 'no value is echoed')
  // Each seed variable is either honoured or explained.
  const seedNames = [...readFileSync(SEED_ENV, 'utf8').matchAll(/^([A-Z_]+)=/gm)].map(m => m[1] as string)
  for (const name of seedNames) t.ok(ENV_OVERRIDE_NAMES.includes(name) || SEED_VARIABLES_WITHOUT_MEANING[name] !== undefined, `${name} is honoured or explained`)
})

t.test('the process\'s environment wins over the file; a seed variable from the environment is reported too', async t => {
  const dir = seedFolder(t)
  const { config, sources, warnings } = loadConfig({ envFile: join(dir, '.env'), env: { KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:19092', CASSANDRA_RACK: 'r9' } })
  t.same(config.kafka.bootstrapServers, ['127.0.0.1:19092'])
  t.equal(sources['kafka.bootstrapServers'], 'KAFKA_BOOTSTRAP_SERVERS')
  t.match(warnings.find(w => w.startsWith('CASSANDRA_RACK')), /CASSANDRA_RACK \(from the environment\) is ignored/)
  const noFile = loadConfig({ env: { GRAFANA_ADMIN_USER: 'x', FINNHUB_TOKEN: 't' } })
  t.equal(noFile.warnings.length, 1, 'without --env-file too: systemd\'s EnvironmentFile= ends up in the environment')
  t.match(noFile.warnings[0], /GRAFANA_ADMIN_USER \(from the environment\) is ignored: .*finnhubd runs no Grafana/)
})

t.test('an unknown name in the file is an error naming the line and the nearest known name', async t => {
  const dir = t.testdir({ '.env': '# mine\nFINNHUB_TOKNE=abc\nKAFKA_TOPIC=t\nSPARK_MASTER=local\n' })
  let message = ''
  try {
    loadConfig({ envFile: join(dir, '.env'), env: {} })
  } catch (err) {
    t.ok(isFinnhubdError(err, 'FINNHUBD_ERR_CONFIG'))
    message = (err as Error).message
  }
  t.match(message, /\.env:2: unknown variable FINNHUB_TOKNE \(did you mean FINNHUB_TOKEN\?\)/)
  t.match(message, /\.env:4: unknown variable SPARK_MASTER\n/, 'no suggestion when nothing is near')
  t.match(message, /finnhubd reads FINNHUB_TOKEN, .*remove the line or fix the name/)
  t.notMatch(message, /abc/, 'values are not echoed')
  // The stack's own settings may live in the same file.
  const stack = t.testdir({ '.env': 'FINNHUBD_KAFKA_PORT=29092\nFINNHUBD_STACK_DIR=/tmp/x\nFINNHUBD_CONFIG=/etc/f.yaml\n' })
  t.same(Object.keys(readEnvFile(join(stack, '.env'), ENV_OVERRIDE_NAMES).values).sort(), ['FINNHUBD_CONFIG', 'FINNHUBD_KAFKA_PORT', 'FINNHUBD_STACK_DIR'])
  t.throws(() => loadConfig({ envFile: join(dir, 'missing.env') }), /cannot read the env file .*missing\.env \(ENOENT\); check the path given with --env-file/)
})

t.test('STATE_DIRECTORY (systemd) and FINNHUBD_STATE_DIR set the state directory', async t => {
  t.equal(loadConfig({ env: { STATE_DIRECTORY: '/var/lib/finnhubd:/var/lib/other' } }).config.stateDir, '/var/lib/finnhubd')
  t.equal(loadConfig({ env: { STATE_DIRECTORY: '/var/lib/finnhubd', FINNHUBD_STATE_DIR: '/srv/state' } }).config.stateDir, '/srv/state')
  t.equal(loadConfig().config.stateDir, null)
})

t.test('finnhubd --env-file: config, check-config, and the warnings on stderr', async t => {
  const dir = seedFolder(t)
  const cfg = await run(['--env-file', join(dir, '.env'), 'config'])
  t.equal(cfg.code, 0)
  t.match(cfg.out, /overrides: .*finnhub\.token←FINNHUB_TOKEN in .*\.env/)
  t.notMatch(cfg.out, /your_finnhub_api_token/, 'the token is redacted')
  t.match(cfg.err, /finnhubd: warning: CASSANDRA_BROADCAST_ADDRESS \(from .*\.env\) is ignored/)
  t.equal(cfg.err.split('\n').length, 6, 'one warning per meaningless seed variable')

  const check = await run(['--env-file', join(dir, '.env'), 'check-config'])
  t.equal(check.code, 0, check.err)
  t.match(check.out, /configuration is valid: .*FINNHUB_TOKEN in .*\.env.*Cassandra cassandra:9042/)

  const noSchema = seedFolder(t, false)
  const missing = await run(['--env-file', join(noSchema, '.env'), 'check-config'])
  t.equal(missing.code, 1)
  t.match(missing.err, /cannot load the Avro schema .*scripts\/schemas\/trades\.avsc.*check schemaPath \/ SCHEMA_PATH.*FINNHUBD_ERR_SCHEMA/)

  const typo = t.testdir({ '.env': 'KAFKA_TOPC=x\n' })
  const bad = await run(['--env-file', join(typo, '.env'), 'check-config'])
  t.equal(bad.code, 1)
  t.match(bad.err, /unknown variable KAFKA_TOPC \(did you mean KAFKA_TOPIC\?\).*\[FINNHUBD_ERR_CONFIG\]/s)

  const named = t.testdir({ 'c.yaml': 'kafka:\n  topic: from-yaml\n', '.env': 'FINNHUBD_CONFIG=' })
  const viaFile = await run(['--env-file', join(named, '.env'), 'config'], { FINNHUBD_CONFIG: join(named, 'c.yaml') })
  t.match(viaFile.out, /"topic": "from-yaml"/, 'FINNHUBD_CONFIG may come from the environment beside an env file')
})
