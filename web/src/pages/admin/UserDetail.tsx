import { useState } from 'react'
import { Link, useParams } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, must, type Schemas } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { credits, day, useAppConfig, when, workflowURL } from '../../me'
import { bytes, count } from '../../lib/format'
import { grantLabels } from '../../lib/grants'
import { Confirm, Loading, Section } from '../account/ui'

type Detail = Schemas['AdminUserDetail']

// UserDetail is one user's account as an administrator sees it: plan and
// subscription (renew now, its workflow in Temporal UI), balance and
// grants, usage, latest jobs (each with its workflow), suspension, and a
// form to grant test credits.
export function UserDetail() {
  const { id = '' } = useParams()
  const q = useQuery({
    queryKey: ['admin-user', id],
    queryFn: async () => must(await api.GET('/v1/admin/users/{id}', { params: { path: { id } } })),
  })
  const plans = useQuery({ queryKey: ['plans'], queryFn: async () => must(await api.GET('/v1/plans')), staleTime: 300_000 })
  const labels = grantLabels(q.data?.credits.grants ?? [], plans.data?.plans)
  if (q.isPending) return <Loading what="the user" />
  if (q.error) return <><p><Link to="/admin">← Users</Link></p><ErrorNote error={q.error} what="Loading the user" /></>
  const d = q.data
  return (
    <>
      <p><Link to="/admin">← Users</Link></p>
      <h1>{d.user.email}</h1>
      <Account d={d} />
      <div className="admin-grid">
        <SubscriptionPanel d={d} />
        <Section id="balance" title="Balance">
          <dl className="stats">
            <div><dt>Available</dt><dd data-testid="user-available">{credits(d.credits.available)}</dd></div>
            <div><dt>Held</dt><dd>{credits(d.credits.held)}</dd></div>
            <div><dt>Used this month</dt><dd>{credits(d.usage.credits)}</dd></div>
            <div><dt>Images this month</dt><dd>{count(d.usage.images)}</dd></div>
          </dl>
          <p className="muted small" data-testid="user-storage">Storage: {bytes(d.storage.used_bytes)} of {bytes(d.storage.quota_bytes)}.</p>
        </Section>
      </div>
      <GrantCredits d={d} />
      <Section id="grants" title="Grants">
        {d.credits.grants.length === 0 ? <p className="empty">No grants.</p> : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Grants</caption>
              <thead><tr><th scope="col">Source</th><th scope="col">Credits</th><th scope="col">Used</th><th scope="col">Valid</th></tr></thead>
              <tbody>{d.credits.grants.map((g) => (
                <tr key={g.id}><td>{labels.get(g.id)}</td><td className="num">{count(g.total)}</td><td className="num">{count(g.used)}</td><td>{day(g.valid_from)} – {day(g.valid_until)}</td></tr>
              ))}</tbody>
            </table>
          </div>
        )}
        {d.admin_grants.length > 0 && (
          <>
            <h3>Granted by administrators</h3>
            <ul className="audit">{d.admin_grants.map((g) => (
              <li key={g.id}><strong>{credits(g.credits)}</strong> on {when(g.created_at)}, until {day(g.valid_until)}: “{g.reason}”</li>
            ))}</ul>
          </>
        )}
      </Section>
      <Jobs d={d} />
    </>
  )
}

// Account shows who the user is, and suspends or reactivates them.
function Account({ d }: { d: Detail }) {
  const queries = useQueryClient()
  const [asking, setAsking] = useState(false)
  const set = useMutation({
    mutationFn: async (active: boolean) => {
      const path = { params: { path: { id: d.user.id } } }
      return must(active ? await api.POST('/v1/admin/users/{id}/reactivate', path) : await api.POST('/v1/admin/users/{id}/suspend', path))
    },
    onSuccess: () => {
      setAsking(false)
      void queries.invalidateQueries({ queryKey: ['admin-user', d.user.id] })
      void queries.invalidateQueries({ queryKey: ['admin-users'] })
    },
  })
  return (
    <div className="user-head">
      <p>
        {d.user.name} · {d.user.role} · joined {day(d.user.created_at)} · last sign-in {when(d.user.last_login_at)} ·{' '}
        <span className={`tag ${d.user.is_active ? 'active' : 'suspended'}`} data-testid="user-status">{d.user.is_active ? 'active' : 'suspended'}</span>
      </p>
      {d.user.is_active ? (
        <button type="button" className="danger" onClick={() => setAsking(true)}>Suspend</button>
      ) : (
        <button type="button" className="primary" onClick={() => set.mutate(true)} disabled={set.isPending}>{set.isPending ? 'Reactivating…' : 'Reactivate'}</button>
      )}
      {set.error && !asking && <ErrorNote error={set.error} what="Changing the account" />}
      {asking && (
        <Confirm title={`Suspend ${d.user.email}?`} confirm="Suspend" danger busy={set.isPending}
          onConfirm={() => set.mutate(false)} onClose={() => { setAsking(false); set.reset() }}>
          <p>Every request of theirs is refused from the next one on (their API keys too), until an administrator reactivates them. Their data stays.</p>
          {set.error && <ErrorNote error={set.error} what="Suspending" />}
        </Confirm>
      )}
    </div>
  )
}

