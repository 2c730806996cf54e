import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react'
import { Link, useLocation, useNavigate } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { ProblemError, api, must, type Schemas } from '../api/client'
import { count, credits, planName, plural } from '../lib/format'
import { SubmissionKeys, settles } from '../lib/keys'
import { PICTURE, buildRequest, checkDraft, draftFrom, presetsFor, type Draft, type GenerationRequest, type InitPicture, type Settings } from '../lib/request'
import { addSessionJob, dismissSessionJob, saveDraft, savedDraft, useSessionJobs } from '../lib/session'
import { describeProblem } from '../lib/problems'
import { ErrorNote, useSecondsUntil } from './ErrorNote'
import { InitImage } from './InitImage'
import { JobCard } from './JobCard'

type Model = Schemas['Model']

// GenerateState is what other pages send along when they open Generate:
// an image's settings to make again, or a picture to start from.
export interface GenerateState {
  settings?: Settings
  init?: InitPicture
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value)
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms)
    return () => clearTimeout(t)
  }, [value, ms])
  return v
}

export function useModels() {
  return useQuery({ queryKey: ['models'], queryFn: async () => must(await api.GET('/v1/models')), staleTime: 60_000 })
}

export function Generate() {
  const models = useModels()
  const [draft, setDraft] = useState<Draft>(savedDraft)
  const update = (d: Partial<Draft>) =>
    setDraft((prev) => {
      const next = { ...prev, ...d }
      saveDraft(next)
      return next
    })
  useIncoming(models.data?.models, update)

  if (models.isPending) return <p role="status" className="center">Loading models…</p>
  if (models.error) return <ErrorNote error={models.error} what="Loading the models" />
  if (!models.data.models.length) return <p className="empty">Your plan offers no models yet.</p>
  return <GenerateForm list={models.data} draft={draft} update={update} />
}

// useIncoming applies what another page sent (GenerateState) once the
// models are known, then clears it so a reload or Back does not apply it
// again.
function useIncoming(models: Model[] | undefined, update: (d: Partial<Draft>) => void) {
  const location = useLocation()
  const navigate = useNavigate()
  const state = location.state as GenerateState | null
  useEffect(() => {
    if (!state || !models) return
    if (state.settings) update(draftFrom(state.settings, models))
    if (state.init) update({ init: state.init, preset: PICTURE })
    navigate(location.pathname, { replace: true, state: null })
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state, models])
}

