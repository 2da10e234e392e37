// DNS rebinding and cross-site pages against the HTTP server and its console, with no
// stack (fakes for Kafka and Cassandra): every path the server has — its own routes,
// the console's page and files, every API endpoint, taken from the server's own lists
// so a new one is covered at once — answers a foreign Host with the same 421 and runs
// no handler; loopback names, http.host and http.allowedHosts get through; a property
// over generated Host values: 421 exactly when the host is not served. A foreign
// Origin is a 403. Every answer, of any path, method or Host, carries the security
// headers, and the CSP lets the console's own page (its chart library's one <style>)
// work.
import t from 'tap'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { API_ENDPOINTS, CONSOLE_PATHS } from '../daemon/console/console.js'
import { CONSOLE_STYLE_HASH, hostName, REJECT_REASONS, ROUTES, SECURITY_HEADERS } from '../daemon/http.js'
import { PROJECT_ROOT } from '../daemon/paths.js'
import { getAs, localServer, metricValue, onTheWire, sendRaw, target, type RawResponse } from './fixtures/hostile-http.js'

t.setTimeout(120_000)

const SEED = 4210
const ALLOWED_NAME = 'finnhubd.example'

/** Every path the server answers, with parameters that make each a 200 when allowed. */
const SAMPLE_QUERY: Readonly<Record<string, string>> = { '/api/trades': '?symbol=AAPL', '/api/candles': '?symbol=AAPL', '/api/topic': '?limit=5' }
const PATHS = [...ROUTES, ...CONSOLE_PATHS, '/api', ...Object.keys(API_ENDPOINTS).map(e => e.split('?')[0] as string)]
  .map(p => `${p}${SAMPLE_QUERY[p] ?? ''}`)

const FOREIGN = (port: number): string[] => [
  'attacker.example', 'attacker.example:9464', `attacker.example:${port}`, '127.0.0.1.attacker.example', 'localhost.attacker.example',
  `localhost.attacker.example:${port}`, 'finnhubd.example.attacker.example', 'attacker.finnhubd.example', '10.0.0.1', '[::2]', '0.0.0.0', '127.0.0.1.nip.io'
]

function hasSecurityHeaders (r: RawResponse): boolean {
  return Object.entries(SECURITY_HEADERS).every(([k, v]) => r.headers[k] === v)
}

t.test('every path refuses a foreign Host with the same 421 before any handler runs', async t => {
  const s = await localServer(t, { serve: { allowedHosts: [ALLOWED_NAME] } })
  s.kafka.write('finnhub.trades', 0, 3)
  t.ok(PATHS.length >= ROUTES.length + CONSOLE_PATHS.length + Object.keys(API_ENDPOINTS).length, 'the server\'s own lists')
  const bodies = new Set<string>()
  for (const path of PATHS) {
    for (const host of FOREIGN(s.port)) {
      const r = await getAs(s.port, host, path)
      t.equal(r.status, 421, `${host} ${path}`)
      t.match(r.headers['content-type'], /^text\/plain/)
      t.ok(hasSecurityHeaders(r), 'with the security headers')
      bodies.add(r.body.toString('utf8'))
    }
  }
  t.equal(bodies.size, 1, 'one body for all: nothing of any endpoint')
  t.match([...bodies][0], /add it to http\.allowedHosts/)
  t.notMatch([...bodies][0], /attacker/, 'the Host is not echoed')
  t.same(s.calls, { readiness: 0, cassandra: 0 }, 'no handler ran: readiness and Cassandra never asked')
  t.equal(s.kafka.consumeCalls, 0, 'Kafka never read')
  t.equal(s.console.streams, 0, 'no stream opened')
  t.equal(await metricValue(s.registry, 'finnhubd_http_requests_rejected_total', '{reason="host"}'), PATHS.length * FOREIGN(s.port).length, 'each counted as reason host')
  t.ok(REJECT_REASONS.includes('host'))

  // Any method too: a foreign Host is refused before the method is looked at.
  const post = await sendRaw(s.port, Buffer.from('POST /api HTTP/1.1\r\nHost: attacker.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'))
  t.equal(post.status, 421)
})

