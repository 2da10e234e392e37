// The byte bound on one Topic view read (http.console.topicReadMaxBytes): a producer
// chooses how large its records are (the dead-letter topic keeps whatever did not
// decode), and a view of 200 records per partition must not make the daemon
// send hundreds of megabytes to a page. The view keeps the newest records that fit in
// it, saying `truncated` when it left some out. The reader holds and decodes no more
// than the bound either (TopicReader.latestWithin); this is the same rule on what is
// shown (a decoded record's key and headers as text). Pure: no I/O.

import type { ShownRecord } from '../kafka/topic-reader.js'

/** A record's bytes as the view shows them: value, key and headers. */
export function recordBytes (r: ShownRecord): number {
  let n = r.size + Buffer.byteLength(r.key ?? '')
  for (const [k, v] of Object.entries(r.headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v)
  return n
}

/** The records (newest first) that fit in `maxBytes` together, from the newest on; `truncated` when any was left out. */
export function fit (records: readonly ShownRecord[], maxBytes: number): { records: ShownRecord[], truncated: boolean } {
  const kept: ShownRecord[] = []
  let used = 0
  for (const r of records) {
    const n = recordBytes(r)
    if (used + n > maxBytes) break
    used += n
    kept.push(r)
  }
  return { records: kept, truncated: kept.length < records.length }
}
