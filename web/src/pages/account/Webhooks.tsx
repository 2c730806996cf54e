import { useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, must, type Schemas } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { mustOK, when } from '../../me'
import { Confirm, CopyButton, Loading, Section } from './ui'

type Endpoint = Schemas['WebhookEndpoint']
type EventType = Schemas['WebhookEventType']

const EVENTS: EventType[] = ['generation.completed', 'generation.failed', 'generation.canceled', 'credits.low', 'subscription.renewed', 'subscription.payment_failed']

// Webhooks registers endpoints (the signing secret is shown once), lists
// each one's deliveries with their attempts, replays a delivery, rotates an
// endpoint's secret (the new one shown once) and deletes an endpoint.
export function Webhooks() {
  const list = useQuery({ queryKey: ['webhook-endpoints'], queryFn: async () => must(await api.GET('/v1/webhook-endpoints')) })
  const [secret, setSecret] = useState<{ endpoint: Schemas['CreatedWebhookEndpoint']; rotated: boolean }>()
  const [deleting, setDeleting] = useState<Endpoint>()
  const [rotating, setRotating] = useState<Endpoint>()
  const [stopOld, setStopOld] = useState(false)
  const queries = useQueryClient()
  const refresh = () => void queries.invalidateQueries({ queryKey: ['webhook-endpoints'] })
  const remove = useMutation({
    mutationFn: async (id: string) => mustOK(await api.DELETE('/v1/webhook-endpoints/{id}', { params: { path: { id } } })),
    onSuccess: () => {
      setDeleting(undefined)
      refresh()
    },
  })
  const rotate = useMutation({
    mutationFn: async ({ id, now }: { id: string; now: boolean }) => must(await api.POST('/v1/webhook-endpoints/{id}/rotate-secret', {
      params: { path: { id } }, body: now ? { previous_secret_expires_in: 0 } : undefined,
    })),
    onSuccess: (endpoint) => {
      setRotating(undefined)
      setSecret({ endpoint, rotated: true })
      refresh()
    },
  })
  const closeRotate = () => { setRotating(undefined); setStopOld(false); rotate.reset() }
  return (
    <Section id="webhooks" title="Webhooks">
      <p className="muted small">Easel POSTs signed events (Standard Webhooks) to your endpoints: a job's end, low credits, renewals and failed payments.</p>
      {secret ? (
        <div className="secret" role="region" aria-label={secret.rotated ? 'Rotated signing secret' : "New endpoint's signing secret"}>
          <p><strong>Copy the {secret.rotated ? 'new ' : ''}signing secret now: it is shown this once.</strong> Verify each delivery's <code>webhook-signature</code> with it.</p>
          {secret.rotated && <p data-testid="previous-secret-note">{secret.endpoint.previous_secret_expires_at
            ? <>The old secret also signs until {when(secret.endpoint.previous_secret_expires_at)}: give your receiver the new one before then.</>
            : <>The old secret no longer signs.</>}</p>}
          <div className="secret-row"><code data-testid="webhook-secret">{secret.endpoint.secret}</code><CopyButton text={secret.endpoint.secret} label="Copy secret" /></div>
          <button type="button" className="secondary" onClick={() => setSecret(undefined)}>Done</button>
        </div>
      ) : (
        <CreateEndpoint onCreated={(endpoint) => setSecret({ endpoint, rotated: false })} full={!!list.data && list.data.webhook_endpoints.length >= list.data.limit} />
      )}
      {list.isPending ? <Loading what="your endpoints" /> : list.error ? <ErrorNote error={list.error} what="Loading your endpoints" /> :
        list.data.webhook_endpoints.length === 0 ? <p className="empty">No endpoints yet.</p> : (
          <ul className="endpoints" aria-label="Webhook endpoints">
            {list.data.webhook_endpoints.map((e) => (
              <li key={e.id} className="endpoint">
                <div className="endpoint-head">
                  <div>
                    <code className="url">{e.url}</code>
                    {e.description && <span className="muted"> · {e.description}</span>}
                    <p className="muted small">{e.all_events ? 'Every event' : e.events.join(', ')}</p>
                    {e.previous_secret_expires_at && <p className="muted small">The previous secret also signs until {when(e.previous_secret_expires_at)}.</p>}
                  </div>
                  <div className="endpoint-actions">
                    <button type="button" className="link" onClick={() => setRotating(e)} aria-label={`Rotate the secret of ${e.url}`}>Rotate secret</button>
                    <button type="button" className="link danger-text" onClick={() => setDeleting(e)} aria-label={`Delete endpoint ${e.url}`}>Delete</button>
                  </div>
                </div>
                <Deliveries endpoint={e} />
              </li>
            ))}
          </ul>
        )}
      {rotating && (
        <Confirm title="Rotate this endpoint's secret?" confirm="Rotate secret" busy={rotate.isPending}
          onConfirm={() => rotate.mutate({ id: rotating.id, now: stopOld })} onClose={closeRotate}>
          <p>A new secret signs what is sent to <code>{rotating.url}</code> from now on. The current one keeps signing beside it for a day, so your receiver can switch without refusing a webhook.</p>
          <label className="check"><input type="checkbox" checked={stopOld} onChange={(e) => setStopOld(e.target.checked)} /> <span>Stop the current secret at once (it leaked)</span></label>
          {rotate.error && <ErrorNote error={rotate.error} what="Rotating the secret" />}
        </Confirm>
      )}
      {deleting && (
        <Confirm title="Delete this endpoint?" confirm="Delete endpoint" danger busy={remove.isPending}
          onConfirm={() => remove.mutate(deleting.id)} onClose={() => { setDeleting(undefined); remove.reset() }}>
          <p>Nothing more is sent to <code>{deleting.url}</code>.</p>
          {remove.error && <ErrorNote error={remove.error} what="Deleting" />}
        </Confirm>
      )}
    </Section>
  )
}

