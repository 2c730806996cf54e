import { useQuery } from '@tanstack/react-query'
import { api, must, type Schemas } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { credits, day } from '../../me'
import { grantLabels } from '../../lib/grants'
import { Loading, Section } from './ui'

type Grant = Schemas['Grant']

// grantState says whether a grant can be spent now.
function grantState(g: Grant, now: number): string {
  if (new Date(g.valid_from).getTime() > now) return 'upcoming'
  if (new Date(g.valid_until).getTime() <= now) return 'expired'
  if (g.used >= g.total) return 'used up'
  return 'active'
}

// Balance shows what can be spent, what jobs in flight hold, and each
// grant with its validity window.
export function Balance() {
  const q = useQuery({ queryKey: ['credits'], queryFn: async () => must(await api.GET('/v1/credits')), refetchInterval: 30_000, staleTime: 0 })
  // The plans name each month's grant (see grantLabels); the Plan section reads them too.
  const plans = useQuery({ queryKey: ['plans'], queryFn: async () => must(await api.GET('/v1/plans')), staleTime: 300_000 })
  const labels = grantLabels(q.data?.grants ?? [], plans.data?.plans)
  return (
    <Section id="balance" title="Balance">
      {q.isPending ? <Loading what="your balance" /> : q.error ? <ErrorNote error={q.error} what="Loading your balance" /> : (
        <>
          <dl className="stats">
            <div><dt>Available</dt><dd data-testid="available">{credits(q.data.available)}</dd></div>
            <div><dt>Held by running jobs</dt><dd data-testid="held">{credits(q.data.held)}</dd></div>
            <div><dt>Left in valid grants</dt><dd>{credits(q.data.granted)}</dd></div>
          </dl>
          {q.data.grants.length === 0 ? (
            <p className="empty">No credits granted yet: subscribe to a plan below.</p>
          ) : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Credit grants</caption>
                <thead><tr><th scope="col">From</th><th scope="col">Credits</th><th scope="col">Used</th><th scope="col">Valid</th><th scope="col">State</th></tr></thead>
                <tbody>
                  {q.data.grants.map((g) => (
                    <tr key={g.id}>
                      <td>{labels.get(g.id)}</td>
                      <td className="num">{g.total.toLocaleString('en-US')}</td>
                      <td className="num">{g.used.toLocaleString('en-US')}</td>
                      <td>{day(g.valid_from)} – {day(g.valid_until)}</td>
                      <td><span className={`tag ${grantState(g, Date.now()).replace(' ', '-')}`}>{grantState(g, Date.now())}</span></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <p className="muted small">
            Generate shows each request's price before you submit it, and a job is charged only for the images it
            makes.
          </p>
          <details className="muted small">
            <summary>How prices are computed</summary>
            <p>{q.data.pricing}</p>
          </details>
        </>
      )}
    </Section>
  )
}
