// prom-client metrics whose values are read at scrape time from plain counters the
// hot path increments (no prom-client call per trade). Shared by every role.

import { Counter, Gauge, type Registry } from 'prom-client'

/** A count per reason (or label value), every one at zero. */
export function zeros<R extends string> (keys: readonly R[]): Record<R, number> {
  return Object.fromEntries(keys.map(k => [k, 0])) as Record<R, number>
}

/** A counter that reports read() at each scrape. */
export function counterFrom (registry: Registry, name: string, help: string, read: () => number): void {
  // eslint-disable-next-line no-new -- registered through `registers`
  new Counter({ name, help, registers: [registry], collect () { this.reset(); this.inc(read()) } })
}

/** A counter with one label whose values and counts read() gives at each scrape. */
export function labelledCounterFrom (registry: Registry, name: string, help: string, label: string, read: () => Record<string, number>): void {
  // eslint-disable-next-line no-new -- registered through `registers`
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect () {
      this.reset()
      for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n)
    }
  })
}

/** A gauge set to read() at each scrape. */
export function gaugeFrom (registry: Registry, name: string, help: string, read: () => number): void {
  // eslint-disable-next-line no-new -- registered through `registers`
  new Gauge({ name, help, registers: [registry], collect () { this.set(read()) } })
}

/** A gauge with one label, replaced by read()'s entries at each scrape. */
export function labelledGaugeFrom (registry: Registry, name: string, help: string, label: string, read: () => Iterable<[string, number]>): void {
  // eslint-disable-next-line no-new -- registered through `registers`
  new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect () {
      this.reset()
      for (const [value, n] of read()) this.set({ [label]: value }, n)
    }
  })
}
