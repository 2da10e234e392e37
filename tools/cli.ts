// The development commands of `finnhubd` — demo, simulate, stack — which run from a
// clone only: an installed daemon builds daemon/ and workers/ and none of tools/, and
// its command line (daemon/cli.ts) loads this file only when it is there.

import { parseArgs } from 'node:util'
import { DEMO_OPTIONS } from '../daemon/args.js'
import type { DevContext } from '../daemon/cli.js'
import { installFatalHandler } from '../daemon/daemon.js'
import { createLogger } from '../daemon/log.js'
import { firstStopSignal } from '../daemon/signals.js'

export async function runDevCommand (command: 'demo' | 'simulate' | 'stack', rest: readonly string[], ctx: DevContext): Promise<number> {
  switch (command) {
    case 'demo': {
      // --secure: on the secure stack (daemon/cli.ts checked demo's options and answered --help).
      const { values } = parseArgs({ args: [...rest], options: DEMO_OPTIONS, strict: true })
      const loaded = ctx.load()
      for (const w of loaded.warnings) ctx.err(`finnhubd: warning: ${w}`)
      const { config } = loaded
      const { runDemo } = await import('./demo.js')
      const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel })
      if (ctx.isEntry) installFatalHandler({ log })
      return await runDemo({ env: ctx.env, config, out: ctx.out, log, stopSignal: ctx.signals?.(log) ?? firstStopSignal(log), ...(values.secure === true ? { secure: true } : {}) })
    }
    case 'simulate': {
      const { runSimulateCli } = await import('./simulator/cli.js')
      const controller = new AbortController()
      const log = createLogger({ level: 'info' })
      ;(ctx.signals?.(log) ?? firstStopSignal(log)).then(() => controller.abort(), () => controller.abort())
      // env is a getter: the env file is read only once the command is past its --help.
      return await runSimulateCli(rest, { get env () { return ctx.env }, out: ctx.out, err: ctx.err, signal: controller.signal })
    }
    case 'stack': {
      const { runStackCli } = await import('./stack/cli.js')
      return await runStackCli(rest, { get env () { return ctx.env }, out: ctx.out, err: ctx.err })
    }
  }
}