function GenerateForm({ list, draft, update }: { list: Schemas['ModelList']; draft: Draft; update: (d: Partial<Draft>) => void }) {
  const queries = useQueryClient()
  const jobs = useSessionJobs()
  const model = list.models.find((m) => m.family === draft.family) ?? list.models.find((m) => m.available) ?? list.models[0]
  const presets = presetsFor(model, draft)
  const issues = checkDraft(draft, model)
  const issue = (f: keyof Draft) => issues.find((i) => i.field === f)?.message
  const [uploading, setUploading] = useState(false)

  const body = useMemo(() => buildRequest(draft, model), [draft, model])
  const quoted = useDebounced(body, 300)
  const quote = useQuery({
    queryKey: ['quote', quoted],
    enabled: !!quoted,
    placeholderData: (prev) => prev,
    retry: false,
    queryFn: async () => must(await api.POST('/v1/quote', { body: quoted! })),
  })

  // One Idempotency-Key per submission (see SubmissionKeys).
  const keys = useRef(new SubmissionKeys())
  const [retryAt, setRetryAt] = useState<number>()
  const wait = useSecondsUntil(retryAt)
  const submit = useMutation({
    mutationFn: async ({ b, key }: { b: GenerationRequest; key: string }) =>
      must(await api.POST('/v1/generations', { body: b, params: { header: { 'Idempotency-Key': key } } })),
    onMutate: () => setRetryAt(undefined),
    onSuccess: (g, { key }) => {
      keys.current.answered(key)
      addSessionJob(g)
      // The job holds credits now: the price's "balance after" changes.
      void queries.invalidateQueries({ queryKey: ['quote'] })
      void queries.invalidateQueries({ queryKey: ['generations'] })
    },
    onError: (e, { key }) => {
      if (e instanceof ProblemError && settles(e.status)) keys.current.answered(key)
      const after = describeProblem(e).retryAfter
      if (after) setRetryAt(Date.now() + after * 1000)
    },
  })
  // A refusal is about the request it answered: editing the form clears it.
  const { reset } = submit
  useEffect(() => reset(), [body, reset])
  const blocked = !body || !!quote.error || quote.data?.submittable === false || uploading || wait > 0
  // The button is marked unavailable rather than disabled: a disabled
  // button loses focus (to <body>) the moment Enter or a click starts a
  // job, and a keyboard user would start over from the top of the page.
  // Activating it meanwhile does nothing.
  const unavailable = blocked || submit.isPending

  return (
    <div className="generate">
      <form
        className="panel"
        noValidate
        onSubmit={(e) => {
          e.preventDefault()
          if (body && !unavailable) submit.mutate({ b: body, key: keys.current.keyFor(body) })
        }}
      >
        <h1>Generate</h1>
        <p className="muted small plan-line">
          {planName(list.plan)} plan · up to {model.limits.max_side} px · {plural(model.limits.max_batch_size, 'image')} per job ·{' '}
          <Link to="/account">Plans and credits</Link>
        </p>

        <label htmlFor="prompt">Prompt</label>
        <textarea
          id="prompt"
          value={draft.prompt}
          rows={3}
          maxLength={2000}
          required
          placeholder="A lighthouse on a cliff at dusk, oil painting"
          aria-describedby="prompt-length"
          onChange={(e) => update({ prompt: e.target.value })}
        />
        {/* The field stops at 2,000 characters (a longer paste is cut): say so before it matters. */}
        <p id="prompt-length" className="hint" aria-live="polite">
          {draft.prompt.length >= 1800 ? `${draft.prompt.length.toLocaleString('en-US')} of 2,000 characters` : ''}
        </p>
        <label htmlFor="negative">
          Negative prompt <span className="muted">(optional)</span>
        </label>
        <textarea
          id="negative"
          value={draft.negative}
          rows={2}
          maxLength={2000}
          placeholder="What to keep out: blurry, text, watermark"
          onChange={(e) => update({ negative: e.target.value })}
        />

        <div className="row two">
          <div>
            <label htmlFor="model">Model</label>
            <select id="model" value={model.family} aria-describedby="model-hint" onChange={(e) => update({ family: e.target.value })}>
              {list.models.map((m) => (
                <option key={m.family} value={m.family} disabled={!m.available}>
                  {m.family}
                  {m.available ? '' : ' (not on your plan now)'}
                </option>
              ))}
            </select>
            <p id="model-hint" className="hint">{modelHint(model)}</p>
          </div>
          <div>
            <label htmlFor="size">Size</label>
            <select
              id="size"
              value={presets.some((p) => p.id === draft.preset) ? draft.preset : (presets[0]?.id ?? '')}
              aria-invalid={!!issue('preset')}
              aria-describedby="size-hint"
              disabled={presets.length === 0}
              onChange={(e) => update({ preset: e.target.value })}
            >
              {presets.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.label} · {s.width}×{s.height}
                </option>
              ))}
            </select>
            <p id="size-hint" className={issue('preset') ? 'hint error' : 'hint'}>
              {issue('preset') ?? `Up to ${model.limits.max_square_side}×${model.limits.max_square_side} on your plan’s GPUs`}
            </p>
          </div>
        </div>

        <div className="row four">
          <NumberField id="steps" label="Steps" value={draft.steps} placeholder={String(model.defaults.steps)}
            hint={`Up to ${model.limits.max_steps}`}
            issue={issue('steps')} onChange={(v) => update({ steps: v })} />
          <NumberField id="cfg" label="Guidance" value={draft.cfg} placeholder={String(model.defaults.cfg_scale)}
            decimal hint="How closely to follow the prompt"
            issue={issue('cfg')} onChange={(v) => update({ cfg: v })} />
          <NumberField id="seed" label="Seed" value={draft.seed} placeholder="Random"
            hint="Blank: random"
            issue={issue('seed')} onChange={(v) => update({ seed: v })} />
          <NumberField id="batch" label="Images" value={draft.batch} placeholder="1"
            disabled={model.limits.max_batch_size <= 1}
            hint={model.limits.max_batch_size <= 1 ? <>One per job on your plan: <Link to="/account">more</Link></> : `Up to ${model.limits.max_batch_size} on your plan`}
            issue={issue('batch')} onChange={(v) => update({ batch: v })} />
        </div>

        <InitImage
          value={draft.init}
          strength={draft.strength}
          onChange={(init) => update(init ? { init, preset: PICTURE } : { init: undefined })}
          onStrength={(strength) => update({ strength })}
          onBusy={setUploading}
        />

        <Price quote={quote.data} pending={quote.isFetching || body !== quoted} error={quote.error}
          waitingFor={!draft.prompt.trim() ? 'Type a prompt to see the price.' : !body ? 'Fix the settings above to see the price.' : undefined} />
        <button type="submit" className="primary" aria-disabled={unavailable}>
          {submit.isPending ? 'Starting…' : wait > 0 ? `Generate (in ${wait} s)` : 'Generate'}
        </button>
        {/* The button counts down to the retry: the note does not count too. */}
        {submit.error && <ErrorNote error={submit.error} what="Starting the generation" countdown={false} />}
      </form>

      <section className="jobs-col" aria-label="Your jobs">
        {jobs.length === 0 ? (
          <div className="panel empty">
            <p>Your images appear here as they render.</p>
            <p className="small">
              Earlier ones are in the <Link to="/gallery">gallery</Link>; every job is on the <Link to="/jobs">jobs page</Link>.
            </p>
          </div>
        ) : (
          jobs.map((j) => <JobCard key={j.id} job={j} onDismiss={() => dismissSessionJob(j.id)} />)
        )}
      </section>
    </div>
  )
}


