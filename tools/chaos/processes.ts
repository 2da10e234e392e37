// The processes and the network a fault scenario works with besides the daemon and the
// simulator: the local stack's Kafka and Cassandra (signalled, killed, started,
// restarted) and the TCP proxies a scenario talks to one of them through.

import type { StackOptions } from '../stack/options.js'
import { isAlive, sleep } from '../stack/proc.js'
import { down, runningPid, selectComponents, up } from '../stack/stack.js'
import { freePort } from '../bench/daemon-process.js'
import { TcpProxy } from './proxy.js'

export type StackComponent = 'kafka' | 'cassandra'

/** The local stack's components, for scenarios that need it (`stack` null: a remote cluster, and each call throws). */
export class StackControl {
  readonly #stack: StackOptions | null
  readonly #scenario: string
  readonly #log: (line: string) => void

  constructor (stack: StackOptions | null, scenario: string, log: (line: string) => void) {
    this.#stack = stack
    this.#scenario = scenario
    this.#log = log
  }

  #local (): StackOptions {
    if (this.#stack === null) throw new Error(`${this.#scenario} needs the local stack`)
    return this.#stack
  }

  pid (name: StackComponent): number {
    const pid = runningPid(selectComponents([name])[0] as Parameters<typeof runningPid>[0], this.#local())
    if (pid === null) throw new Error(`${name} is not running`)
    return pid
  }

  signal (name: StackComponent, sig: NodeJS.Signals): void {
    process.kill(this.pid(name), sig)
  }

  /** kill -9 of a component; returns once it is gone. */
  async kill (name: StackComponent): Promise<void> {
    const pid = this.pid(name)
    process.kill(pid, 'SIGKILL')
    while (isAlive(pid)) await sleep(50)
  }

  /** Starts a component (the suite's stack options, with `overrides`). */
  async start (name: StackComponent, overrides: Partial<StackOptions> = {}): Promise<void> {
    await up({ ...this.#local(), ...overrides }, process.env, selectComponents([name]), line => this.#log(line))
  }

  /** Stops a component cleanly and starts it again with `overrides`. */
  async restart (name: StackComponent, overrides: Partial<StackOptions> = {}): Promise<void> {
    await down(this.#local(), selectComponents([name]), line => this.#log(line))
    await this.start(name, overrides)
  }
}

/** The endpoints the daemon is given: direct, or through a proxy. */
export interface DaemonEndpoints { kafkaBootstrap: string, cassandraPort: number }

/** The scenario's TCP proxy (at most one: to Kafka or to Cassandra). */
export class Proxies {
  kafka: TcpProxy | null = null
  cassandra: TcpProxy | null = null

  /** Opens the proxy `via` names (none when undefined); returns the endpoints the daemon talks to. */
  async open (via: 'kafka' | 'cassandra' | undefined, direct: DaemonEndpoints, stack: StackOptions | null, scenario: string): Promise<DaemonEndpoints> {
    if (via === 'kafka') {
      if (stack === null) throw new Error(`${scenario} needs the local stack (its Kafka has the listener the proxy forwards to)`)
      this.kafka = new TcpProxy(stack.kafkaProxiedPort)
      await this.kafka.listen(stack.kafkaProxyPort)
      return { ...direct, kafkaBootstrap: `127.0.0.1:${stack.kafkaProxyPort}` }
    }
    if (via === 'cassandra') {
      const cassandraProxyPort = await freePort()
      this.cassandra = new TcpProxy(direct.cassandraPort)
      await this.cassandra.listen(cassandraProxyPort)
      return { ...direct, cassandraPort: cassandraProxyPort }
    }
    return direct
  }

  /** Every proxy back to passing traffic. */
  pass (): void {
    this.kafka?.setMode('pass')
    this.cassandra?.setMode('pass')
  }
}
