// Text from a topic (record keys, headers, undecodable details, a producer's symbol)
// shown on an operator's terminal by `finnhubd tail`: anyone who can produce to the
// topic chooses it, so it must not reach the terminal as control characters (an ESC
// sequence can retitle the window, rewrite the screen or, on some terminals, answer
// with input) nor as bidi overrides that make a line read otherwise than it is.
// Escaped as \uXXXX (C0, DEL, C1, U+202A–U+202E, U+2066–U+2069) with the backslash
// doubled, so the escaping is reversible (unescapeTerminal) and a record cannot
// print what looks like an escape it does not contain. Pure: no I/O.

/** The characters a terminal acts on or that reorder the line, and the escape character itself. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\\]/gu

const hex = (ch: string): string => `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`

/** `text` safe for a terminal: every unsafe character as \uXXXX, a backslash as \\; anything else unchanged. */
export function escapeTerminal (text: string): string {
  return text.replace(UNSAFE, ch => ch === '\\' ? '\\\\' : hex(ch))
}

/**
 * `value` as JSON, safe for a terminal: JSON already escapes C0 and the backslash,
 * and a \uXXXX escape of DEL, C1 or a bidi override is still the same JSON value.
 */
export function jsonForTerminal (value: unknown): string {
  return (JSON.stringify(value) ?? 'undefined').replace(UNSAFE, ch => ch === '\\' ? ch : hex(ch))
}

/** The inverse of escapeTerminal (for tests and for tools that read tail's output). */
export function unescapeTerminal (text: string): string {
  return text.replace(/\\(\\|u[0-9a-f]{4})/g, (_m, esc: string) => esc === '\\' ? '\\' : String.fromCharCode(parseInt(esc.slice(1), 16)))
}
