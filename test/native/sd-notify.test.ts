// The sd_notify addon (native/) and the notifier around it, against a real unix
// datagram socket bound as NOTIFY_SOCKET: path and abstract sockets, the messages
// systemd expects, errors with their errno names, the watchdog's cadence.
import t from 'tap'
import { createLogger } from '../../daemon/log.js'
import { loadNotifyAddon, SystemdNotifier, watchdogUsec, type NotifyAddon } from '../../daemon/systemd/notify.js'
import { listenNotify } from '../fixtures/notify-socket.js'

function addon (): NotifyAddon {
  const loaded = loadNotifyAddon()
  if (loaded instanceof Error) throw new Error(`the addon is not built (npm run build:native): ${loaded.message}`)
  return loaded
}

function logger (): { lines: Array<Record<string, unknown>>, log: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, log: createLogger({ level: 'debug', write: l => lines.push(JSON.parse(l) as Record<string, unknown>) }) }
}

t.test('the addon is built by the install and sends datagrams to path and abstract sockets', async t => {
  const a = addon()
  for (const abstract of [false, true]) {
    const sock = await listenNotify(t, { abstract })
    a.notify(sock.path, 'READY=1\nSTATUS=hello')
    a.notify(sock.path, 'WATCHDOG=1')
    const last = await sock.next(/^WATCHDOG=1$/, 5_000)
    t.ok(last, `${abstract ? 'abstract' : 'path'} socket received`)
    t.same(sock.messages.map(m => m.text), ['READY=1\nSTATUS=hello', 'WATCHDOG=1'], 'exact datagrams, in order')
  }
})

t.test('the addon reports bad arguments and socket errors by errno name', async t => {
  const a = addon()
  t.throws(() => a.notify('/nonexistent/finnhubd/notify.sock', 'READY=1'), { code: 'ENOENT', message: /sendto\(\$NOTIFY_SOCKET\)/ })
  t.throws(() => a.notify('relative.sock', 'READY=1'), { code: 'EINVAL', message: /absolute path or an abstract name/ })
  t.throws(() => a.notify('/' + 'x'.repeat(200), 'READY=1'), { code: 'ENAMETOOLONG' })
  t.throws(() => a.notify('/tmp/x.sock', 'x'.repeat(5000)), { code: 'EMSGSIZE' })
  t.throws(() => (a.notify as unknown as (p: string, m: number) => void)('/tmp/x.sock', 1), { code: 'EINVAL', message: /must be a string/ })
  t.throws(() => (a.notify as unknown as (p: string) => void)('/tmp/x.sock'), { code: 'EINVAL', message: /two strings/ })
})

t.test('monotonicUsec reads CLOCK_MONOTONIC, the clock MONOTONIC_USEC= is measured on', async t => {
  const a = addon()
  const first = a.monotonicUsec()
  const hr = process.hrtime.bigint() / 1000n
  const second = a.monotonicUsec()
  t.type(first, 'bigint')
  t.ok(second >= first, 'never goes back')
  const diff = hr > first ? hr - first : first - hr
  t.ok(diff < 1_000_000n, `within a second of Node's own monotonic clock (off by ${diff} µs)`)
})

t.test('without NOTIFY_SOCKET the notifier is off and silent', async t => {
  const { lines, log } = logger()
  const n = new SystemdNotifier({ env: {}, log })
  n.ready('x')
  n.reloading()
  n.stopping()
  n.startWatchdog()
  t.equal(n.enabled, false)
  t.equal(n.sent, 0)
  t.same(lines, [])
})

t.test('NOTIFY_SOCKET set but no addon: the daemon runs and says once that notification is off', async t => {
  const { lines, log } = logger()
  const missing = loadNotifyAddon('/nonexistent/sd_notify.node')
  t.ok(missing instanceof Error)
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/run/systemd/notify' }, log, addon: missing })
  n.ready()
  n.ready()
  t.equal(n.enabled, false)
  t.equal(lines.filter(l => /systemd notification is off/.test(String(l['msg']))).length, 1)
})

t.test('READY, STATUS, RELOADING with MONOTONIC_USEC, STOPPING', async t => {
  const sock = await listenNotify(t)
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path }, log: logger().log })
  t.equal(n.enabled, true)
  n.ready('running')
  n.status('line one\n  line two')
  n.reloading('reloading')
  n.stopping()
  await sock.next(/^STOPPING=1$/, 5_000)
  const texts = sock.messages.map(m => m.text)
  t.equal(texts[0], 'READY=1\nSTATUS=running')
  t.equal(texts[1], 'STATUS=line one line two', 'a status stays on one line')
  t.match(texts[2], /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading$/)
  t.equal(texts[3], 'STOPPING=1')
  t.equal(n.sent, 4)
})

t.test('a send that fails is logged, never thrown', async t => {
  const { lines, log } = logger()
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent/finnhubd.sock' }, log })
  t.doesNotThrow(() => n.ready())
  t.equal(n.sent, 0)
  t.match(lines.find(l => l['msg'] === 'could not notify systemd through NOTIFY_SOCKET'), { socket: '/nonexistent/finnhubd.sock', message: 'READY=1' })
})

t.test('WATCHDOG_USEC is honoured only for this process', async t => {
  t.equal(watchdogUsec({}, 10), null)
  t.equal(watchdogUsec({ WATCHDOG_USEC: '0' }, 10), null)
  t.equal(watchdogUsec({ WATCHDOG_USEC: 'soon' }, 10), null)
  t.equal(watchdogUsec({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '11' }, 10), null, 'meant for another process')
  t.equal(watchdogUsec({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '10' }, 10), 20_000_000)
  t.equal(watchdogUsec({ WATCHDOG_USEC: '20000000' }, 10), 20_000_000)
})

t.test('the watchdog pings at half the interval, and not while unhealthy', async t => {
  const sock = await listenNotify(t)
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '200000' }, log: logger().log })
  t.equal(n.watchdogMs, 200)
  let healthy = true
  n.startWatchdog(() => healthy)
  n.startWatchdog(() => healthy) // idempotent: one timer
  await new Promise(resolve => setTimeout(resolve, 1_050))
  healthy = false
  const pings = sock.messages.filter(m => m.text === 'WATCHDOG=1')
  // 100 ms apart: about ten in a second; one timer, so never twice as many.
  t.ok(pings.length >= 5 && pings.length <= 12, `about ten pings in a second (got ${pings.length})`)
  const gaps = pings.slice(1).map((p, i) => p.at - (pings[i] as { at: number }).at).sort((a, b) => a - b)
  const median = gaps[Math.floor(gaps.length / 2)] ?? 0
  t.ok(median >= 60 && median <= 160, `pings about 100 ms apart (median gap ${median} ms)`)
  const before = sock.messages.length
  await new Promise(resolve => setTimeout(resolve, 350))
  t.equal(sock.messages.length, before, 'no ping while unhealthy')
  n.stopWatchdog()
  n.stopWatchdog()
})
