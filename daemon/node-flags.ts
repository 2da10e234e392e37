// The V8 heap settings the daemon runs with: systemd/finnhubd.service's ExecStart
// (a test keeps the two equal) and tools/bench/daemon-process.ts (the bench and the fault
// suite). `finnhubd run` started by hand runs without them unless given, e.g.
// `node --max-old-space-size=256 --max-semi-space-size=4 dist/daemon/cli.js run`.
//
// Without them V8 sizes its heap for the machine: on 24 GiB it let the main thread's
// heap grow to ~150 MiB of mostly garbage (the live set was ~45 MiB) and each
// isolate's young generation to 3 × 16 MiB, and the daemon's resident memory reached
// 370-520 MiB draining a backlog. With these, the same drain peaked at 227-235 MiB;
// the smaller young generation costs CPU (the full bench's GC went from 10.5 to 23.1
// µs per trade; docs/performance.md, "Memory", has the trade-off measured). The
// old-space limit is per isolate: the main thread and each worker.
//
// The live set follows the in-flight bound (workers.batchSize × workers.maxQueue
// records, ~0.8 KiB each on the main thread: 320,000 in flight used 174 MiB of heap),
// so the process role warns at start when that bound would not fit (heapBoundWarning).

export const OLD_SPACE_MIB = 256
export const DAEMON_NODE_FLAGS: readonly string[] = [`--max-old-space-size=${OLD_SPACE_MIB}`, '--max-semi-space-size=4']

/** Heap held per record in flight on the main thread (measured: 174 MiB at 320,000 records, 44 MiB at 16,000). */
export const HEAP_BYTES_PER_RECORD = 1024

/**
 * A warning when the in-flight bound could fill more than three quarters of the
 * heap (`heapLimitBytes`: v8.getHeapStatistics().heap_size_limit), naming the
 * settings to change; null when it fits.
 */
export function heapBoundWarning (batchSize: number, maxQueue: number, heapLimitBytes: number): string | null {
  const records = batchSize * maxQueue
  const need = records * HEAP_BYTES_PER_RECORD
  if (need <= heapLimitBytes * 0.75) return null
  const mib = (b: number): number => Math.round(b / 1048576)
  return `workers.batchSize × workers.maxQueue = ${records} records in flight could need ~${mib(need)} MiB of heap, more than three quarters of the ${mib(heapLimitBytes)} MiB this process has: ` +
    'lower workers.maxQueue or workers.batchSize, or raise --max-old-space-size (systemd/finnhubd.service, ExecStart) — a full heap ends the process'
}
