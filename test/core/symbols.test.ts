// Discovery's pure half: candidates from a listing, the room under the cap, and the
// subscription set.
import t from 'tap'
import { discoveryCandidates, discoveryRoom, subscriptionSet } from '../../daemon/core/symbols.js'

const LISTED = ['BINANCE:ETHUSDT', 'BINANCE:BTCUSDT', 'BINANCE:ETHBTC', 'BINANCE:BTCUSDT', 'not a symbol!', '', 'BINANCE:LUNAUSDT', 'BINANCE:DOGEUSDT']

t.test('candidates: patterns, static symbols left out, duplicates and invalid names dropped, sorted', async t => {
  const all = discoveryCandidates(LISTED, { include: [], exclude: [], staticSymbols: [] })
  t.same(all.symbols, ['BINANCE:BTCUSDT', 'BINANCE:DOGEUSDT', 'BINANCE:ETHBTC', 'BINANCE:ETHUSDT', 'BINANCE:LUNAUSDT'])
  t.equal(all.invalid, 2)
  const usdt = discoveryCandidates(LISTED, { include: ['USDT$'], exclude: ['^BINANCE:LUNA', 'DOGE'], staticSymbols: ['BINANCE:ETHUSDT'] })
  t.same(usdt.symbols, ['BINANCE:BTCUSDT'])
  const either = discoveryCandidates(LISTED, { include: ['ETH', 'DOGE'], exclude: [], staticSymbols: [] })
  t.same(either.symbols, ['BINANCE:DOGEUSDT', 'BINANCE:ETHBTC', 'BINANCE:ETHUSDT'], 'any include pattern lets a symbol in')
})

t.test('candidates: the previous result comes first, in its order, while still listed and allowed', async t => {
  const c = discoveryCandidates(LISTED, { include: [], exclude: ['LUNA'], staticSymbols: [], previous: ['BINANCE:ETHUSDT', 'BINANCE:GONE', 'BINANCE:LUNAUSDT', 'BINANCE:DOGEUSDT'] })
  t.same(c.symbols, ['BINANCE:ETHUSDT', 'BINANCE:DOGEUSDT', 'BINANCE:BTCUSDT', 'BINANCE:ETHBTC'])
})

t.test('room under the cap', async t => {
  t.equal(discoveryRoom(2, 50), 48)
  t.equal(discoveryRoom(50, 50), 0)
  t.equal(discoveryRoom(60, 50), 0)
})

t.test('subscriptions: static symbols always, discovered ones while under the cap', async t => {
  t.same(subscriptionSet(['A', 'B'], ['C', 'A', 'D', 'E'], 4), ['A', 'B', 'C', 'D'])
  t.same(subscriptionSet(['A', 'B', 'C'], ['D'], 2), ['A', 'B', 'C'], 'static symbols are never dropped for the cap')
  t.same(subscriptionSet(['A', 'A'], [], 5), ['A'])
  t.same(subscriptionSet([], ['X', 'Y'], 50), ['X', 'Y'])
})
