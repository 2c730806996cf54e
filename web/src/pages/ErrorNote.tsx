import { useEffect, useMemo, useState } from 'react'
import { Link } from 'react-router'
import { describeProblem } from '../lib/problems'

// ErrorNote shows what failed in words a person can act on: the API's
// problem detail, the invalid fields, a link to what fixes it (credits,
// plans), and for 429 and 503 a countdown to when a retry makes sense.
// labels names the API's fields as the form does ("url" is "Endpoint
// URL"); a field without one is shown by its API name. countdown={false}
// leaves the countdown to the page, where its button already counts.
export function ErrorNote({ error, what, labels, countdown = true }: {
  error: Error
  what?: string
  labels?: Record<string, string>
  countdown?: boolean
}) {
  const v = describeProblem(error)
  // The countdown runs from when this error arrived.
  const until = useMemo(() => (v.retryAfter === undefined ? undefined : Date.now() + v.retryAfter * 1000), [error])
  return (
    <div className="note error" role="alert">
      <p>
        {what && <span className="what">{what}: </span>}
        <strong>{v.title}</strong>
        {v.detail && <> {v.detail}</>}
      </p>
      {v.fields && v.fields.length > 0 && (
        <ul className="fields">
          {v.fields.map((f) => (
            <li key={f.field + f.message}>
              {labels?.[f.field] ? <strong>{labels[f.field]}</strong> : <code>{f.field}</code>}: {f.message}
            </li>
          ))}
        </ul>
      )}
      {countdown && until !== undefined && <RetryIn until={until} />}
      {v.action && (
        <p>
          <Link to={v.action.to}>{v.action.label}</Link>
        </p>
      )}
    </div>
  )
}

// RetryIn counts down to when a retry makes sense.
function RetryIn({ until }: { until: number }) {
  const left = useSecondsUntil(until)
  return <p className="muted">{left > 0 ? `You can try again in ${left} s.` : 'You can try again now.'}</p>
}

// useSecondsUntil counts the whole seconds left until a time, down to 0.
export function useSecondsUntil(until: number | undefined): number {
  const left = () => (until === undefined ? 0 : Math.max(0, Math.ceil((until - Date.now()) / 1000)))
  const [s, setS] = useState(left)
  useEffect(() => {
    setS(left())
    if (until === undefined || until <= Date.now()) return
    const t = setInterval(() => {
      const n = left()
      setS(n)
      if (n === 0) clearInterval(t)
    }, 250)
    return () => clearInterval(t)
  }, [until])
  return s
}
