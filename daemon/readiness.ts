// What /readyz answers and the console shows: one check per dependency, ready when
// all are ok. Its own module: the daemon builds it, the HTTP endpoint and the console
// read it, and neither needs the other for that.

export interface Check { ok: boolean, detail: string }
export interface Readiness { ready: boolean, checks: Record<string, Check> }
