// Hostile or curious input at every entry point: each command answers --help and -h
// with its own usage and exit 0 before it reads any config (a missing config file and
// env file do not matter), unknown options are usage errors (exit 2), and what a
// command throws is one line and an exit code (daemon/args.ts): a FinnhubdError as its
// message and code (1, usage 2), anything else as one line with a hint (1), its stack
// only with FINNHUBD_DEBUG=1. The scripts (`npm run bench`, `npm run chaos`, `npm run
// stack`, finnhubd itself) are run as the compiled child processes they are.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { commandArgs, exitCodeOf, HelpRequested, wantsHelp } from '../daemon/args.js'
import { main } from '../daemon/cli.js'
import { FinnhubdError } from '../daemon/core/errors.js'
import { PROJECT_ROOT } from '../daemon/paths.js'
import { stackOptions } from '../tools/stack/options.js'
import { freePorts } from './fixtures/ports.js'

t.setTimeout(120_000)

async function run (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, { env, out: l => out.push(l), err: l => err.push(l) })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

async function script (file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null, out: string, err: string, ms: number }> {
  const started = Date.now()
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', file), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', ...env } })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr.on('data', (b: Buffer) => { err += b.toString() })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const code = await new Promise<number | null>(resolve => child.once('close', c => resolve(c)))
  return { code, out, err, ms: Date.now() - started }
}

