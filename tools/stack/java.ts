// Finds a Java 17 runtime: Kafka 4's broker needs 17+, Cassandra 5.0 runs on 11 or
// 17 only, so 17 serves both. JAVA_HOME wins when it is a 17; then the usual JDK
// folders; then `java` on PATH.

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { FinnhubdError } from '../../daemon/core/errors.js'

export interface JavaRuntime { bin: string, major: number }

/** The major version printed by `java -version`, or null when it does not run. */
export function javaMajor (bin: string): number | null {
  // `java -version` writes to stderr.
  const run = spawnSync(bin, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 })
  if (run.error !== undefined || run.status !== 0) return null
  return parseJavaVersion(`${run.stdout}${run.stderr}`)
}

export function parseJavaVersion (text: string): number | null {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text)
  if (match === null) return null
  const first = Number(match[1])
  return first === 1 ? Number(match[2]) : first
}

export function findJava (env: Readonly<Record<string, string | undefined>>, javaHome: string | null, jvmRoot = '/usr/lib/jvm'): JavaRuntime {
  const candidates: string[] = []
  if (javaHome !== null) candidates.push(join(javaHome, 'bin', 'java'))
  else {
    if (env['JAVA_HOME'] !== undefined && env['JAVA_HOME'] !== '') candidates.push(join(env['JAVA_HOME'], 'bin', 'java'))
    if (existsSync(jvmRoot)) {
      for (const name of readdirSync(jvmRoot).sort()) {
        if (/(^|[^0-9])17([^0-9]|$)/.test(name)) candidates.push(join(jvmRoot, name, 'bin', 'java'))
      }
    }
    candidates.push('java')
  }
  const seen: string[] = []
  for (const bin of candidates) {
    if (bin !== 'java' && !existsSync(bin)) continue
    const major = javaMajor(bin)
    seen.push(`${bin} → ${major === null ? 'does not run' : `Java ${major}`}`)
    if (major === 17) return { bin, major }
  }
  throw new FinnhubdError('FINNHUBD_ERR_STACK_JAVA',
    'the local stack needs Java 17 (Kafka 4 needs 17+, Cassandra 5.0 runs only on 11 or 17) and none was found' +
    (seen.length > 0 ? ` (tried: ${seen.join('; ')})` : ` (nothing found at ${candidates.join(', ')})`) +
    '. Install OpenJDK 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless), or set JAVA_HOME ' +
    '(or FINNHUBD_JAVA_HOME, which wins) to a Java 17 home.')
}
