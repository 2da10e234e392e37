// Full-jitter exponential backoff, pure: a random delay in [0, min(max, initial·2^attempt)].
// Shared by the Finnhub reconnect loop and the Cassandra write retries.

export function backoffDelay (attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling * random())
}
