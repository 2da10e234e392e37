// CPU accounting from /proc text (tools/bench/proc-stat.ts): a process's utime + stime
// whatever its command name holds, the machine's busy share, and a clear "no figure"
// (null / NaN) for text that is not a stat file, never a wrong number.
import t from 'tap'
import fc from 'fast-check'
import { corePercent, machineBusyPercent, machineTicks, procStatTicks, readMachineTicks, readProcTicks } from '../../tools/bench/proc-stat.js'

/** A /proc/<pid>/stat line with this command name and these utime/stime (ticks). */
const statLine = (comm: string, utime: number, stime: number): string =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1500 0 0 0 ${utime} ${stime} 0 0 20 0 11 0 123456 1234567890 54321 18446744073709551615 1 1 0 0 0 0 0 4096 17479 0 0 0 17 1 0 0 0 0 0\n`

t.test('utime + stime of a real stat line, and of this process', async t => {
  t.equal(procStatTicks(statLine('node', 1234, 56)), 1290)
  t.equal(procStatTicks(statLine('java', 0, 0)), 0)
  const own = readProcTicks(process.pid)
  t.ok(own !== null && own >= 0, `this process's ticks are read (${String(own)})`)
  t.equal(readProcTicks(null), null, 'no pid: no figure')
  t.equal(readProcTicks(2 ** 22 + 12345), null, 'a process that is gone: no figure')
})

t.test('a command name with spaces, parentheses and ") " does not shift the fields', async t => {
  t.equal(procStatTicks(statLine('a) b (c) 9 9', 7, 3)), 10)
  t.equal(procStatTicks(statLine(')', 1, 1)), 2)
  fc.assert(fc.property(fc.string({ maxLength: 16 }).filter(s => !s.includes('\n')), fc.nat(1e9), fc.nat(1e9), (comm, u, s) => procStatTicks(statLine(comm, u, s)) === u + s))
})

t.test('text that is not a stat line gives null, whatever it is', async t => {
  t.equal(procStatTicks(''), null)
  t.equal(procStatTicks('4242 (node) S 1 2'), null, 'cut short')
  t.equal(procStatTicks('no parentheses here at all 1 2 3 4 5 6 7 8 9 10 11 12 13 14'), null)
  t.equal(procStatTicks(statLine('node', 1, 1).replace(' 1 1 0 0 20', ' x 1 0 0 20')), null, 'a field that is no number')
  fc.assert(fc.property(fc.string({ maxLength: 300 }), text => {
    const r = procStatTicks(text)
    return r === null || (Number.isSafeInteger(r) && r >= 0)
  }))
})

t.test('the machine: busy = total − idle − iowait, guest time not counted twice', async t => {
  const text = 'cpu  100 5 50 800 40 3 2 0 10 0\ncpu0 50 2 25 400 20 1 1 0 5 0\nintr 1 2 3\n'
  t.same(machineTicks(text), { busy: 160, total: 1000 })
  t.same(machineTicks('cpu 1 2 3 4\n'), { busy: 6, total: 10 }, 'an old kernel with four fields')
  t.equal(machineTicks('cpu0 1 2 3 4\n'), null, 'only per-core lines')
  t.equal(machineTicks('cpu 1 2 x 4\n'), null)
  t.equal(machineTicks('cpu 1 2\n'), null)
  const now = readMachineTicks()
  t.ok(now !== null && now.total > 0 && now.busy <= now.total, 'this machine\'s /proc/stat is read')
  fc.assert(fc.property(fc.string({ maxLength: 200 }), text => {
    const r = machineTicks(text)
    return r === null || (r.busy >= 0 && r.busy <= r.total)
  }))
})

t.test('shares of a core and of the machine between two readings', async t => {
  t.equal(corePercent(1000, 1150, 1), 150, '1.5 s of CPU in 1 s: 150 % of a core')
  t.equal(corePercent(0, 50, 2), 25)
  t.ok(Number.isNaN(corePercent(null, 50, 2)), 'a missing reading: NaN')
  t.ok(Number.isNaN(corePercent(100, 50, 2)), 'a pid reused by another process (ticks went back): NaN')
  t.ok(Number.isNaN(corePercent(1, 2, 0)), 'no time passed: NaN')
  t.equal(machineBusyPercent({ busy: 100, total: 1000 }, { busy: 250, total: 1200 }), 75)
  t.ok(Number.isNaN(machineBusyPercent(null, { busy: 1, total: 2 })))
  t.ok(Number.isNaN(machineBusyPercent({ busy: 1, total: 2 }, { busy: 1, total: 2 })))
})
