// Polling until a condition holds or a deadline passes: the shutdown drain and the
// READY announcement wait on state other code changes, not on an event of their own.

/** Resolves true once check() holds, false when the deadline (ms since epoch) passes first. */
export async function waitUntil (check: () => boolean, deadline: number, everyMs = 20): Promise<boolean> {
  while (!check()) {
    if (Date.now() >= deadline) return false
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  return true
}