t.test('loopback names, http.host and http.allowedHosts get through', async t => {
  const s = await localServer(t, { serve: { allowedHosts: [ALLOWED_NAME, '[fd00::1]'] } })
  const hosts = [`127.0.0.1:${s.port}`, '127.0.0.1', 'localhost', `localhost:${s.port}`, 'LOCALHOST', 'localhost.', `[::1]:${s.port}`, '[::1]', '127.9.8.7',
    ALLOWED_NAME, `${ALLOWED_NAME}:443`, 'FinnHubd.Example', '[fd00::1]:8443']
  for (const host of hosts) {
    for (const path of PATHS.filter(p => p !== '/api/stream')) {
      const r = await getAs(s.port, host, path)
      t.equal(r.status, 200, `${host} ${path}`)
    }
  }
  const old = await sendRaw(s.port, Buffer.from('GET /healthz HTTP/1.0\r\n\r\n'))
  t.equal(old.status, 200, 'HTTP/1.0 without a Host, as before')
  t.equal(await metricValue(s.registry, 'finnhubd_http_requests_rejected_total', '{reason="host"}'), 0)
})

t.test('a page of another site (its Origin) is refused with 403; the console\'s own origin is not', async t => {
  const s = await localServer(t, { serve: { allowedHosts: [ALLOWED_NAME] } })
  for (const origin of ['http://attacker.example', 'https://attacker.example:9464', 'null', 'http://127.0.0.1.attacker.example', 'file://', 'not a url']) {
    const r = await getAs(s.port, `127.0.0.1:${s.port}`, '/api/pipeline', { Origin: origin })
    t.equal(r.status, 403, origin)
    t.match(r.body.toString(), /http\.allowedHosts/)
    t.ok(hasSecurityHeaders(r))
  }
  for (const origin of [`http://127.0.0.1:${s.port}`, `http://localhost:${s.port}`, `https://${ALLOWED_NAME}`]) {
    t.equal((await getAs(s.port, `127.0.0.1:${s.port}`, '/api/pipeline', { Origin: origin })).status, 200, origin)
  }
  t.equal(await metricValue(s.registry, 'finnhubd_http_requests_rejected_total', '{reason="origin"}'), 6)
  t.equal(s.calls.readiness, 3, 'only the allowed ones reached the handler')
})

/** The test's own idea of the served names: independent of daemon/http.ts. */
function served (host: string): boolean {
  const name = (host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '')).toLowerCase().replace(/\.$/, '')
  return ['localhost', '[::1]', '127.0.0.1', ALLOWED_NAME].includes(name) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/)
const base = fc.oneof(
  fc.constantFrom('localhost', '127.0.0.1', '[::1]', ALLOWED_NAME, 'attacker.example', '[::2]', '[::ffff:10.0.0.1]', '0.0.0.0', '128.0.0.1', '1.127.0.0'),
  fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 })).map(n => n.join('.')),
  fc.array(label, { minLength: 1, maxLength: 4 }).map(l => l.join('.'))
)
/** Allowed names hidden inside foreign ones, the other way round, in any case, with a port or a trailing dot. */
const hostValue = fc.tuple(
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom('localhost', '127.0.0.1', '127.1.2.3', '[::1]', ALLOWED_NAME) }, { weight: 3, arbitrary: base }, { weight: 2, arbitrary: fc.tuple(base, label).map(([b, l]) => b.startsWith('[') ? b : `${b}.${l}`) },
    { weight: 2, arbitrary: fc.tuple(label, base).map(([l, b]) => b.startsWith('[') ? b : `${l}.${b}`) }),
  fc.boolean(), fc.boolean(), fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined })
).map(([name, upper, dot, port]) => `${upper ? name.toUpperCase() : name}${dot && !name.startsWith('[') ? '.' : ''}${port === undefined ? '' : `:${port}`}`)

t.test('property: 421 exactly when the Host is not served', async t => {
  const s = await localServer(t, { serve: { allowedHosts: [ALLOWED_NAME] } })
  let refused = 0
  let passed = 0
  await fc.assert(fc.asyncProperty(hostValue, fc.constantFrom(...PATHS.filter(p => p !== '/api/stream')), async (host, path) => {
    const r = await getAs(s.port, host, path)
    const expected = served(host) ? 200 : 421
    if (r.status !== expected) throw new Error(`Host ${host} ${path}: ${r.status}, expected ${expected} (hostName ${hostName(host)})`)
    if (expected === 421) refused++
    else passed++
  }), { seed: SEED, numRuns: 300 })
  t.ok(refused > 30 && passed > 30, `both sides are exercised (${refused} refused, ${passed} served)`)
})

