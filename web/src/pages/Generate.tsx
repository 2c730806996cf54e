import { useEffect, useMemo, useRef, useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, must, type Schemas } from '../api/client'
import { followGeneration, type GenerationEvent } from '../events'
import { ErrorNote } from './ErrorNote'

type Family = Schemas['ModelFamily']
type Request = Schemas['GenerationRequest']

const SIZES = [
  { label: 'Square', w: 1, h: 1 },
  { label: 'Portrait', w: 3, h: 4 },
  { label: 'Landscape', w: 4, h: 3 },
]

// sizeFor scales a preset to the model's native side, within the plan.
function sizeFor(preset: (typeof SIZES)[number], native: number, max: number) {
  const side = Math.min(native, max || native)
  const r = preset.w / preset.h
  const w = r >= 1 ? side : Math.floor((side * r) / 8) * 8
  const h = r >= 1 ? Math.floor(side / r / 8) * 8 : side
  return { width: w, height: h }
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value)
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms)
    return () => clearTimeout(t)
  }, [value, ms])
  return v
}

export function Generate() {
  const models = useQuery({ queryKey: ['models'], queryFn: async () => must(await api.GET('/v1/models')) })
  const [prompt, setPrompt] = useState('')
  const [family, setFamily] = useState<Family | ''>('')
  const [preset, setPreset] = useState(0)
  const [steps, setSteps] = useState<number | ''>('')
  const model = models.data?.models.find((m) => m.family === family) ?? models.data?.models.find((m) => m.available)

  const body: Request | undefined = useMemo(() => {
    if (!model || !prompt.trim()) return undefined
    const size = sizeFor(SIZES[preset], model.defaults.width, model.limits.max_square_side || model.limits.max_side)
    return { prompt: prompt.trim(), model: model.family, ...size, steps: steps || model.defaults.steps }
  }, [model, prompt, preset, steps])
  const quoted = useDebounced(body, 300)
  const quote = useQuery({
    queryKey: ['quote', quoted],
    enabled: !!quoted,
    placeholderData: (prev) => prev,
    queryFn: async () => must(await api.POST('/v1/quote', { body: quoted! })),
  })

  // One Idempotency-Key per submission: a retry of the same click (or a
  // double click) makes one job, and the next click a new one.
  const queryClient = useQueryClient()
  const [key, setKey] = useState(() => crypto.randomUUID())
  useEffect(() => setKey(crypto.randomUUID()), [body])
  const [job, setJob] = useState<string>()
  const submit = useMutation({
    mutationFn: async (b: Request) =>
      must(await api.POST('/v1/generations', { body: b, params: { header: { 'Idempotency-Key': key } } })),
    onSuccess: (g) => {
      setJob(g.id)
      setKey(crypto.randomUUID())
      // The job holds credits now: the price's "balance after" changes.
      void queryClient.invalidateQueries({ queryKey: ['quote'] })
    },
  })

  if (models.isPending) return <p role="status">Loading models…</p>
  if (models.error) return <ErrorNote error={models.error} what="Loading the models" />
  if (!models.data.models.length) return <p className="empty">Your plan offers no models yet.</p>

  return (
    <div className="generate">
      <form
        className="panel"
        onSubmit={(e) => {
          e.preventDefault()
          if (body && !submit.isPending) submit.mutate(body)
        }}
      >
        <h1>Generate</h1>
        <label htmlFor="prompt">Prompt</label>
        <textarea id="prompt" value={prompt} rows={4} maxLength={2000} required
          placeholder="A lighthouse on a cliff at dusk, oil painting"
          onChange={(e) => setPrompt(e.target.value)} />
        <div className="row">
          <div>
            <label htmlFor="model">Model</label>
            <select id="model" value={model?.family ?? ''} onChange={(e) => setFamily(e.target.value as Family)}>
              {models.data.models.map((m) => (
                <option key={m.family} value={m.family} disabled={!m.available}>
                  {m.family}{m.available ? '' : ` (${m.unavailable_reason ?? 'unavailable'})`}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="size">Size</label>
            <select id="size" value={preset} onChange={(e) => setPreset(Number(e.target.value))}>
              {SIZES.map((s, i) => {
                const d = model && sizeFor(s, model.defaults.width, model.limits.max_square_side || model.limits.max_side)
                return <option key={s.label} value={i}>{s.label}{d ? ` ${d.width}×${d.height}` : ''}</option>
              })}
            </select>
          </div>
          <div>
            <label htmlFor="steps">Steps</label>
            <input id="steps" type="number" min={1} max={model?.limits.max_steps} placeholder={String(model?.defaults.steps ?? '')}
              value={steps} onChange={(e) => setSteps(e.target.value === '' ? '' : Number(e.target.value))} />
          </div>
        </div>
        <Price quote={quote.data} pending={quote.isFetching} error={quote.error} />
        <button type="submit" className="primary" disabled={!body || submit.isPending || quote.data?.submittable === false}>
          {submit.isPending ? 'Starting…' : 'Generate'}
        </button>
        {submit.error && <ErrorNote error={submit.error} what="Starting the generation" />}
      </form>
      <section className="panel result" aria-label="Result">
        {job ? <Job id={job} key={job} /> : <p className="empty">Your image appears here.</p>}
      </section>
    </div>
  )
}

function Price({ quote, pending, error }: { quote?: Schemas['Quote']; pending: boolean; error: Error | null }) {
  if (error) return <ErrorNote error={error} what="Pricing" />
  if (!quote) return <p className="price muted">Type a prompt to see the price.</p>
  const after = quote.available_credits - quote.price.total
  return (
    <div className="price" aria-live="polite" aria-busy={pending}>
      <strong data-testid="price">{quote.price.total} {quote.price.total === 1 ? "credit" : "credits"}</strong>
      <span className="muted"> · balance after: {after}</span>
      {quote.refusals.map((r) => <p key={r.type} className="error">{r.detail}</p>)}
    </div>
  )
}

function Job({ id }: { id: string }) {
  const queries = useQueryClient()
  const [ev, setEv] = useState<GenerationEvent>()
  const [error, setError] = useState<Error>()
  const preview = useRef<string>(undefined)
  useEffect(() => {
    const stop = new AbortController()
    followGeneration(id, (e) => {
      if (e.preview) preview.current = e.preview.data_url
      setEv(e)
      if (e.generation) {
        // Settled or refunded: the gallery and the balance have changed.
        void queries.invalidateQueries({ queryKey: ['images'] })
        void queries.invalidateQueries({ queryKey: ['quote'] })
      }
    }, stop.signal).catch((e: Error) => {
      if (!stop.signal.aborted) setError(e)
    })
    return () => stop.abort()
  }, [id, queries])

  if (error) return <ErrorNote error={error} what="Following the generation" />
  const pct = Math.round((ev?.progress ?? 0) * 100)
  const done = ev?.generation
  return (
    <div className="job">
      <div className="progress">
        <progress max={100} value={pct} aria-label="Progress" />
        <span data-testid="progress">{pct} %</span>
        <span className="muted">{ev?.state ?? 'queued'}{ev?.total_steps ? ` · step ${ev.step}/${ev.total_steps}` : ''}</span>
      </div>
      {done?.status === 'completed' && done.images.length > 0 ? (
        done.images.map((im) => <img key={im.name} src={im.url} width={im.width} height={im.height} alt={`Result: ${done.params.prompt}`} className="full" />)
      ) : done ? (
        <p className="error" role="alert">The job {done.status}{done.error ? `: ${done.error}` : ''}.</p>
      ) : preview.current ? (
        <img src={preview.current} alt="Live preview" className="full preview" />
      ) : (
        <p className="muted">Waiting for a GPU…</p>
      )}
    </div>
  )
}

