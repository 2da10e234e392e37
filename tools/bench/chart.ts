// A small SVG line chart for the bench report (no dependency): panels stacked
// over one shared x axis, each with its own y axis (linear, or log for latency),
// one polyline per series, a legend per panel, and vertical markers (the phase
// boundaries) across every panel. Pure: a spec in, an SVG document out.
//
// Points whose y is not a finite number (null, NaN, ±∞; on a log axis also ≤ 0)
// are gaps: the line stops there and starts again at the next point. A run of
// one point between gaps is drawn as a dot, so every plottable point is drawn.

export interface Series {
  name: string
  /** [x, y]; y null or not finite is a gap. */
  points: ReadonlyArray<readonly [number, number | null]>
  color: string
  dashed?: boolean
}

export interface Panel {
  yLabel: string
  logY?: boolean
  series: readonly Series[]
  /** Height of the plot area in px (default 220). */
  height?: number
}

export interface Marker { x: number, label: string }

export interface ChartSpec {
  title: string
  xLabel: string
  panels: readonly Panel[]
  markers?: readonly Marker[]
  /** Width of the whole image in px (default 960). */
  width?: number
}

/** Colours that stay apart on white, for callers that need one per phase. */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'] as const

const MARGIN = { left: 70, right: 20, top: 36, bottom: 44 }
const LEGEND_ROW = 16
const PANEL_GAP = 28
const FONT = 'font-family="sans-serif" font-size="11"'

export function escapeXml (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const fmt = (x: number): string => String(Math.round(x * 10) / 10)

/** Splits points into runs of plottable ones (a gap ends a run). */
export function segments (points: Series['points'], logY: boolean): Array<Array<readonly [number, number]>> {
  const out: Array<Array<readonly [number, number]>> = []
  let run: Array<readonly [number, number]> = []
  for (const [x, y] of points) {
    if (Number.isFinite(x) && typeof y === 'number' && Number.isFinite(y) && (!logY || y > 0)) run.push([x, y])
    else if (run.length > 0) { out.push(run); run = [] }
  }
  if (run.length > 0) out.push(run)
  return out
}

/** "Nice" linear ticks from 0 (or below) to at least max. */
export function linearTicks (min: number, max: number, count = 5): number[] {
  const lo = Math.min(0, min)
  const hi = max > lo ? max : lo + 1
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) ?? 10 * mag)
  const ticks: number[] = []
  for (let v = Math.floor(lo / step) * step; v < hi + step - 1e-9 * step; v += step) ticks.push(Number((Math.round(v / step) * step).toPrecision(12)))
  return ticks
}

/** Decades (and 2 and 5 within them when there are few decades) covering [min, max], min > 0. */
export function logTicks (min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min))
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)))
  const ticks: number[] = []
  for (let e = lo; e <= hi; e++) {
    ticks.push(10 ** e)
    if (hi - lo <= 3 && e < hi) ticks.push(2 * 10 ** e, 5 * 10 ** e)
  }
  return ticks.map(t => Number(t.toPrecision(3)))
}

const tickText = (v: number): string => {
  if (v === 0) return '0'
  const a = Math.abs(v)
  if (a >= 1e6) return `${fmt(v / 1e6)}M`
  if (a >= 1e4) return `${fmt(v / 1e3)}k`
  if (a >= 1) return String(Math.round(v * 100) / 100)
  return String(Number(v.toPrecision(2)))
}

