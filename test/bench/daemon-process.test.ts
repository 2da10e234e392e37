// The bench's and fault suite's scrape of the daemon survives a dropped connection
// (tools/bench/daemon-process.ts getText): a real HTTP server that destroys the first
// requests' sockets, then answers.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { getText } from '../../tools/bench/daemon-process.js'

async function serverDropping (drops: number): Promise<{ server: Server, url: string, seen: () => number }> {
  let seen = 0
  const server = createServer((req, res) => {
    seen++
    if (seen <= drops) { req.socket.destroy(); return }
    res.end('ok')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as { port: number }
  return { server, url: `http://127.0.0.1:${port}/metrics`, seen: () => seen }
}

t.test('a dropped connection is tried again while the server runs', async t => {
  const { server, url, seen } = await serverDropping(2)
  t.teardown(() => { server.close() })
  t.equal(await getText(url, () => true, 'the test server', 5, 1), 'ok')
  t.equal(seen(), 3, 'two dropped, the third answered')
})

t.test('after the last try, an error that names the URL, the server and the cause', async t => {
  const { server, url, seen } = await serverDropping(100)
  t.teardown(() => { server.close() })
  await t.rejects(getText(url, () => true, 'the test server', 3, 1), { message: new RegExp(`GET ${url} from the test server failed 3 times: fetch failed \\(`) })
  t.equal(seen(), 3)
})

t.test('a server whose process has exited is not waited for', async t => {
  const { server, url, seen } = await serverDropping(100)
  t.teardown(() => { server.close() })
  await t.rejects(getText(url, () => false, 'the test server', 5, 1), { message: /failed 1 time and it has exited/ })
  t.equal(seen(), 1)
})
