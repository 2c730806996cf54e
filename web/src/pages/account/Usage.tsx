import { useLayoutEffect, useRef, useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { api, must, ProblemError, type Schemas } from '../../api/client'
import { bearer } from '../../auth'
import { ErrorNote } from '../ErrorNote'
import { count, niceMax } from '../../lib/format'
import { credits } from '../../me'
import { Loading, Section } from './ui'

type UsageRecord = Schemas['UsageRecord']

// monthUsage reads every usage record of this month (the API's default
// window), following the pages.
async function monthUsage() {
  const first = must(await api.GET('/v1/usage', { params: { query: { limit: 100 } } }))
  const records = [...first.records]
  let before = first.next_before
  for (let page = 0; before && page < 20; page++) {
    const next = must(await api.GET('/v1/usage', { params: { query: { limit: 100, before } } }))
    records.push(...next.records)
    before = next.next_before
  }
  return { ...first, records }
}

export interface DayUsage {
  day: number
  credits: number
  images: number
}

// perDay adds the records up per calendar day (UTC, as the API's month)
// from the window's start to its end.
export function perDay(records: UsageRecord[], from: string, to: string): DayUsage[] {
  const start = new Date(from)
  const days = Math.max(1, Math.round((new Date(to).getTime() - start.getTime()) / 86_400_000))
  const out: DayUsage[] = Array.from({ length: days }, (_, i) => ({ day: i + 1, credits: 0, images: 0 }))
  for (const r of records) {
    const i = Math.floor((new Date(r.created_at).getTime() - start.getTime()) / 86_400_000)
    if (i < 0 || i >= days) continue
    out[i].credits += r.credits
    out[i].images += r.batch_size
  }
  return out
}

// Usage is this month's usage: totals, a chart of credits and images per
// day, and the CSV export.
export function Usage() {
  const q = useQuery({ queryKey: ['usage'], queryFn: monthUsage, staleTime: 0 })
  return (
    <Section id="usage" title="Usage this month" actions={<ExportCSV />}>
      {q.isPending ? <Loading what="your usage" /> : q.error ? <ErrorNote error={q.error} what="Loading your usage" /> : (
        <>
          <dl className="stats">
            <div><dt>Credits spent</dt><dd data-testid="usage-credits">{credits(q.data.summary.credits)}</dd></div>
            <div><dt>Jobs</dt><dd>{count(q.data.summary.generations)}</dd></div>
            <div><dt>Images kept</dt><dd>{count(q.data.summary.images)}</dd></div>
            <div><dt>GPU time</dt><dd>{q.data.summary.compute_seconds.toFixed(1)} s</dd></div>
          </dl>
          {q.data.records.length === 0 ? (
            <p className="empty">Nothing generated this month yet.</p>
          ) : (
            <Chart days={perDay(q.data.records, q.data.from, q.data.to)} month={new Date(q.data.from)} />
          )}
        </>
      )}
    </Section>
  )
}

const H = 220
const PAD = { l: 44, r: 44, t: 12, b: 28 }

// useWidth follows an element's width in CSS pixels.
function useWidth<T extends Element>() {
  const ref = useRef<T>(null)
  const [width, setWidth] = useState<number>()
  useLayoutEffect(() => {
    const el = ref.current
    if (!el) return
    setWidth(el.getBoundingClientRect().width)
    const watch = new ResizeObserver(([e]) => setWidth(e.contentRect.width))
    watch.observe(el)
    return () => watch.disconnect()
  }, [])
  return [ref, width] as const
}

// Chart draws credits per day as bars (left axis) and images per day as a
// line with points (right axis), by hand in SVG. The same numbers are in
// a table for screen readers and for anyone who prefers one. It is drawn
// at the width it is shown at, one unit a pixel: scaled down from a fixed
// width, its labels would shrink to a few pixels on a phone.
function Chart({ days, month }: { days: DayUsage[]; month: Date }) {
  const [box, measured] = useWidth<HTMLDivElement>()
  const W = Math.max(280, Math.round(measured ?? 720))
  // At least 2, so that the middle tick is a whole number.
  const maxC = niceMax(Math.max(2, ...days.map((d) => d.credits)))
  const maxI = niceMax(Math.max(2, ...days.map((d) => d.images)))
  const iw = W - PAD.l - PAD.r
  const ih = H - PAD.t - PAD.b
  const bw = iw / days.length
  const x = (i: number) => PAD.l + i * bw
  const yC = (v: number) => PAD.t + ih - (v / maxC) * ih
  const yI = (v: number) => PAD.t + ih - (v / maxI) * ih
  const monthName = month.toLocaleString('en-GB', { month: 'long', timeZone: 'UTC' })
  const total = days.reduce((a, d) => a + d.credits, 0)
  const line = days.map((d, i) => `${i ? 'L' : 'M'}${(x(i) + bw / 2).toFixed(1)},${yI(d.images).toFixed(1)}`).join(' ')
  return (
    <figure className="chart">
      <div ref={box}>
        <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Credits and images per day in ${monthName}: ${credits(total)} in all`} data-testid="usage-chart">
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={PAD.l} x2={W - PAD.r} y1={PAD.t + ih * (1 - f)} y2={PAD.t + ih * (1 - f)} className="grid-line" />
              <text x={PAD.l - 6} y={PAD.t + ih * (1 - f) + 4} textAnchor="end" className="axis">{count(Math.round(maxC * f))}</text>
              <text x={W - PAD.r + 6} y={PAD.t + ih * (1 - f) + 4} className="axis">{count(Math.round(maxI * f))}</text>
            </g>
          ))}
          {days.map((d, i) => (
            <g key={d.day}>
              {d.credits > 0 && (
                <rect x={x(i) + bw * 0.15} width={bw * 0.7} y={yC(d.credits)} height={PAD.t + ih - yC(d.credits)} className="col">
                  <title>{`${monthName} ${d.day}: ${credits(d.credits)}, ${d.images} images`}</title>
                </rect>
              )}
              {(d.day === 1 || d.day % 5 === 0) && <text x={x(i) + bw / 2} y={H - 8} textAnchor="middle" className="axis">{d.day}</text>}
            </g>
          ))}
          <path d={line} className="series-line" fill="none" />
          {days.map((d, i) => d.images > 0 && <circle key={d.day} cx={x(i) + bw / 2} cy={yI(d.images)} r={3} className="series-dot" />)}
        </svg>
      </div>
      <figcaption className="legend">
        <span><i className="key bar-key" aria-hidden="true" /> Credits (left axis)</span>
        <span><i className="key dot-key" aria-hidden="true" /> Images rendered (right axis)</span>
      </figcaption>
      <details>
        <summary>Show as a table</summary>
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Usage per day in {monthName}</caption>
            <thead><tr><th scope="col">Day</th><th scope="col">Credits</th><th scope="col">Images</th></tr></thead>
            <tbody>{days.filter((d) => d.credits || d.images).map((d) => (
              <tr key={d.day}><td>{monthName} {d.day}</td><td className="num">{count(d.credits)}</td><td className="num">{count(d.images)}</td></tr>
            ))}</tbody>
          </table>
        </div>
      </details>
    </figure>
  )
}

// ExportCSV downloads this month's usage as CSV. The route needs the
// Authorization header, so a plain link cannot fetch it: the file is
// fetched, then saved from a Blob.
function ExportCSV() {
  const [state, setState] = useState<{ busy: boolean; error?: Error }>({ busy: false })
  const download = async () => {
    setState({ busy: true })
    try {
      const res = await fetch('/v1/usage.csv', { headers: { Authorization: `Bearer ${bearer() ?? ''}` } })
      if (!res.ok) throw new ProblemError(await res.json().catch(() => ({})), res.status)
      const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') ?? '')?.[1] ?? 'usage.csv'
      const url = URL.createObjectURL(await res.blob())
      const a = document.createElement('a')
      a.href = url
      a.download = name
      document.body.append(a)
      a.click()
      a.remove()
      setTimeout(() => URL.revokeObjectURL(url), 10_000)
      setState({ busy: false })
    } catch (e) {
      setState({ busy: false, error: e as Error })
    }
  }
  return (
    <div className="inline-actions">
      <button type="button" className="secondary" onClick={download} disabled={state.busy}>
        {state.busy ? 'Preparing…' : 'Export CSV'}
      </button>
      {state.error && <ErrorNote error={state.error} what="Exporting" />}
    </div>
  )
}
