// The command line's own behaviour: usage, exit codes, `config`, unknown commands.
import t from 'tap'
import { join } from 'node:path'
import { main, type CliIo } from '../daemon/cli.js'

function run (argv: string[], env: CliIo['env'] = {}): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  return main(argv, { env, out: l => out.push(l), err: l => err.push(l) })
    .then(code => ({ code, out: out.join('\n'), err: err.join('\n') }))
}

t.test('--help prints usage and exits 0; no command exits 2', async t => {
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /usage: finnhubd \[--config FILE\] \[--env-file FILE\] <command>[\s\S]*migrate[\s\S]*stack/)
  const none = await run([])
  t.equal(none.code, 2)
  t.match(none.out, /usage:/)
})

t.test('unknown commands and options are usage errors (exit 2)', async t => {
  const unknown = await run(['frobnicate'])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown command "frobnicate"; run `finnhubd --help`.*FINNHUBD_ERR_USAGE/)
  const queryOpt = await run(['query', 'AAPL', '--candle'])
  t.equal(queryOpt.code, 2, 'a command\'s unknown option too')
  t.match(queryOpt.err, /Unknown option '--candle'.*see `finnhubd query --help`.*FINNHUBD_ERR_USAGE/)
  const badOpt = await run(['--nope', 'config'])
  t.equal(badOpt.code, 2)
  t.match(badOpt.err, /Unknown option '--nope'[\s\S]*usage:/)
})

t.test('`config` validates and prints the effective config with secrets redacted', async t => {
  const dir = t.testdir({ 'c.yaml': 'kafka:\n  topic: t1\n' })
  const ok = await run(['--config', join(dir, 'c.yaml'), 'config'], { FINNHUB_TOKEN: 'tok-SECRET', CASSANDRA_PORT: '9042' })
  t.equal(ok.code, 0)
  t.match(ok.out, /configuration is valid \(file: .*c\.yaml; overrides: cassandra\.port←CASSANDRA_PORT, finnhub\.token←FINNHUB_TOKEN\)/)
  t.notMatch(ok.out, /tok-SECRET/)
  const printed = JSON.parse(ok.out.split('\n').slice(1).join('\n')) as { kafka: { topic: string }, cassandra: { port: number } }
  t.equal(printed.kafka.topic, 't1')
  t.equal(printed.cassandra.port, 9042)

  const fromEnv = await run(['config'], { FINNHUBD_CONFIG: join(dir, 'c.yaml') })
  t.match(fromEnv.out, /file: .*c\.yaml; overrides: none/, 'FINNHUBD_CONFIG names the file when --config is absent')

  const bad = await run(['config'], { FINNHUBD_CONFIG: join(dir, 'missing.yaml') })
  t.equal(bad.code, 1)
  t.match(bad.err, /^finnhubd: cannot read config file .*missing\.yaml.*\[FINNHUBD_ERR_CONFIG\]/)
})

t.test('--version names finnhubd and Node; --help documents signals and exit codes', async t => {
  const v = await run(['--version'])
  t.equal(v.code, 0)
  t.match(v.out, /^finnhubd \d+\.\d+\.\d+ \(node v\d+\.\d+\.\d+\)$/)
  const help = await run(['--help'])
  t.match(help.out, /check-config[\s\S]*SIGHUP[\s\S]*exit codes:[\s\S]*3 +the daemon stopped with work left over[\s\S]*130/)
})

t.test('`check-config` exits 0 on a valid file and 1 naming each problem', async t => {
  const dir = t.testdir({
    'ok.yaml': 'finnhub:\n  symbols: [AAPL]\nhttp:\n  port: 9999\n',
    'bad.yaml': 'workers:\n  batchSize: -1\nkafka:\n  lingerMss: 3\n',
    'broken.yaml': 'finnhub: [\n'
  })
  const ok = await run(['--config', join(dir, 'ok.yaml'), 'check-config'], { KAFKA_TOPIC: 'x' })
  t.equal(ok.code, 0)
  t.match(ok.out, /^configuration is valid: .*ok\.yaml with KAFKA_TOPIC from the environment; roles ingest\+process, 1 symbols, .*HTTP 127\.0\.0\.1:9999$/)
  const defaults = await run(['check-config'])
  t.match(defaults.out, /^configuration is valid: no file \(defaults\); roles/)
  const bad = await run(['--config', join(dir, 'bad.yaml'), 'check-config'])
  t.equal(bad.code, 1)
  t.match(bad.err, /unknown key "kafka\.lingerMss"[\s\S]*workers\.batchSize: .*got -1/)
  const broken = await run(['--config', join(dir, 'broken.yaml'), 'check-config'])
  t.equal(broken.code, 1)
  t.match(broken.err, /is not valid YAML: .* at line \d+, column \d+; fix the syntax there/)
})