function CreateEndpoint({ onCreated, full }: { onCreated: (e: Schemas['CreatedWebhookEndpoint']) => void; full: boolean }) {
  const [url, setUrl] = useState('')
  const [description, setDescription] = useState('')
  const [all, setAll] = useState(true)
  const [events, setEvents] = useState<EventType[]>(['generation.completed'])
  const queries = useQueryClient()
  const create = useMutation({
    mutationFn: async () => must(await api.POST('/v1/webhook-endpoints', {
      body: { url: url.trim(), description: description.trim() || undefined, events: all ? undefined : events },
    })),
    onSuccess: (e) => {
      setUrl('')
      setDescription('')
      onCreated(e)
      void queries.invalidateQueries({ queryKey: ['webhook-endpoints'] })
    },
  })
  return (
    <form className="create-form" onSubmit={(e) => { e.preventDefault(); if (!create.isPending) create.mutate() }}>
      <div className="row-2">
        <div>
          <label htmlFor="hook-url">Endpoint URL</label>
          <input id="hook-url" type="url" inputMode="url" required maxLength={2048} value={url} placeholder="https://example.com/easel-webhooks" onChange={(e) => { setUrl(e.target.value); create.reset() }} />
        </div>
        <div>
          <label htmlFor="hook-desc">Description (optional)</label>
          <input id="hook-desc" value={description} maxLength={200} onChange={(e) => setDescription(e.target.value)} />
        </div>
      </div>
      <fieldset>
        <legend>Events</legend>
        <label className="check"><input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> <span>Every event, including types added later</span></label>
        {!all && EVENTS.map((ev) => (
          <label key={ev} className="check">
            <input type="checkbox" checked={events.includes(ev)} onChange={(e) => setEvents(e.target.checked ? [...events, ev] : events.filter((x) => x !== ev))} />
            <code>{ev}</code>
          </label>
        ))}
      </fieldset>
      <button type="submit" className="primary" disabled={full || !url.trim() || (!all && events.length === 0) || create.isPending}>
        {create.isPending ? 'Adding…' : 'Add endpoint'}
      </button>
      {full && <p className="muted small">You have as many endpoints as allowed: delete one to add another.</p>}
      {create.error && <ErrorNote error={create.error} what="Adding the endpoint" labels={{ url: 'Endpoint URL', description: 'Description', events: 'Events' }} />}
    </form>
  )
}

// Deliveries lists an endpoint's deliveries on demand, newest first, each
// with its attempts, and replays one.
function Deliveries({ endpoint }: { endpoint: Endpoint }) {
  const [open, setOpen] = useState(false)
  const q = useQuery({
    queryKey: ['webhook-deliveries', endpoint.id],
    enabled: open,
    refetchInterval: (query) => (query.state.data?.deliveries.some((d) => d.status === 'pending') ? 2000 : false),
    queryFn: async () => must(await api.GET('/v1/webhook-endpoints/{id}/deliveries', { params: { path: { id: endpoint.id }, query: { limit: 20 } } })),
  })
  const queries = useQueryClient()
  const replay = useMutation({
    mutationFn: async (id: string) => must(await api.POST('/v1/webhook-deliveries/{id}/replay', { params: { path: { id } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ['webhook-deliveries', endpoint.id] }),
  })
  return (
    <div className="deliveries">
      <button type="button" className="link" aria-expanded={open} onClick={() => setOpen(!open)}>
        {open ? 'Hide deliveries' : 'Show deliveries'}
      </button>
      {open && (q.isPending ? <Loading what="deliveries" /> : q.error ? <ErrorNote error={q.error} what="Loading deliveries" /> :
        q.data.deliveries.length === 0 ? <p className="muted small">No deliveries yet: they appear when an event happens (for example a job ends).</p> : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Deliveries to {endpoint.url}</caption>
              <thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Created</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
              <tbody>
                {q.data.deliveries.map((d) => (
                  <tr key={d.id}>
                    <td><code>{d.event_type}</code>{d.replay_of && <span className="muted small"> (replay)</span>}</td>
                    <td><span className={`tag ${d.status}`}>{d.status}</span></td>
                    <td>{d.attempts.length === 0 ? '—' : d.attempts.map((a) => a.status_code ?? (a.error ? 'error' : '—')).join(', ')}</td>
                    <td>{when(d.created_at)}</td>
                    <td>{d.status !== 'pending' && (
                      <button type="button" className="link" onClick={() => replay.mutate(d.id)} disabled={replay.isPending}
                        aria-label={`Replay ${d.event_type} of ${when(d.created_at)}`}>Replay</button>
                    )}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
      {replay.error && <ErrorNote error={replay.error} what="Replaying" />}
    </div>
  )
}
