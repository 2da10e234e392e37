// The finnhubd console's page: three views over the daemon's JSON API (GET /api).
// Pipeline follows /api/stream (one snapshot a second, pushed); Topic and Trades
// poll while they are open. Every value from the server is written as text, never
// as HTML. LightweightCharts is the bundled charting library (dist/console).
'use strict'

const $ = id => document.getElementById(id)
const fmt = n => typeof n === 'number' ? n.toLocaleString('en-US') : '–'
// Prices and volumes as sent, without binary floating-point noise (52.025999999999996 → 52.026).
const dec = x => typeof x === 'number' ? String(Number(x.toPrecision(12))) : '–'
const RATE_POINTS = 300

function cell (row, text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  row.appendChild(td)
  return td
}

function fillTable (id, rows, render) {
  const body = $(id).querySelector('tbody')
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement('tr')
    render(tr, r)
    return tr
  }))
}

/**
 * A table of counts with what is non-zero first (largest first) and the zeros folded
 * into one last row that names them, so a healthy daemon's dozens of zero reasons do
 * not push what matters down the page.
 */
function fillFolded (id, rows, columns) {
  const nonzero = rows.filter(r => r.n > 0).sort((a, b) => b.n - a.n)
  const zero = rows.filter(r => !(r.n > 0))
  const body = $(id).querySelector('tbody')
  const trs = nonzero.map(r => {
    const tr = document.createElement('tr')
    tr.className = 'nonzero'
    for (const c of r.cells) cell(tr, c)
    cell(tr, fmt(r.n), 'num')
    return tr
  })
  if (zero.length > 0) {
    const tr = document.createElement('tr')
    tr.className = 'folded'
    const td = document.createElement('td')
    td.colSpan = columns
    const details = document.createElement('details')
    const summary = document.createElement('summary')
    summary.textContent = nonzero.length === 0 ? `all ${zero.length} at zero` : `${zero.length} more at zero`
    const list = document.createElement('div')
    list.className = 'muted'
    list.textContent = zero.map(r => r.cells.join(' ')).join(', ')
    details.append(summary, list)
    // Keep it open across refreshes once the reader opened it.
    details.open = $(id).dataset.zerosOpen === '1'
    details.addEventListener('toggle', () => { $(id).dataset.zerosOpen = details.open ? '1' : '0' })
    td.appendChild(details)
    tr.appendChild(td)
    trs.push(tr)
  }
  body.replaceChildren(...trs)
}

