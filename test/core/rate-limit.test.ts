// The REST rate limiter, pure: under any arrival pattern no window of windowMs holds
// more than `requests` sends, and a request is never held back longer than needed.
import t from 'tap'
import { SlidingWindowLimiter, parseRetryAfter } from '../../daemon/core/rate-limit.js'
import { mulberry32 } from '../../tools/simulator/generator.js'
import { maxInWindow } from '../fixtures/windows.js'

/** Drives the limiter with a virtual clock: callers arrive at `arrivals`, each sends as soon as allowed, in order. */
function drive (limiter: SlidingWindowLimiter, arrivals: readonly number[]): number[] {
  const sent: number[] = []
  let clock = 0
  for (const arrival of arrivals) {
    clock = Math.max(clock, arrival)
    for (;;) {
      const wait = limiter.delayMs(clock)
      if (wait === 0) break
      clock += wait
    }
    limiter.record(clock)
    sent.push(clock)
  }
  return sent
}

t.test('a burst goes at once up to the limit, then one more as each leaves the window', async t => {
  const limiter = new SlidingWindowLimiter(3, 1000, 0)
  const sent = drive(limiter, [0, 0, 0, 0, 0, 0, 0])
  t.same(sent, [0, 0, 0, 1000, 1000, 1000, 2000])
  t.equal(limiter.inWindow(2000), 1)
})

t.test('the margin holds each send back a little longer than the window', async t => {
  const limiter = new SlidingWindowLimiter(2, 1000, 100)
  t.same(drive(limiter, [0, 10, 20]), [0, 10, 1100])
})

t.test('random arrivals: never more than `requests` in any window, and no needless wait', async t => {
  for (let seed = 1; seed <= 20; seed++) {
    const random = mulberry32(seed)
    const requests = 1 + Math.floor(random() * 10)
    const windowMs = 100 + Math.floor(random() * 5000)
    const arrivals: number[] = []
    let at = 0
    for (let i = 0; i < 300; i++) {
      at += random() < 0.3 ? 0 : Math.floor(random() * windowMs / requests * 2)
      arrivals.push(at)
    }
    const limiter = new SlidingWindowLimiter(requests, windowMs, 0)
    const sent = drive(limiter, arrivals)
    t.ok(maxInWindow(sent, windowMs) <= requests, `seed ${seed}: at most ${requests} per ${windowMs} ms`)
    // Work-conserving: a send that waited went exactly when a slot freed.
    let needless = 0
    for (let i = 0; i < sent.length; i++) {
      const s = sent[i] as number
      if (s === Math.max(arrivals[i] as number, i > 0 ? sent[i - 1] as number : 0)) continue
      const earlier = sent.slice(0, i).filter(x => x > s - 1 - windowMs && x <= s - 1)
      if (earlier.length < requests) needless++
    }
    t.equal(needless, 0, `seed ${seed}: no send waited while a slot was free`)
  }
})

t.test('configure changes the limit; earlier sends still count', async t => {
  const limiter = new SlidingWindowLimiter(5, 1000, 0)
  drive(limiter, [0, 0, 0])
  limiter.configure(2, 1000)
  t.equal(limiter.requests, 2)
  t.equal(limiter.windowMs, 1000)
  t.equal(limiter.delayMs(10), 990, 'two of the three sent are inside the new limit: wait for one to leave')
  limiter.configure(10, 500)
  t.equal(limiter.delayMs(10), 0)
  t.throws(() => limiter.configure(0, 1000), RangeError)
  t.throws(() => limiter.configure(1, 0), RangeError)
  t.throws(() => new SlidingWindowLimiter(1.5, 1000), RangeError)
  t.throws(() => new SlidingWindowLimiter(1, -1), RangeError)
})

t.test('Retry-After: seconds, an HTTP date, or nothing usable', async t => {
  const now = Date.parse('2026-12-01T12:00:00Z')
  t.equal(parseRetryAfter('7', now), 7000)
  t.equal(parseRetryAfter(' 0 ', now), 0)
  t.equal(parseRetryAfter('Tue, 01 Dec 2026 12:00:30 GMT', now), 30_000)
  t.equal(parseRetryAfter('Tue, 01 Dec 2026 11:00:00 GMT', now), 0, 'a date in the past: at once')
  t.equal(parseRetryAfter('soon', now), null)
  t.equal(parseRetryAfter('', now), null)
  t.equal(parseRetryAfter(null, now), null)
  t.equal(parseRetryAfter(undefined, now), null)
  t.equal(parseRetryAfter('-5', now), null)
})
