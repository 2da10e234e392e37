// Native HTTPS (http.tls): with a throwaway self-signed certificate made here by
// openssl, the server answers over TLS only, a client trusting that certificate gets
// the console with its token (the cookie it sets is Secure), the Host check and the
// security headers hold over TLS too, and unreadable or wrong files are clear errors.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { request } from 'node:https'
import { join } from 'node:path'
import { isFinnhubdError } from '../daemon/core/errors.js'
import { SECURITY_HEADERS } from '../daemon/http.js'
import { localServer } from './fixtures/hostile-http.js'
import { readFileSync } from 'node:fs'

t.setTimeout(60_000)

const TOKEN = 'console-token-0123456789'

function selfSigned (dir: string): { cert: string, key: string } {
  const cert = join(dir, 'c.pem')
  const key = join(dir, 'k.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  return { cert, key }
}

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

function get (url: string, ca: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Checked as localhost (in the certificate) whatever Host the request sends.
    const req = request(url, { ca, headers, servername: 'localhost' }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('HTTPS with http.tls: the console and its token over TLS', async t => {
  const files = selfSigned(t.testdir())
  const ca = readFileSync(files.cert)
  const s = await localServer(t, { http: { console: { token: TOKEN } }, serve: { tls: { certificateFile: files.cert, keyFile: files.key } } })
  t.match(s.http.url, /^https:\/\/127\.0\.0\.1:\d+$/)

  const health = await get(`${s.http.url}/healthz`, ca)
  t.equal(health.status, 200)
  t.equal(health.headers['content-security-policy'], SECURITY_HEADERS['content-security-policy'])

  t.equal((await get(`${s.http.url}/api/pipeline`, ca)).status, 401, 'the console still needs its token')
  const api = await get(`${s.http.url}/api/pipeline`, ca, { authorization: `Bearer ${TOKEN}` })
  t.equal(api.status, 200)
  t.equal(api.headers['cache-control'], 'no-store')
  const login = await get(`${s.http.url}/?token=${TOKEN}`, ca)
  t.equal(login.status, 303)
  t.match(String(login.headers['set-cookie']), /^finnhubd_console=.*; HttpOnly; SameSite=Strict; Path=\/; Secure$/, 'the cookie is only ever sent back over TLS')
  const cookie = String(login.headers['set-cookie']).split(';')[0] ?? ''
  t.equal((await get(`${s.http.url}/api/symbols`, ca, { cookie })).status, 200, 'the cookie opens the console')
  t.equal((await get(`${s.http.url}/healthz`, ca, { host: 'attacker.example' })).status, 421, 'the Host check over TLS too')

  await t.rejects(get(`${s.http.url}/healthz`, Buffer.from('')), 'a client that does not trust the certificate is refused')
  await t.rejects(fetch(s.http.url.replace('https:', 'http:') + '/healthz'), 'plain HTTP is not served')
})

t.test('unreadable or wrong TLS files are clear errors naming the setting', async t => {
  const dir = t.testdir({ 'junk.pem': 'not a certificate' })
  const files = selfSigned(dir)
  const missing = await localServer(t, { serve: { tls: { certificateFile: join(dir, 'nope.pem'), keyFile: files.key } } }).catch((err: unknown) => err)
  t.ok(isFinnhubdError(missing, 'FINNHUBD_ERR_HTTP'))
  t.match((missing as Error).message, /cannot read http\.tls\.certificateFile .*nope\.pem \(ENOENT\)/)
  const junk = await localServer(t, { serve: { tls: { certificateFile: join(dir, 'junk.pem'), keyFile: files.key } } }).catch((err: unknown) => err)
  t.ok(isFinnhubdError(junk, 'FINNHUBD_ERR_HTTP'))
  t.match((junk as Error).message, /cannot serve HTTPS with http\.tls\.certificateFile and keyFile/)
})