async function getJson (path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`)
  return body
}

function duration (s) {
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  return `${(s / 3600).toFixed(1)} h`
}

// ---- views ----------------------------------------------------------------------

const views = ['pipeline', 'topic', 'trades']
let current = null

function show (view) {
  if (!views.includes(view)) view = 'pipeline'
  current = view
  for (const v of views) $(`view-${v}`).hidden = v !== view
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === view)
  if (view === 'topic') refreshTopic()
  if (view === 'trades') loadSymbols().then(refreshTrades)
  if (view === 'pipeline') rateChart.resize()
}

window.addEventListener('hashchange', () => show(location.hash.slice(1)))

// ---- pipeline -------------------------------------------------------------------

const chartOptions = {
  layout: { background: { color: '#171d24' }, textColor: '#8793a1' },
  grid: { vertLines: { color: '#27303a' }, horzLines: { color: '#27303a' } },
  timeScale: { timeVisible: true, secondsVisible: true },
  autoSize: true
}

const rateChart = (() => {
  const chart = LightweightCharts.createChart($('rate-chart'), chartOptions)
  const inSeries = chart.addSeries(LightweightCharts.LineSeries, { color: '#58a6ff', lineWidth: 2, title: 'in' })
  const outSeries = chart.addSeries(LightweightCharts.LineSeries, { color: '#3fb950', lineWidth: 2, title: 'stored' })
  const points = { in: [], out: [] }
  let seen = 0
  return {
    add (snap) {
      // The first snapshot a page gets has no rates yet (nothing to compare it with).
      if (seen++ === 0) return
      const time = Math.floor(snap.at / 1000)
      for (const [key, series, value] of [['in', inSeries, snap.rates.received], ['out', outSeries, snap.rates.written]]) {
        const list = points[key]
        if (list.length > 0 && list[list.length - 1].time >= time) continue
        list.push({ time, value })
        if (list.length > RATE_POINTS) list.shift()
        series.update({ time, value })
      }
    },
    resize () { chart.timeScale().fitContent() }
  }
})()

function renderPipeline (snap) {
  for (const k of ['received', 'delivered', 'consumed', 'written']) {
    $(`rate-${k}`).textContent = fmt(snap.rates[k])
    $(`total-${k}`).textContent = fmt(snap.totals[k])
  }
  $('lag').textContent = fmt(snap.lag)
  $('producer-queue').textContent = fmt(snap.producerQueue)
  $('in-flight').textContent = fmt(snap.inFlightRecords)
  $('subscribed').textContent = fmt(snap.subscribedSymbols)
  $('uptime').textContent = duration(snap.uptimeSeconds)
  fillTable('latency', Object.entries(snap.latency), (tr, [stage, q]) => {
    cell(tr, stage)
    cell(tr, q === null ? '–' : q.p50.toFixed(2), 'num')
    cell(tr, q === null ? '–' : q.p99.toFixed(2), 'num')
  })
  const errors = Object.entries(snap.errors).flatMap(([kind, reasons]) => Object.entries(reasons).map(([reason, n]) => ({ kind, reason, n })))
  fillFolded('errors', errors.map(e => ({ cells: [e.kind, e.reason], n: e.n })), 3)
  fillFolded('reconnects', Object.entries(snap.reconnects).map(([cause, n]) => ({ cells: [cause], n })), 2)
  const conns = $('connections')
  conns.replaceChildren(...Object.entries(snap.connections).filter(([name]) => name !== 'daemon').map(([name, c]) => {
    const span = document.createElement('span')
    span.className = `conn${c.ok ? ' ok' : ''}`
    span.dataset.name = name
    span.title = c.detail
    span.textContent = name.replace('_', ' ')
    return span
  }))
  // Each Kafka broker and Cassandra host as the daemon's clients see them (/readyz's nodes).
  const nodes = Object.entries(snap.connections).flatMap(([name, c]) => (c.nodes ?? []).map(n => ({ name, ...n })))
  fillTable('nodes', nodes, (tr, n) => {
    cell(tr, n.name.replace('_', ' '))
    cell(tr, n.node)
    cell(tr, n.datacenter === undefined ? '–' : `${n.datacenter} / ${n.rack ?? ''}`)
    cell(tr, n.state, n.up ? 'node-up' : 'node-down')
  })
  rateChart.add(snap)
}

function follow () {
  const source = new EventSource('/api/stream')
  source.addEventListener('open', () => { $('stream-state').textContent = 'live' })
  source.addEventListener('error', () => { $('stream-state').textContent = 'reconnecting…' })
  source.addEventListener('pipeline', ev => renderPipeline(JSON.parse(ev.data)))
}

// ---- topic ----------------------------------------------------------------------

let topicTimer = null

async function refreshTopic () {
  clearTimeout(topicTimer)
  if (current !== 'topic') return
  const kind = $('topic-kind').value
  const limit = $('topic-limit').value
  try {
    const body = await getJson(`/api/topic?topic=${encodeURIComponent(kind)}&limit=${encodeURIComponent(limit)}`)
    $('topic-error').hidden = true
    $('topic-name').textContent = `${body.topic}: ${body.records.length} records`
    fillTable('topic-records', body.records, (tr, r) => {
      cell(tr, String(r.partition), 'num')
      cell(tr, String(r.offset), 'num')
      cell(tr, r.timestamp === null ? '–' : new Date(r.timestamp).toISOString())
      cell(tr, r.key ?? '–')
      cell(tr, r.trade ? dec(r.trade.p) : '–', 'num')
      cell(tr, r.trade ? dec(r.trade.v) : '–', 'num')
      cell(tr, r.trade ? JSON.stringify(r.trade.c) : '–')
      const why = r.headers['finnhubd-reason'] ? `${r.headers['finnhubd-reason']}: ${r.headers['finnhubd-detail'] ?? ''}` : (r.undecodable ? `${r.undecodable.reason}: ${r.undecodable.detail}` : '')
      cell(tr, why)
    })
  } catch (err) {
    $('topic-error').hidden = false
    $('topic-error').textContent = String(err.message)
  }
  if ($('topic-auto').checked) topicTimer = setTimeout(refreshTopic, 3000)
}

for (const id of ['topic-kind', 'topic-limit', 'topic-auto']) $(id).addEventListener('change', refreshTopic)
$('topic-refresh').addEventListener('click', refreshTopic)

// ---- trades and candles ---------------------------------------------------------

const candleChart = (() => {
  const chart = LightweightCharts.createChart($('candle-chart'), { ...chartOptions, timeScale: { timeVisible: true, secondsVisible: false } })
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, { upColor: '#3fb950', downColor: '#f85149', borderVisible: false, wickUpColor: '#3fb950', wickDownColor: '#f85149' })
  // Gaps: full-height columns on a hidden scale of their own, one per minute a gap touches.
  const shade = chart.addSeries(LightweightCharts.HistogramSeries, { priceScaleId: 'gaps', color: 'rgba(248, 81, 73, 0.18)', priceLineVisible: false, lastValueVisible: false })
  chart.priceScale('gaps').applyOptions({ scaleMargins: { top: 0, bottom: 0 }, visible: false })
  return {
    set (candles, gaps, from, to, stepMs) {
      series.setData(candles.map(c => ({ time: Math.floor(c.minute / 1000), open: c.open, high: c.high, low: c.low, close: c.close })))
      const periods = gapPeriods(gaps, from, to, stepMs)
      shade.setData(periods.map(m => ({ time: m / 1000, value: 1 })))
      // The shaded periods (ms): the chart keeps its series to itself, the browser test reads them here.
      $('candle-chart').dataset.shaded = periods.join(' ')
      chart.timeScale().fitContent()
    }
  }
})()

/** The candle periods (their starts, ms, ascending) within [from, to] that a gap touches; an open gap reaches to `to`. */
function gapPeriods (gaps, from, to, stepMs) {
  const periods = new Set()
  for (const g of gaps) {
    const end = Math.min(g.end ?? to, to)
    for (let m = Math.floor(Math.max(g.start, from) / stepMs) * stepMs; m <= end && periods.size < 5000; m += stepMs) periods.add(m)
  }
  return [...periods].sort((a, b) => a - b)
}

/** The candle intervals: their length, their chart title, and the longest range the API serves for each (2,880 candles). */
const INTERVALS = {
  '1m': { ms: 60000, title: 'One-minute candles' },
  '5m': { ms: 300000, title: 'Five-minute candles' },
  '15m': { ms: 900000, title: 'Fifteen-minute candles' },
  '1h': { ms: 3600000, title: 'One-hour candles' },
  '1d': { ms: 86400000, title: 'One-day candles (UTC)' }
}
const MAX_CANDLES = 2880
/** The trades list reads at most two days back. */
const MAX_TRADE_MINUTES = 2880

/** Offers only the ranges the interval can draw; a range too long for it falls back to the longest it can. */
function fitRange () {
  const interval = INTERVALS[$('interval').value] ?? INTERVALS['1m']
  const maxMinutes = MAX_CANDLES * interval.ms / 60000
  const select = $('minutes')
  let fallback = null
  for (const o of select.options) {
    o.disabled = Number(o.value) > maxMinutes
    if (!o.disabled) fallback = o
  }
  if (select.selectedOptions[0]?.disabled && fallback !== null) select.value = fallback.value
}

let tradesTimer = null
let symbolsLoaded = false

async function loadSymbols () {
  if (symbolsLoaded) return
  try {
    const { symbols } = await getJson('/api/symbols')
    const select = $('symbol')
    const wanted = new URLSearchParams(location.search).get('symbol')
    select.replaceChildren(...symbols.map(s => {
      const o = document.createElement('option')
      o.value = s
      o.textContent = s
      return o
    }))
    if (wanted && symbols.includes(wanted)) select.value = wanted
    symbolsLoaded = true
  } catch (err) {
    $('trades-error').hidden = false
    $('trades-error').textContent = String(err.message)
  }
}

async function refreshTrades () {
  clearTimeout(tradesTimer)
  if (current !== 'trades') return
  const symbol = $('symbol').value
  if (!symbol) return
  fitRange()
  const intervalName = INTERVALS[$('interval').value] ? $('interval').value : '1m'
  const interval = INTERVALS[intervalName]
  const minutes = Number($('minutes').value)
  const q = `symbol=${encodeURIComponent(symbol)}&minutes=${minutes}`
  const tq = `symbol=${encodeURIComponent(symbol)}&minutes=${Math.min(minutes, MAX_TRADE_MINUTES)}`
  try {
    const [candles, trades, gaps] = await Promise.all([getJson(`/api/candles?${q}&interval=${intervalName}`), getJson(`/api/trades?${tq}&limit=50`), getJson(`/api/gaps?${q}`)])
    $('trades-error').hidden = true
    $('candle-title').textContent = interval.title
    // A redundancy group member's gap that another member covered is no hole: listed, not shaded.
    candleChart.set(candles.candles, gaps.gaps.filter(g => g.covered !== true), Date.parse(gaps.from), Date.parse(gaps.to), interval.ms)
    $('candle-chart').dataset.interval = intervalName
    $('candle-count').textContent = `${candles.candles.length} candles, ${trades.trades.length} latest trades, ${gaps.gaps.length} gaps`
    $('candle-chart').dataset.candles = String(candles.candles.length)
    $('candle-chart').dataset.gaps = String(gaps.gaps.length)
    fillTable('gaps', gaps.gaps, (tr, g) => {
      cell(tr, new Date(g.start).toISOString())
      cell(tr, g.end === null ? 'open' : new Date(g.end).toISOString())
      cell(tr, g.covered === true ? `${g.reason} (${g.source}, covered by the group)` : g.reason)
      cell(tr, g.dropped === null ? 'unknown' : String(g.dropped), 'num')
      cell(tr, g.symbols.length > 6 ? `${g.symbols.slice(0, 6).join(', ')} +${g.symbols.length - 6}` : g.symbols.join(', '))
    })
    fillTable('trades', trades.trades, (tr, t) => {
      cell(tr, new Date(t.trade_ts).toISOString())
      cell(tr, dec(t.price), 'num')
      cell(tr, dec(t.volume), 'num')
      cell(tr, JSON.stringify(t.conditions))
      cell(tr, `${t.process_ts - t.trade_ts} ms`, 'num')
      cell(tr, t.trade_id)
    })
  } catch (err) {
    $('trades-error').hidden = false
    $('trades-error').textContent = String(err.message)
  }
  tradesTimer = setTimeout(refreshTrades, 5000)
}

for (const id of ['symbol', 'interval', 'minutes']) $(id).addEventListener('change', refreshTrades)
{
  const wanted = new URLSearchParams(location.search).get('interval')
  if (wanted && INTERVALS[wanted]) $('interval').value = wanted
}
$('trades-refresh').addEventListener('click', refreshTrades)

follow()
show(location.hash.slice(1))
