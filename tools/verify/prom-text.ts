// One reader of the Prometheus text exposition format (version 0.0.4), the format
// the daemon's /metrics serves (prom-client). The bench, the chaos suite and the
// tests read metrics through it instead of each matching lines with its own regex.
//
// Read: `# HELP` / `# TYPE` and other comments (skipped), metric names, labels with
// escaped values (\\ \" \n), values including NaN, +Inf, -Inf (and Inf), an optional
// integer timestamp, blank lines, CRLF line ends.
// A malformed line never throws: it is skipped and reported in `errors` (line number,
// text, why), so a caller that wants to be strict can check `errors.length === 0`.

export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
  /** Milliseconds since the epoch, when the line carries one. */
  timestamp?: number
}

export interface PromParseError {
  /** 1-based line number. */
  line: number
  text: string
  reason: string
}

export interface PromText {
  samples: PromSample[]
  errors: PromParseError[]
}

const NAME_START = /[a-zA-Z_:]/
const NAME_CHAR = /[a-zA-Z0-9_:]/
const LABEL_START = /[a-zA-Z_]/
const LABEL_CHAR = /[a-zA-Z0-9_]/
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const INT = /^-?\d+$/

/**
 * A sample value: a float, NaN, +Inf, -Inf (Inf too), case-insensitive as Prometheus
 * reads them (prom-client 15 writes NaN as `Nan`); undefined when it is not one.
 */
export function parsePromValue (text: string): number | undefined {
  switch (text.toLowerCase()) {
    case 'nan': return NaN
    case '+inf': case 'inf': return Infinity
    case '-inf': return -Infinity
  }
  return FLOAT.test(text) ? Number(text) : undefined
}

class LineError extends Error {}

/** Parses one sample line (not a comment, not blank); throws LineError when malformed. */
function parseSampleLine (line: string): PromSample {
  let i = 0
  const fail = (reason: string): never => { throw new LineError(`${reason} at column ${i + 1}`) }
  const skipSpaces = (): void => { while (line[i] === ' ' || line[i] === '\t') i++ }

  if (!NAME_START.test(line[i] ?? '')) fail('expected a metric name')
  const nameStart = i
  while (i < line.length && NAME_CHAR.test(line[i] as string)) i++
  const name = line.slice(nameStart, i)

  const labels: Record<string, string> = {}
  const afterName = i
  skipSpaces()
  if (line[i] !== '{') i = afterName
  if (line[i] === '{') {
    i++
    for (;;) {
      skipSpaces()
      if (line[i] === '}') { i++; break }
      if (!LABEL_START.test(line[i] ?? '')) fail('expected a label name or }')
      const labelStart = i
      while (i < line.length && LABEL_CHAR.test(line[i] as string)) i++
      const label = line.slice(labelStart, i)
      skipSpaces()
      if (line[i] !== '=') fail(`expected = after label ${label}`)
      i++
      skipSpaces()
      if (line[i] !== '"') fail(`expected " to open the value of label ${label}`)
      i++
      let value = ''
      for (;;) {
        const c = line[i]
        if (c === undefined) fail(`unterminated value of label ${label}`)
        i++
        if (c === '"') break
        if (c === '\\') {
          const e = line[i]
          i++
          if (e === '\\') value += '\\'
          else if (e === '"') value += '"'
          else if (e === 'n') value += '\n'
          else fail(`invalid escape \\${e ?? ''} in label ${label}`)
        } else {
          value += c
        }
      }
      if (Object.hasOwn(labels, label)) fail(`label ${label} repeated`)
      labels[label] = value
      skipSpaces()
      if (line[i] === ',') { i++; continue }
      if (line[i] === '}') { i++; break }
      fail('expected , or } after a label')
    }
  }

  const rest = line.slice(i).trim().split(/[ \t]+/)
  if (line[i] !== ' ' && line[i] !== '\t') fail('expected a space before the value')
  if (rest.length > 2 || rest[0] === '') fail('expected a value and at most a timestamp')
  const value = parsePromValue(rest[0] as string)
  if (value === undefined) fail(`invalid value ${JSON.stringify(rest[0])}`)
  const sample: PromSample = { name, labels, value: value as number }
  if (rest.length === 2) {
    if (!INT.test(rest[1] as string)) fail(`invalid timestamp ${JSON.stringify(rest[1])}`)
    sample.timestamp = Number(rest[1])
  }
  return sample
}

/** Every sample of a text exposition, and the lines that could not be read (skipped, never thrown). */
export function parsePromText (text: string): PromText {
  const samples: PromSample[] = []
  const errors: PromParseError[] = []
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).replace(/\r$/, '')
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    try {
      samples.push(parseSampleLine(trimmed))
    } catch (err) {
      if (!(err instanceof LineError)) throw err
      errors.push({ line: n + 1, text: line, reason: err.message })
    }
  }
  return { samples, errors }
}

/** The samples of `name` whose labels include every pair of `labels` (other labels allowed). */
export function samplesOf (text: string, name: string, labels: Record<string, string> = {}): PromSample[] {
  const want = Object.entries(labels)
  return parsePromText(text).samples.filter(s => s.name === name && want.every(([k, v]) => s.labels[k] === v))
}

/**
 * The sum of every series of exactly `name` (`x_bucket` is not `x`) whose labels include
 * `labels`; NaN when there is none (absent is not 0).
 */
export function metricSum (text: string, name: string, labels?: Record<string, string>): number {
  let sum = NaN
  for (const s of samplesOf(text, name, labels)) sum = Number.isNaN(sum) ? s.value : sum + s.value
  return sum
}

/**
 * Each value of `label` in the series of `name`, with the sum of their values (other labels
 * of a series are summed over; a series without `label` is left out). Values are unescaped.
 */
export function metricByLabel (text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samplesOf(text, name)) {
    const key = s.labels[label]
    if (key === undefined) continue
    out[key] = (out[key] ?? 0) + s.value
  }
  return out
}

/** The series of `name` that carry exactly one label (whatever its name), summed by its value. */
export function metricByOnlyLabel (text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samplesOf(text, name)) {
    const values = Object.values(s.labels)
    if (values.length !== 1) continue
    const key = values[0] as string
    out[key] = (out[key] ?? 0) + s.value
  }
  return out
}
