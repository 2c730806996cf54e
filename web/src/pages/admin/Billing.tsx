import { Link } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { api, must } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { count, planName } from '../../lib/format'
import { money, when } from '../../me'
import { Loading, Section } from '../account/ui'

// Billing is the billing team's overview: MRR, live subscriptions by
// plan, past-due subscriptions, 30-day revenue and refunds, and the latest
// failed payments.
export function Billing() {
  const q = useQuery({ queryKey: ['admin-billing'], queryFn: async () => must(await api.GET('/v1/admin/billing')), refetchInterval: 60_000 })
  return (
    <Section id="billing" title="Billing">
      {q.isPending ? <Loading what="the billing summary" /> : q.error ? <ErrorNote error={q.error} what="Loading the billing summary" /> : (
        <>
          <dl className="stats">
            <div><dt>MRR</dt><dd data-testid="mrr">{money(q.data.mrr_cents)}</dd></div>
            <div><dt>Revenue, 30 days</dt><dd>{money(q.data.revenue_30d_cents)}</dd></div>
            <div><dt>Refunded, 30 days</dt><dd>{money(q.data.refunded_30d_cents)}</dd></div>
            <div><dt>Past due</dt><dd className={q.data.past_due ? 'error-text' : ''}>{count(q.data.past_due)}</dd></div>
          </dl>
          <h3>Subscriptions by plan</h3>
          {Object.keys(q.data.active_by_plan).length === 0 ? <p className="muted">No live subscriptions.</p> : (
            <ul className="by-plan">
              {Object.entries(q.data.active_by_plan).sort().map(([plan, n]) => <li key={plan}><strong>{count(n)}</strong> {planName(plan)}</li>)}
            </ul>
          )}
          <h3>Failed payments</h3>
          {q.data.failed_payments.length === 0 ? <p className="muted">No failed payments.</p> : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Failed payments</caption>
                <thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">Amount</th><th scope="col">Code</th></tr></thead>
                <tbody>
                  {q.data.failed_payments.map((f) => (
                    <tr key={`${f.subscription_id}/${f.at}`}>
                      <td>{when(f.at)}</td>
                      <td><Link to={`users/${f.user_id}`}>{f.user_id.slice(0, 8)}…</Link></td>
                      <td className="num">{money(f.amount_cents)}</td>
                      <td><code>{f.code}</code></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </Section>
  )
}
