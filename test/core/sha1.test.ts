// The JavaScript SHA-1 behind trade ids agrees with node:crypto at every length
// around the block boundaries (55/56/64 bytes) and beyond.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { sha1Into } from '../../daemon/core/sha1.js'

t.test('equal to node:crypto for lengths 0..300 and random content', async t => {
  const out = new Uint8Array(20)
  let wrong = 0
  for (let len = 0; len <= 300; len++) {
    for (let k = 0; k < 3; k++) {
      const bytes = randomBytes(len)
      sha1Into(bytes, len, out)
      if (Buffer.from(out).toString('hex') !== createHash('sha1').update(bytes).digest('hex')) wrong++
    }
  }
  t.equal(wrong, 0, 'no mismatch in 903 inputs')
  sha1Into(Buffer.from('abc'), 3, out)
  t.equal(Buffer.from(out).toString('hex'), 'a9993e364706816aba3e25717850c26c9cd0d89d', 'FIPS 180 test vector "abc"')
  const big = randomBytes(5000)
  sha1Into(big, 4000, out)
  t.equal(Buffer.from(out).toString('hex'), createHash('sha1').update(big.subarray(0, 4000)).digest('hex'), 'only the first `length` bytes count; the block buffer grows')
})
