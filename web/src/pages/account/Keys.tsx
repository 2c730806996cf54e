import { useState } from 'react'
import { Link } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, must, type Schemas } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { day, mustOK, useMe } from '../../me'
import { Confirm, CopyButton, Loading, Section } from './ui'

type Scope = Schemas['APIKeyScope']
type Created = Schemas['CreatedAPIKey']

const SCOPES: { scope: Scope; what: string }[] = [
  { scope: 'generate', what: 'start and cancel jobs, star and delete images' },
  { scope: 'read', what: 'read everything' },
  { scope: 'billing', what: 'subscribe, change or cancel the plan, revoke keys' },
]

// Keys lists the API keys, creates one (its secret is shown once, with a
// copy button) and revokes them. A plan without API access says so.
export function Keys() {
  const me = useMe()
  const allowed = me.data?.plan.api_access
  const keys = useQuery({ queryKey: ['api-keys'], enabled: allowed === true, queryFn: async () => must(await api.GET('/v1/api-keys')) })
  const [created, setCreated] = useState<Created>()
  const [revoking, setRevoking] = useState<Schemas['APIKey']>()
  const queries = useQueryClient()
  const revoke = useMutation({
    mutationFn: async (id: string) => mustOK(await api.DELETE('/v1/api-keys/{id}', { params: { path: { id } } })),
    onSuccess: () => {
      setRevoking(undefined)
      void queries.invalidateQueries({ queryKey: ['api-keys'] })
    },
  })

  let body
  if (me.isPending) body = <Loading what="your plan" />
  else if (me.error) body = <ErrorNote error={me.error} what="Loading your plan" />
  else if (!allowed) {
    body = (
      <p className="refused" data-testid="keys-refused">
        The {me.data.plan.name} plan has no API access. <Link to="#plan">Pro and Enterprise</Link> include it: scripts and CI
        then call the API with a key.
      </p>
    )
  } else {
    body = (
      <>
        {created ? <NewKey created={created} onDone={() => setCreated(undefined)} /> : <CreateKey onCreated={setCreated} />}
        {keys.isPending ? <Loading what="your keys" /> : keys.error ? <ErrorNote error={keys.error} what="Loading your keys" /> :
          keys.data.api_keys.length === 0 ? <p className="empty">No keys yet.</p> : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">API keys</caption>
                <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
                <tbody>
                  {keys.data.api_keys.map((k) => (
                    <tr key={k.id} className={k.active ? '' : 'inactive'}>
                      <td className="clip" title={k.name}>{k.name}</td>
                      <td><code>esk_{k.prefix}…</code></td>
                      <td>{k.scopes.join(', ')}</td>
                      <td>{day(k.created_at)}</td>
                      <td>{k.last_used_at ? day(k.last_used_at) : 'never'}</td>
                      <td>{k.active
                        ? <button type="button" className="link danger-text" onClick={() => setRevoking(k)} aria-label={`Revoke ${k.name}`}>Revoke</button>
                        : <span className="tag expired">{k.expires_at && new Date(k.expires_at) < new Date() ? 'expired' : 'revoked'}</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        {revoking && (
          <Confirm title={`Revoke “${revoking.name.length > 40 ? `${revoking.name.slice(0, 39)}…` : revoking.name}”?`} confirm="Revoke key" danger busy={revoke.isPending}
            onConfirm={() => revoke.mutate(revoking.id)} onClose={() => { setRevoking(undefined); revoke.reset() }}>
            <p>Every script using <code>esk_{revoking.prefix}…</code> is refused from now on. This cannot be undone.</p>
            {revoke.error && <ErrorNote error={revoke.error} what="Revoking" />}
          </Confirm>
        )}
      </>
    )
  }
  return <Section id="api-keys" title="API keys">{body}</Section>
}

function CreateKey({ onCreated }: { onCreated: (k: Created) => void }) {
  const [name, setName] = useState('')
  const [scopes, setScopes] = useState<Scope[]>(['generate', 'read'])
  const [expires, setExpires] = useState('')
  const queries = useQueryClient()
  const create = useMutation({
    mutationFn: async () => must(await api.POST('/v1/api-keys', {
      body: { name: name.trim(), scopes, expires_at: expires ? new Date(`${expires}T23:59:59Z`).toISOString() : null },
    })),
    onSuccess: (k) => {
      setName('')
      onCreated(k)
      void queries.invalidateQueries({ queryKey: ['api-keys'] })
    },
  })
  return (
    <form className="create-form" onSubmit={(e) => { e.preventDefault(); if (!create.isPending) create.mutate() }}>
      <div className="row-2">
        <div>
          <label htmlFor="key-name">Key name</label>
          <input id="key-name" value={name} required maxLength={100} placeholder="CI, render script…" onChange={(e) => setName(e.target.value)} />
        </div>
        <div>
          <label htmlFor="key-expires">Expires (optional)</label>
          <input id="key-expires" type="date" value={expires} onChange={(e) => setExpires(e.target.value)}
            min={new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)} />
        </div>
      </div>
      <fieldset>
        <legend>Scopes</legend>
        {SCOPES.map((s) => (
          <label key={s.scope} className="check">
            <input type="checkbox" checked={scopes.includes(s.scope)}
              onChange={(e) => setScopes(e.target.checked ? [...scopes, s.scope] : scopes.filter((x) => x !== s.scope))} />
            <span><strong>{s.scope}</strong>: {s.what}</span>
          </label>
        ))}
      </fieldset>
      <button type="submit" className="primary" disabled={!name.trim() || scopes.length === 0 || create.isPending}>
        {create.isPending ? 'Creating…' : 'Create key'}
      </button>
      {create.error && <ErrorNote error={create.error} what="Creating the key" />}
    </form>
  )
}

// NewKey shows the secret this once.
function NewKey({ created, onDone }: { created: Created; onDone: () => void }) {
  return (
    <div className="secret" role="region" aria-label="New API key">
      <p><strong>Copy your key now: it is shown this once.</strong> Use it as <code>Authorization: Bearer esk_…</code>.</p>
      <div className="secret-row">
        <code data-testid="new-key">{created.key}</code>
        <CopyButton text={created.key} label="Copy key" />
      </div>
      <button type="button" className="secondary" onClick={onDone}>Done</button>
    </div>
  )
}