function modelHint(m: Model): string {
  if (!m.available) return m.unavailable_reason ?? 'Not available on your plan right now.'
  const price = `${credits(m.default_price)} an image at ${m.defaults.width}×${m.defaults.height}, ${m.defaults.steps} steps`
  if (m.served === null) return `${price}. No GPU is up right now: a job waits for one to start.`
  return m.models.length ? `${price}; renders with ${m.models.join(', ')}` : price
}

function NumberField(props: {
  id: string
  label: string
  value: string
  placeholder: string
  // Guidance takes decimals; the others whole numbers.
  decimal?: boolean
  hint: ReactNode
  issue?: string
  disabled?: boolean
  onChange: (v: string) => void
}) {
  const hintId = `${props.id}-hint`
  return (
    <div>
      <label htmlFor={props.id}>{props.label}</label>
      {/* Text, not type="number": a number field hands over "" for text it
          cannot read ("1e"), so the form could not say what is wrong. */}
      <input
        id={props.id}
        type="text"
        inputMode={props.decimal ? 'decimal' : 'numeric'}
        autoComplete="off"
        spellCheck={false}
        placeholder={props.placeholder}
        value={props.value}
        disabled={props.disabled}
        aria-invalid={!!props.issue}
        aria-describedby={hintId}
        onChange={(e) => props.onChange(e.target.value)}
      />
      <p id={hintId} className={props.issue ? 'hint error' : 'hint'}>
        {props.issue ?? props.hint}
      </p>
    </div>
  )
}

// sentence starts the API's detail (written to follow "title: ") with a
// capital and ends it with a full stop, to stand on its own.
function sentence(detail: string): string {
  const s = detail.trim()
  if (!s) return s
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.')
}

function Price(props: { quote?: Schemas['Quote']; pending: boolean; error: Error | null; waitingFor?: string }) {
  const { quote, pending, error, waitingFor } = props
  if (waitingFor) return <p className="price muted">{waitingFor}</p>
  if (error && !pending) return <ErrorNote error={error} what="Pricing" />
  if (!quote) return <p className="price muted" role="status">Pricing…</p>
  const after = quote.available_credits - quote.price.total
  return (
    <div className="price" aria-live="polite" aria-busy={pending}>
      <p>
        <strong data-testid="price">{credits(quote.price.total)}</strong>
        {quote.price.images > 1 && <span className="muted"> ({credits(quote.price.per_image)} × {quote.price.images})</span>}
        {after >= 0 ? (
          <span className="muted"> · balance after: <span data-testid="balance-after">{count(after)}</span></span>
        ) : (
          <span className="muted"> · <span data-testid="credits-short">{credits(-after)}</span> short</span>
        )}
      </p>
      {quote.refusals.map((r) => (
        <div key={r.type} className="note error" role="alert">
          <p>{sentence(r.detail)}</p>
          {r.type === 'insufficient-credits' && (
            <p>
              <Link to="/account">Get credits</Link> or make the request smaller.
            </p>
          )}
          {r.type === 'storage-full' && (
            <p>
              <Link to="/gallery">Delete images</Link> or <Link to="/account">move to a plan with more storage</Link>.
            </p>
          )}
        </div>
      ))}
    </div>
  )
}
