// The one retry loop: until done, until the failure says stop, or until the scope
// closes, whose sleeps end at once.
import t from 'tap'
import { backoffDelay, RetryScope, retryUntilDone } from '../../daemon/core/retry.js'

t.test('backoff: full jitter under an exponential ceiling', async t => {
  t.equal(backoffDelay(0, 100, 5000, () => 1), 100)
  t.equal(backoffDelay(3, 100, 5000, () => 1), 800)
  t.equal(backoffDelay(40, 100, 5000, () => 1), 5000, 'capped, and no overflow past 2^30')
  t.equal(backoffDelay(3, 100, 5000, () => 0), 0)
})

t.test('retried until done, with the delays onFailure gives', async t => {
  const scope = new RetryScope()
  const seen: number[] = []
  let calls = 0
  const out = await retryUntilDone(async n => { calls++; if (n < 3) throw new Error(`fail ${n}`); return 'ok' }, {
    scope, closedError: () => new Error('closed'), onFailure: (_err, n) => { seen.push(n); return 1 }
  })
  t.equal(out, 'ok')
  t.equal(calls, 4)
  t.same(seen, [0, 1, 2])
})

t.test('a failure that retrying cannot cure is thrown at once', async t => {
  const scope = new RetryScope()
  await t.rejects(retryUntilDone(async () => { throw new Error('invalid') }, {
    scope, closedError: () => new Error('closed'), onFailure: err => ({ fail: new Error(`refused: ${(err as Error).message}`) })
  }), /refused: invalid/)
})

t.test('closing ends a backoff at once and the loop gives up with the closed error', async t => {
  const scope = new RetryScope()
  const started = Date.now()
  const running = retryUntilDone(async () => { throw new Error('down') }, { scope, closedError: () => new Error('closed'), onFailure: () => 60_000 })
  await new Promise(resolve => setTimeout(resolve, 20))
  scope.close()
  await t.rejects(running, /closed/)
  t.ok(Date.now() - started < 10_000, 'did not wait out the 60 s backoff')
  await scope.sleep(60_000)
  t.pass('a sleep on a closed scope returns at once')
  await t.rejects(retryUntilDone(async () => 1, { scope, closedError: () => new Error('closed'), onFailure: () => 0 }), /closed/, 'no attempt once closed')
})
