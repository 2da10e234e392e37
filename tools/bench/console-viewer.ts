// `npm run bench -- --console`: an open console page, simulated from the bench's
// process, so the bench shows what watching costs the pipeline. It follows
// /api/stream as the Pipeline view does, and polls the Topic and Trades-and-candles
// endpoints every second (the page itself polls every 3 and 5 s: this is the heavier
// case). It counts what it got, so the report can show the console really was open.

export interface ViewerCounts { streamEvents: number, requests: number, failures: number }

export class ConsoleViewer {
  readonly #url: string
  readonly #symbol: string
  readonly #controller = new AbortController()
  readonly #counts: ViewerCounts = { streamEvents: 0, requests: 0, failures: 0 }
  #timer: NodeJS.Timeout | null = null
  #stream: Promise<void> | null = null

  constructor (url: string, symbol: string) {
    this.#url = url
    this.#symbol = symbol
  }

  start (): void {
    this.#stream = this.#follow().catch(() => { if (!this.#controller.signal.aborted) this.#counts.failures++ })
    const q = `symbol=${encodeURIComponent(this.#symbol)}`
    const paths = ['/api/topic?topic=trades&limit=50', `/api/trades?${q}&limit=50`, `/api/candles?${q}&minutes=120`]
    this.#timer = setInterval(() => {
      for (const path of paths) {
        this.#counts.requests++
        fetch(`${this.#url}${path}`, { signal: this.#controller.signal })
          .then(async res => { await res.arrayBuffer(); if (!res.ok) this.#counts.failures++ })
          .catch(() => { if (!this.#controller.signal.aborted) this.#counts.failures++ })
      }
    }, 1000)
  }

  async stop (): Promise<ViewerCounts> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#controller.abort()
    await this.#stream
    return { ...this.#counts }
  }

  async #follow (): Promise<void> {
    const res = await fetch(`${this.#url}/api/stream`, { signal: this.#controller.signal })
    const decoder = new TextDecoder()
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      this.#counts.streamEvents += decoder.decode(chunk, { stream: true }).split('event: pipeline\n').length - 1
    }
  }
}