/** The SVG document for `spec`. */
export function renderChart (spec: ChartSpec): string {
  const width = spec.width ?? 960
  const plotW = width - MARGIN.left - MARGIN.right
  const markers = spec.markers ?? []
  const xs: number[] = []
  for (const p of spec.panels) for (const s of p.series) for (const seg of segments(s.points, p.logY === true)) for (const [x] of seg) xs.push(x)
  for (const m of markers) if (Number.isFinite(m.x)) xs.push(m.x)
  const xMin = xs.length === 0 ? 0 : Math.min(...xs)
  const xMaxRaw = xs.length === 0 ? 1 : Math.max(...xs)
  const xMax = xMaxRaw > xMin ? xMaxRaw : xMin + 1
  const sx = (x: number): number => MARGIN.left + (x - xMin) / (xMax - xMin) * plotW

  const body: string[] = []
  let y0 = MARGIN.top
  const panelBoxes: Array<{ top: number, bottom: number }> = []
  for (const panel of spec.panels) {
    const logY = panel.logY === true
    const h = panel.height ?? 220
    // The legend above the plot, wrapped to the width.
    const legend: string[] = []
    let lx = MARGIN.left
    let ly = y0
    for (const s of panel.series) {
      const w = 30 + 6.5 * s.name.length
      if (lx + w > width - MARGIN.right && lx > MARGIN.left) { lx = MARGIN.left; ly += LEGEND_ROW }
      legend.push(`<line x1="${fmt(lx)}" y1="${fmt(ly + 6)}" x2="${fmt(lx + 20)}" y2="${fmt(ly + 6)}" stroke="${escapeXml(s.color)}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="5,3"' : ''}/>` +
        `<text x="${fmt(lx + 24)}" y="${fmt(ly + 10)}" ${FONT}>${escapeXml(s.name)}</text>`)
      lx += w
    }
    const top = ly + LEGEND_ROW + 6
    const bottom = top + h
    panelBoxes.push({ top, bottom })
    body.push(`<g class="legend">${legend.join('')}</g>`)

    const values: number[] = []
    for (const s of panel.series) for (const seg of segments(s.points, logY)) for (const [, y] of seg) values.push(y)
    let ticks: number[]
    let sy: (y: number) => number
    if (logY) {
      const lo = values.length === 0 ? 1 : Math.min(...values)
      const hi = values.length === 0 ? 10 : Math.max(...values)
      ticks = logTicks(lo, hi)
      const a = Math.log10(ticks[0] as number)
      const b = Math.log10(ticks[ticks.length - 1] as number)
      sy = y => bottom - (Math.log10(y) - a) / (b - a) * h
    } else {
      const lo = values.length === 0 ? 0 : Math.min(...values)
      const hi = values.length === 0 ? 1 : Math.max(...values)
      ticks = linearTicks(lo, hi)
      const a = ticks[0] as number
      const b = ticks[ticks.length - 1] as number
      sy = y => bottom - (y - a) / (b - a) * h
    }
    body.push(`<rect x="${MARGIN.left}" y="${fmt(top)}" width="${fmt(plotW)}" height="${fmt(h)}" fill="none" stroke="#888"/>`)
    for (const t of ticks) {
      const y = sy(t)
      body.push(`<line x1="${MARGIN.left}" y1="${fmt(y)}" x2="${fmt(MARGIN.left + plotW)}" y2="${fmt(y)}" stroke="#e4e4e4"/>` +
        `<text x="${MARGIN.left - 6}" y="${fmt(y + 4)}" text-anchor="end" ${FONT}>${tickText(t)}</text>`)
    }
    const mid = (top + bottom) / 2
    body.push(`<text x="16" y="${fmt(mid)}" transform="rotate(-90 16 ${fmt(mid)})" text-anchor="middle" ${FONT}>${escapeXml(panel.yLabel + (logY ? ' (log)' : ''))}</text>`)
    if (values.length === 0) body.push(`<text x="${fmt(MARGIN.left + plotW / 2)}" y="${fmt(mid)}" text-anchor="middle" ${FONT} fill="#888">no data</text>`)
    for (const s of panel.series) {
      const stroke = `stroke="${escapeXml(s.color)}"`
      const parts = segments(s.points, logY).map(seg => seg.length === 1
        ? `<circle cx="${fmt(sx(seg[0]?.[0] as number))}" cy="${fmt(sy(seg[0]?.[1] as number))}" r="2" fill="${escapeXml(s.color)}"/>`
        : `<polyline fill="none" ${stroke} stroke-width="1.5"${s.dashed === true ? ' stroke-dasharray="5,3"' : ''} points="${seg.map(([x, y]) => `${fmt(sx(x))},${fmt(sy(y))}`).join(' ')}"/>`)
      body.push(`<g class="series"><title>${escapeXml(s.name)}</title>${parts.join('')}</g>`)
    }
    y0 = bottom + PANEL_GAP
  }

  const plotTop = panelBoxes[0]?.top ?? MARGIN.top
  const plotBottom = panelBoxes[panelBoxes.length - 1]?.bottom ?? MARGIN.top + 1
  for (const [i, m] of markers.entries()) {
    if (!Number.isFinite(m.x)) continue
    const x = sx(m.x)
    for (const b of panelBoxes) body.push(`<line x1="${fmt(x)}" y1="${fmt(b.top)}" x2="${fmt(x)}" y2="${fmt(b.bottom)}" stroke="#555" stroke-dasharray="2,3"/>`)
    // Staggered, so the labels of boundaries close together do not overlap.
    // Past two thirds of the width the label goes left of its line, so it is not cut off at the edge.
    const left = x > MARGIN.left + plotW * 2 / 3
    body.push(`<text x="${fmt(left ? x - 3 : x + 3)}" y="${fmt(plotTop + 12 + (i % 3) * 12)}"${left ? ' text-anchor="end"' : ''} ${FONT} fill="#333">${escapeXml(m.label)}</text>`)
  }
  for (const t of linearTicks(xMin, xMax, 10).filter(t => t >= xMin && t <= xMax)) {
    body.push(`<line x1="${fmt(sx(t))}" y1="${fmt(plotBottom)}" x2="${fmt(sx(t))}" y2="${fmt(plotBottom + 4)}" stroke="#888"/>` +
      `<text x="${fmt(sx(t))}" y="${fmt(plotBottom + 16)}" text-anchor="middle" ${FONT}>${tickText(t)}</text>`)
  }
  body.push(`<text x="${fmt(MARGIN.left + plotW / 2)}" y="${fmt(plotBottom + 34)}" text-anchor="middle" ${FONT}>${escapeXml(spec.xLabel)}</text>`)
  const height = plotBottom + MARGIN.bottom
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${fmt(height)}" viewBox="0 0 ${width} ${fmt(height)}">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="${MARGIN.left}" y="20" font-family="sans-serif" font-size="14" font-weight="bold">${escapeXml(spec.title)}</text>`,
    ...body,
    '</svg>',
    ''
  ].join('\n')
}
