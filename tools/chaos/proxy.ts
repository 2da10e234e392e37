// A loopback TCP proxy the fault suite controls, to cut the network between the
// daemon and Kafka or Cassandra without touching either:
//  - pass:      bytes flow both ways;
//  - delay:     every chunk is forwarded `delayMs` late (order kept);
//  - cut:       every connection is reset, and new ones are reset as they come;
//  - freeze:    nothing is read either way (the sockets stay open and TCP's own
//               backpressure holds the bytes), as if the peer were SIGSTOPped;
//  - blackhole: a half-open connection: bytes are read and dropped both ways, the
//               sockets stay open, nobody is told. Leaving it resets those
//               connections (their byte streams have holes), as a NAT or firewall
//               that lost its state would.
// Loopback only.

import { createServer, Socket, type Server } from 'node:net'

export type ProxyMode = 'pass' | 'delay' | 'cut' | 'freeze' | 'blackhole'

interface Pair { client: Socket, upstream: Socket, holed: boolean }

export class TcpProxy {
  readonly #targetPort: number
  readonly #pairs = new Set<Pair>()
  #server: Server | null = null
  #mode: ProxyMode = 'pass'
  #delayMs = 0
  /** Connections accepted so far. */
  accepted = 0

  constructor (targetPort: number) {
    this.#targetPort = targetPort
  }

  get mode (): ProxyMode { return this.#mode }

  async listen (port: number): Promise<void> {
    const server = createServer(client => { this.#onConnection(client) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
    this.#server = server
  }

  setMode (mode: ProxyMode, delayMs = 0): void {
    const before = this.#mode
    this.#mode = mode
    this.#delayMs = delayMs
    for (const pair of this.#pairs) {
      if (mode === 'cut' || (before === 'blackhole' && mode !== 'blackhole' && pair.holed)) {
        this.#reset(pair)
        continue
      }
      if (mode === 'blackhole') pair.holed = true
      if (mode === 'freeze') {
        pair.client.pause()
        pair.upstream.pause()
      } else {
        pair.client.resume()
        pair.upstream.resume()
      }
    }
  }

  async close (): Promise<void> {
    for (const pair of this.#pairs) this.#reset(pair)
    const server = this.#server
    this.#server = null
    if (server !== null) await new Promise<void>(resolve => server.close(() => resolve()))
  }

  #onConnection (client: Socket): void {
    this.accepted++
    client.on('error', () => {})
    if (this.#mode === 'cut') {
      client.resetAndDestroy()
      return
    }
    const upstream = new Socket()
    upstream.on('error', () => {})
    const pair: Pair = { client, upstream, holed: this.#mode === 'blackhole' }
    this.#pairs.add(pair)
    const forward = (to: Socket) => (chunk: Buffer): void => {
      if (this.#mode === 'blackhole' || pair.holed) return
      if (this.#mode === 'delay' && this.#delayMs > 0) {
        setTimeout(() => { if (!to.destroyed) to.write(chunk) }, this.#delayMs)
      } else if (!to.destroyed) {
        to.write(chunk)
      }
    }
    client.on('data', forward(upstream))
    upstream.on('data', forward(client))
    const end = (): void => { this.#reset(pair) }
    client.once('close', end)
    upstream.once('close', end)
    upstream.connect(this.#targetPort, '127.0.0.1')
    if (this.#mode === 'freeze') {
      client.pause()
      upstream.pause()
    }
  }

  #reset (pair: Pair): void {
    if (!this.#pairs.delete(pair)) return
    if (!pair.client.destroyed) pair.client.resetAndDestroy()
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy()
  }
}
