// A command's own options (`finnhubd query …`, `tail`, `simulate`): node:util's
// parseArgs, with its complaint about an unknown or malformed option turned into a
// usage error (exit 2) that points at --help, instead of a thrown TypeError.

import { parseArgs, type ParseArgsConfig } from 'node:util'
import { FinnhubdError } from './errors.js'

export function commandArgs<T extends ParseArgsConfig> (config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (err) {
    throw new FinnhubdError('FINNHUBD_ERR_USAGE', `${(err as Error).message}; see \`finnhubd --help\``)
  }
}