// Nothing of this exists: a command that read its config or env file would fail.
const broken = { FINNHUBD_CONFIG: '/nonexistent/finnhubd.yaml', KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1', CASSANDRA_HOST: '127.0.0.1', CASSANDRA_PORT: '1' }
const globals = ['--env-file', '/nonexistent/finnhubd.env']

const COMMANDS: Array<[string[], RegExp]> = [
  [['demo'], /^usage: finnhubd \[--config FILE\] demo \[--secure\]\n\nThe whole pipeline in one command/],
  [['run'], /^usage: finnhubd .*run\n\nThe daemon with the configured roles[\s\S]*second signal exits at once \(130\)[\s\S]*exits 70/],
  [['ingest'], /^usage: finnhubd .*ingest\n\nThe ingest role only/],
  [['process'], /^usage: finnhubd .*process\n\nThe process role only: Kafka \(the configured group\)/],
  [['query'], /^usage: finnhubd .*query SYMBOL[\s\S]*--candles[\s\S]*--since[\s\S]*--limit/],
  [['tail'], /^usage: finnhubd .*tail[\s\S]*--dlq[\s\S]*--from-beginning[\s\S]*--max N/],
  [['migrate'], /^usage: finnhubd .*migrate\n\nApplies the pending Cassandra schema migrations/],
  [['check-config'], /^usage: finnhubd .*check-config\n\nValidates the configuration/],
  [['config'], /^usage: finnhubd .*config\n\nValidates the configuration and prints it/],
  [['simulate'], /^usage: finnhubd simulate [\s\S]*--rate TRADES_PER_S[\s\S]*--rest-requests-per-minute N +the REST rate limit/],
  [['simulate', 'record'], /^usage: finnhubd simulate record --symbols A,B --out FILE[\s\S]*--duration-ms N/],
  [['stack'], /^usage: npm run stack -- <up\|down\|status\|wipe\|logs>/],
  [['stack', 'up'], /^usage: npm run stack -- up \[kafka\|cassandra\|<node>\] \[--secure\|--cluster\]\n\nFetches Kafka and Cassandra/],
  [['stack', 'down'], /^usage: npm run stack -- down /],
  [['stack', 'status'], /^usage: npm run stack -- status [\s\S]*Exit 0 when all are ready/],
  [['stack', 'wipe'], /^usage: npm run stack -- wipe /],
  [['stack', 'logs'], /^usage: npm run stack -- logs [\s\S]*--lines N +how many lines/]
]

t.test('every command answers --help and -h with its own usage, exit 0, nothing loaded', async t => {
  for (const [command, usage] of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const r = await run([...globals, ...command, flag], broken)
      t.equal(r.code, 0, `${command.join(' ')} ${flag}: exit 0`)
      t.match(r.out, usage, `${command.join(' ')} ${flag}: its own usage`)
      t.equal(r.err, '', `${command.join(' ')} ${flag}: no complaint (no config or env file read)`)
    }
  }
  // --help anywhere among the options, even beside an option the command does not know.
  t.match((await run(['query', 'AAPL', '--since', '1h', '--help'], broken)), { code: 0, out: /^usage: finnhubd .*query/ })
  t.match((await run(['process', '--bogus', '--help'], broken)), { code: 0, out: /^usage: finnhubd .*process/ })
  t.match((await run(['stack', 'logs', 'kafka', '--lines', '3', '-h'], broken)), { code: 0, out: /^usage: npm run stack -- logs/ })
  // The list names the per-command help and the fatal exit code.
  t.match((await run(['-h'])).out, /70 +the daemon hit an error it did not expect[\s\S]*`finnhubd <command> --help` shows a command's own usage/)
})

t.test('unknown options and arguments stay usage errors (exit 2), pointing at the command\'s help', async t => {
  const cases: Array<[string[], RegExp]> = [
    [['process', '--bogus'], /^finnhubd: Unknown option '--bogus'; see `finnhubd process --help` \[FINNHUBD_ERR_USAGE\]$/],
    [['run', 'extra'], /Unexpected argument 'extra'.*see `finnhubd run --help` \[FINNHUBD_ERR_USAGE\]$/],
    [['demo', '--fast'], /Unknown option '--fast'; see `finnhubd demo --help`/],
    [['migrate', '-x'], /Unknown option '-x'; see `finnhubd migrate --help`/],
    [['tail', '--follow'], /Unknown option '--follow'; see `finnhubd tail --help`/],
    [['simulate', '--nope'], /Unknown option '--nope'; see `finnhubd simulate --help`/],
    [['simulate', 'record', '--nope'], /Unknown option '--nope'; see `finnhubd simulate record --help`/],
    [['stack', 'up', '--nope'], /^finnhubd stack: Unknown option '--nope'.*see `npm run stack -- up --help`/],
    [['stack', 'logs', '--lines'], /Option '--lines <value>' argument missing/]
  ]
  for (const [argv, message] of cases) {
    const r = await run(argv, broken)
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`)
    t.match(r.err, message)
  }
  // `--` ends the options: a --help after it is an argument, not a request.
  t.equal(wantsHelp(['--', '--help']), false)
  t.equal(wantsHelp(['a', '-h']), true)
})

t.test('what a command throws: one line and an exit code', async t => {
  const lines = (): { out: string[], err: string[], io: { env: Record<string, string>, out: (l: string) => void, err: (l: string) => void } } => {
    const out: string[] = []
    const err: string[] = []
    return { out, err, io: { env: {}, out: l => out.push(l), err: l => err.push(l) } }
  }
  const help = lines()
  t.equal(exitCodeOf(new HelpRequested('usage: x'), help.io), 0)
  t.same(help.out, ['usage: x'])

  const known = lines()
  t.equal(exitCodeOf(new FinnhubdError('FINNHUBD_ERR_STACK_PORT', 'port 1 is in use; move the stack'), known.io, 'finnhubd bench'), 1)
  t.same(known.err, ['finnhubd bench: port 1 is in use; move the stack [FINNHUBD_ERR_STACK_PORT]'])

  const usage = lines()
  t.equal(exitCodeOf(new FinnhubdError('FINNHUBD_ERR_USAGE', 'bad'), usage.io), 2)

  // A module that parses its own options with node:util (the bench stages) throws TypeErrors.
  const parse = lines()
  let thrown: unknown
  try { commandArgs({ args: ['--x'], options: {}, strict: true }, { usage: 'u' }) } catch (err) { thrown = err }
  t.match(thrown, { code: 'FINNHUBD_ERR_USAGE', message: /Unknown option '--x'; see `finnhubd --help`/ })
  const typeError = Object.assign(new TypeError("Unknown option '--y'"), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' })
  t.equal(exitCodeOf(typeError, parse.io, 'finnhubd bench', 'npm run bench -- ingest'), 2)
  t.same(parse.err, ["finnhubd bench: Unknown option '--y'; see `npm run bench -- ingest --help` [FINNHUBD_ERR_USAGE]"])

  const bug = lines()
  t.equal(exitCodeOf(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), bug.io), 1)
  t.equal(bug.err.length, 1, 'one line')
  t.match(bug.err[0], /^finnhubd: unexpected Error: socket hang up \[ECONNRESET\] \(FINNHUBD_DEBUG=1 shows its stack trace; please report it with that\)$/)
  const debug = lines()
  debug.io.env = { FINNHUBD_DEBUG: '1' }
  t.equal(exitCodeOf(new RangeError('nope'), debug.io), 1)
  t.match(debug.err, [/^finnhubd: unexpected RangeError: nope$/, /^RangeError: nope\n\s+at /])
  const odd = lines()
  t.equal(exitCodeOf('a string', odd.io), 1)
  t.match(odd.err, [/^finnhubd: unexpected Error: a string/])
})

t.test('the scripts: --help before anything starts, usage errors exit 2', async t => {
  const cases: Array<[string, string[], number, RegExp, RegExp | null]> = [
    ['daemon/cli.js', ['process', '--help'], 0, /^usage: finnhubd .*process\n/, null],
    ['daemon/cli.js', ['run', '-h'], 0, /^usage: finnhubd .*run\n/, null],
    ['tools/bench/run.js', ['--help'], 0, /^usage: npm run bench \[-- \[pipeline\|ingest\|process\|latency\|scaleout\] \[options\]\][\s\S]*stages:/, null],
    ['tools/bench/run.js', ['-h'], 0, /^usage: npm run bench /, null],
    ['tools/bench/run.js', ['pipeline', '--help'], 0, /^usage: npm run bench -- \[pipeline\] \[options\][\s\S]*--quick[\s\S]*--kafka HOST:PORT --cassandra HOST:PORT/, null],
    ['tools/bench/run.js', ['ingest', '--help'], 0, /^usage: npm run bench -- ingest \[--rates R1,R2,…\] \[--seconds N\]/, null],
    ['tools/bench/run.js', ['process', '-h'], 0, /^usage: npm run bench -- process \[--trades N\] \[--symbols N\]/, null],
    ['tools/bench/run.js', ['ingest', '--nope'], 2, /^$/, /^finnhubd bench: Unknown option '--nope'; see `npm run bench -- ingest --help` \[FINNHUBD_ERR_USAGE\]\n$/],
    ['tools/bench/run.js', ['warp'], 2, /^$/, /^finnhubd bench: unknown bench stage "warp"; stages: pipeline \(the default\), ingest, process.*\[FINNHUBD_ERR_USAGE\]\n$/],
    ['tools/chaos/run.js', ['--help'], 0, /^usage: npm run chaos [\s\S]*--only NAME,NAME[\s\S]*--list/, null],
    ['tools/chaos/run.js', ['--keep'], 2, /^$/, /^finnhubd chaos: Unknown option '--keep'; see `npm run chaos -- --help` \[FINNHUBD_ERR_USAGE\]\n$/],
    ['tools/chaos/run.js', ['--rate', '-3'], 2, /^$/, /^finnhubd chaos: Option '--rate' argument is ambiguous[\s\S]*\[FINNHUBD_ERR_USAGE\]\n$/],
    ['tools/chaos/run.js', ['--rate', '0'], 2, /^$/, /^finnhubd chaos: --rate takes trades per second > 0, got 0 \[FINNHUBD_ERR_USAGE\]\n$/],
    // The development commands through finnhubd itself: daemon/cli.js (the entry) imports
    // tools/cli.js while it runs; an import back into the entry would wait on itself and
    // the process would exit 13 with nothing said.
    ['daemon/cli.js', ['stack', 'up', '--help'], 0, /^usage: npm run stack -- up /, null],
    ['daemon/cli.js', ['simulate', '--help'], 0, /^usage: /, null],
    ['daemon/cli.js', ['--config', '/nonexistent/finnhubd.yaml', 'demo', '--secure'], 1, /^$/, /^finnhubd: cannot read config file \/nonexistent\/finnhubd\.yaml \(ENOENT\).*\[FINNHUBD_ERR_CONFIG\]\n$/],
    ['tools/stack/cli.js', ['up', '--help'], 0, /^usage: npm run stack -- up /, null],
    ['tools/stack/cli.js', ['down', '--all'], 2, /^$/, /^finnhubd stack: Unknown option '--all'/]
  ]
  // The stack's env points nowhere: help must not look.
  const env = { FINNHUBD_STACK_DIR: '/nonexistent/stack', FINNHUBD_KAFKA_PORT: 'not-a-port' }
  for (const [file, args, code, out, err] of cases) {
    const r = await script(file, args, env)
    t.equal(r.code, code, `${file} ${args.join(' ')}: exit ${code}`)
    t.match(r.out, out)
    if (err === null) t.equal(r.err, '', `${file} ${args.join(' ')}: nothing on stderr`)
    else t.match(r.err, err)
    t.ok(r.ms < 10_000, `${file} ${args.join(' ')}: answered at once (${r.ms} ms)`)
  }
})

t.test('`npm run bench` with the stack\'s port taken: the error and its code, exit 1, no stack trace', async t => {
  const [kafkaPort, controllerPort, proxiedPort, proxyPort] = await freePorts(4)
  const squatter = createServer()
  await new Promise<void>(resolve => squatter.listen(kafkaPort, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => squatter.close(() => resolve())))
  const r = await script('tools/bench/run.js', ['ingest', '--seconds', '1'], {
    FINNHUBD_STACK_DIR: t.testdir(),
    FINNHUBD_STACK_CACHE_DIR: stackOptions(process.env).cacheDir,
    FINNHUBD_KAFKA_PORT: String(kafkaPort),
    FINNHUBD_KAFKA_CONTROLLER_PORT: String(controllerPort),
    FINNHUBD_KAFKA_PROXIED_PORT: String(proxiedPort),
    FINNHUBD_KAFKA_PROXY_PORT: String(proxyPort)
  })
  t.equal(r.code, 1)
  t.match(r.err, new RegExp(`^finnhubd bench: port ${String(kafkaPort)} \\(Kafka client listener\\) is already in use by pid ${process.pid}[^]*\\[FINNHUBD_ERR_STACK_PORT\\]\\n$`))
  t.notMatch(r.err, /^\s+at /m, 'no stack trace')
})