t.test('property: every answer carries the security headers; the API\'s are never cached', async t => {
  const s = await localServer(t, { serve: { allowedHosts: [ALLOWED_NAME] } })
  const paths = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...PATHS) }, { weight: 2, arbitrary: target.map(onTheWire).filter(x => x.length < 4_000 && x.startsWith('/')) })
  const hosts = fc.constantFrom(`127.0.0.1:${s.port}`, 'localhost', 'attacker.example', 'a b')
  const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'OPTIONS')
  const statuses = new Set<number>()
  await fc.assert(fc.asyncProperty(paths, hosts, methods, fc.boolean(), async (path, host, method, origin) => {
    const text = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${origin ? 'Origin: http://attacker.example\r\n' : ''}Connection: close\r\n\r\n`
    const r = await sendRaw(s.port, Buffer.from(text, 'latin1'), { head: method === 'HEAD' })
    statuses.add(r.status)
    if (!hasSecurityHeaders(r)) throw new Error(`${r.status} for ${text.slice(0, 200)} lacks a security header: ${JSON.stringify(r.headers)}`)
    if (path.startsWith('/api') && r.headers['cache-control'] !== 'no-store') throw new Error(`${r.status} for ${path.slice(0, 100)}: cache-control ${r.headers['cache-control']}`)
  }), { seed: SEED, numRuns: 250 })
  t.ok([200, 400, 403, 404, 405, 421].every(c => statuses.has(c)), `many kinds of answer: ${[...statuses].sort().join(', ')}`)

  // Answers written straight to the socket: a parser error, headers too large, CONNECT.
  const raw = [
    'BREW /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n',
    `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'v'.repeat(20_000)}\r\n\r\n`,
    `CONNECT 127.0.0.1:${s.port} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n\r\n`
  ]
  for (const text of raw) {
    const r = await sendRaw(s.port, Buffer.from(text, 'latin1'))
    t.ok(hasSecurityHeaders(r), `${r.status} written to the socket`)
  }
  const stream = await getAs(s.port, 'localhost', '/api/stream')
  t.equal(stream.status, 200)
  t.ok(hasSecurityHeaders(stream) && stream.headers['cache-control'] === 'no-store', 'the event stream too')
})

t.test('the CSP lets the console\'s own page work: files from here, the chart library\'s one <style> by its hash', async t => {
  const csp = SECURITY_HEADERS['content-security-policy'] ?? ''
  t.match(csp, /^default-src 'self'; /)
  t.match(csp, /frame-ancestors 'none'/)
  t.notMatch(csp, /unsafe-inline|unsafe-eval/)
  const charts = dirname(createRequire(import.meta.url).resolve('lightweight-charts/package.json'))
  const library = readFileSync(join(charts, 'dist', 'lightweight-charts.standalone.production.js'), 'utf8')
  const styles = [...library.matchAll(/createElement\("style"\),this\.\w+\.innerText="([^"]*)"/g)].map(m => m[1] as string)
  t.equal(styles.length, 1, 'the library adds one <style> element (its attribution logo); a new version may change it')
  t.equal(`'sha256-${createHash('sha256').update(styles[0] ?? '').digest('base64')}'`, CONSOLE_STYLE_HASH, 'its hash is the one the CSP allows')
  t.notMatch(library, /setAttribute\("style"|new Function\(|\beval\(/, 'no inline style attributes or eval')
  const page = readFileSync(join(PROJECT_ROOT, 'daemon', 'console', 'static', 'index.html'), 'utf8')
  t.notMatch(page, /<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=/i, 'the page has no inline script, style or handler')
  t.same([...page.matchAll(/(?:src|href)="([^"#]+)"/g)].map(m => m[1]).filter(u => !(u as string).startsWith('/static/')), ['data:,'], 'it loads only /static files (and its empty data: icon)')
  t.match(csp, /img-src 'self' data:/)
})

t.test('loopback is 127.0.0.0/8 written as an address, ::1 and localhost; anything that only looks like it is not', async t => {
  const { isLoopbackHost } = await import('../daemon/config/schema.js')
  for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '127.255.255.254', '127.0.0.2', '::1', '[::1]', '::ffff:127.0.0.1', '[::ffff:127.3.2.1]']) t.ok(isLoopbackHost(h), h)
  for (const h of ['127.999.0.1', '127.0.0.01', '127.1', '0177.0.0.1', '127.0.0.1.attacker.example', 'localhost.attacker.example', '128.0.0.1', '::2', '::ffff:10.0.0.1', '', '127.0.0.1.']) {
    t.notOk(isLoopbackHost(h), `${h === '' ? '(empty)' : h} is not loopback`)
  }
})