// SubscriptionPanel shows the plan and subscription, links to its billing
// workflow, and renews it now. One click renews once: the button waits
// for the answer, and the request names the period it renews, so a
// repeat is refused (409) rather than charged.
function SubscriptionPanel({ d }: { d: Detail }) {
  const cfg = useAppConfig()
  const queries = useQueryClient()
  const sub = d.subscription
  const renew = useMutation({
    mutationFn: async (s: NonNullable<Detail['subscription']>) => must(await api.POST('/v1/admin/subscriptions/{id}/renew', {
      params: { path: { id: s.id } }, body: { period_start: s.current_period_start },
    })),
    onSuccess: () => {
      // The workflow charges and grants in the background.
      setTimeout(() => void queries.invalidateQueries({ queryKey: ['admin-user', d.user.id] }), 1500)
    },
  })
  const link = sub && workflowURL(cfg.data, sub.workflow_id)
  return (
    <Section id="subscription" title="Plan">
      <p><strong>{d.plan.name}</strong> · {credits(d.plan.monthly_credits)} a month · GPU {d.plan.gpu_tier.toUpperCase()}</p>
      {!sub ? <p className="muted">No subscription.</p> : (
        <>
          <p>
            <span className={`tag ${sub.status}`}>{sub.status}</span> · period {day(sub.current_period_start)} – {day(sub.current_period_end)}
            {sub.cancel_at_period_end && ' · canceled at period end'}
            {sub.pending_plan && ` · moves to ${sub.pending_plan}`}
          </p>
          <p className="small">
            Workflow <code>{sub.workflow_id}</code>{link && <> · <a href={link} target="_blank" rel="noreferrer">Open in Temporal UI<span className="visually-hidden"> (new tab)</span></a></>}
          </p>
          <button type="button" className="secondary" onClick={() => renew.mutate(sub)} disabled={renew.isPending || renew.isSuccess}
            aria-describedby="renew-help">
            {renew.isPending ? 'Renewing…' : renew.isSuccess ? 'Renewal started' : 'Renew now'}
          </button>
          <p id="renew-help" className="muted small">Ends this period now: charges and grants the next one.</p>
          {renew.isSuccess && <p role="status">Renewal of the period from {day(renew.data.renewed_period_start)} accepted: the workflow charges and grants it.</p>}
          {renew.error && <ErrorNote error={renew.error} what="Renewing" />}
        </>
      )}
    </Section>
  )
}

// GrantCredits grants test credits. Each submission carries its own
// Idempotency-Key, so a retried request grants once.
function GrantCredits({ d }: { d: Detail }) {
  const queries = useQueryClient()
  const [amount, setAmount] = useState<number | ''>(100)
  const [days, setDays] = useState<number | ''>(30)
  const [reason, setReason] = useState('')
  const [key, setKey] = useState(() => crypto.randomUUID())
  const grant = useMutation({
    mutationFn: async () => must(await api.POST('/v1/admin/grants', {
      params: { header: { 'Idempotency-Key': key } },
      body: { user_id: d.user.id, credits: Number(amount), reason: reason.trim(), valid_until: new Date(Date.now() + Number(days || 30) * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z') },
    })),
    onSuccess: () => {
      setKey(crypto.randomUUID())
      setReason('')
      void queries.invalidateQueries({ queryKey: ['admin-user', d.user.id] })
      void queries.invalidateQueries({ queryKey: ['admin-users'] })
    },
  })
  return (
    <Section id="grant" title="Grant test credits">
      <form className="grant-form" onSubmit={(e) => { e.preventDefault(); if (!grant.isPending) grant.mutate() }}>
        <div>
          <label htmlFor="grant-credits">Credits</label>
          <input id="grant-credits" type="number" min={1} required value={amount} onChange={(e) => { setAmount(e.target.value === '' ? '' : Number(e.target.value)); grant.reset() }} />
        </div>
        <div>
          <label htmlFor="grant-days">Valid for (days)</label>
          <input id="grant-days" type="number" min={1} max={366} required value={days} onChange={(e) => { setDays(e.target.value === '' ? '' : Number(e.target.value)); grant.reset() }} />
        </div>
        <div className="grow">
          <label htmlFor="grant-reason">Reason</label>
          <input id="grant-reason" required maxLength={500} value={reason} placeholder="Load test, support goodwill…" onChange={(e) => { setReason(e.target.value); grant.reset() }} />
        </div>
        <button type="submit" className="primary" disabled={!amount || !reason.trim() || grant.isPending}>{grant.isPending ? 'Granting…' : 'Grant'}</button>
      </form>
      {grant.isSuccess && <p role="status">Granted {credits(grant.data.credits)} until {day(grant.data.valid_until)}.</p>}
      {grant.error && <ErrorNote error={grant.error} what="Granting" labels={{ credits: 'Credits', valid_until: 'Valid for (days)', reason: 'Reason' }} />}
    </Section>
  )
}

function Jobs({ d }: { d: Detail }) {
  const cfg = useAppConfig()
  return (
    <Section id="jobs" title="Latest jobs">
      {d.recent_generations.length === 0 ? <p className="empty">No jobs yet.</p> : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Latest jobs</caption>
            <thead><tr><th scope="col">Created</th><th scope="col">Status</th><th scope="col">Model</th><th scope="col">Credits</th><th scope="col">Workflow</th></tr></thead>
            <tbody>{d.recent_generations.map((g) => {
              const link = workflowURL(cfg.data, g.workflow_id)
              return (
                <tr key={g.id}>
                  <td>{when(g.created_at)}</td>
                  <td><span className={`tag ${g.status}`}>{g.status}</span>{g.error && <span className="muted small"> {g.error}</span>}</td>
                  <td>{g.model}</td>
                  <td className="num">{g.credits_settled != null ? count(g.credits_settled) : `${count(g.credits_held)} held`}</td>
                  <td>{link ? <a href={link} target="_blank" rel="noreferrer"><code>{g.workflow_id.slice(0, 19)}…</code><span className="visually-hidden"> in Temporal UI (new tab)</span></a> : <code>{g.workflow_id}</code>}</td>
                </tr>
              )
            })}</tbody>
          </table>
        </div>
      )}
    </Section>
  )
}
