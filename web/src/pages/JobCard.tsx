import { useEffect, useId, useRef, useState } from 'react'
import { Link } from 'react-router'
import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query'
import { ProblemError, api, must, type Schemas } from '../api/client'
import { followGeneration, isTerminal, type GenerationEvent } from '../events'
import { creditLine, plural } from '../lib/format'
import { ErrorNote } from './ErrorNote'

type Generation = Schemas['Generation']
type Preview = Schemas['Preview']

// invalidateAfterJob refreshes what a job's end changes: the images, the
// jobs list, and the balance (the price's "balance after", the account).
export function invalidateAfterJob(queries: QueryClient) {
  for (const key of ['images', 'generations', 'quote', 'me', 'credits']) {
    void queries.invalidateQueries({ queryKey: [key] })
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
  })

// useJobEvents follows a job's event stream until it ends, reconnecting
// (with backoff) when the stream drops before the last event. It returns
// the latest event, the latest preview, and an error that stopped it.
function useJobEvents(id: string) {
  const queries = useQueryClient()
  const [ev, setEv] = useState<GenerationEvent>()
  const [last, setLast] = useState<GenerationEvent>() // the last event before the end
  const [preview, setPreview] = useState<Preview>()
  const [error, setError] = useState<Error>()
  useEffect(() => {
    const stop = new AbortController()
    const run = async () => {
      for (let failures = 0; !stop.signal.aborted; ) {
        try {
          const last = await followGeneration(id, (e) => {
            failures = 0
            setError(undefined)
            if (e.preview) setPreview(e.preview)
            if (!isTerminal(e.state)) setLast(e)
            setEv(e)
            if (e.generation) invalidateAfterJob(queries)
          }, stop.signal)
          if (isTerminal(last?.state)) return
        } catch (e) {
          if (stop.signal.aborted) return
          // A 4xx other than a rate limit will not change by retrying.
          if ((e instanceof ProblemError && e.status < 500 && e.status !== 429) || ++failures > 6) {
            setError(e as Error)
            return
          }
        }
        await sleep(Math.min(500 * 2 ** failures, 8000), stop.signal)
      }
    }
    void run()
    return () => stop.abort()
  }, [id, queries])
  return { ev, last, preview, error }
}

// JobCard shows one job started from the Generate page: what it renders,
// its progress and live preview from the event stream, a Cancel button
// while it runs, what it cost, and its images in place when it is done.
export function JobCard({ job, onDismiss }: { job: Generation; onDismiss: () => void }) {
  const { ev, last, preview, error } = useJobEvents(job.id)
  const titleId = useId()
  // A job just started shows itself, also below the form on a phone.
  const card = useRef<HTMLElement>(null)
  useEffect(() => {
    if (Date.parse(job.created_at) > Date.now() - 10_000) card.current?.scrollIntoView?.({ behavior: 'smooth', block: 'nearest' })
  }, [job.created_at])
  const done = ev?.generation
  const state = done?.status ?? ev?.state ?? job.status
  const cancel = useMutation({
    mutationFn: async () => must(await api.DELETE('/v1/generations/{id}', { params: { path: { id: job.id } } })),
  })
  const running = !isTerminal(state)
  // A canceled or failed job's bar stays where it stopped.
  const pct = Math.round((done?.status === 'completed' ? 1 : done ? (last?.progress ?? 0) : (ev?.progress ?? 0)) * 100)
  const p = job.params
  const images = ev?.images ?? p.batch_size

  return (
    <article ref={card} className="job-card" aria-labelledby={titleId} aria-busy={running}>
      <header>
        <h2 id={titleId} className="job-prompt">{p.prompt}</h2>
        <p className="muted small">
          {p.model} · {p.width}×{p.height} · {plural(p.steps, 'step')}
          {p.batch_size > 1 && <> · {plural(p.batch_size, 'image')}</>}
          {p.init_image && <> · from a picture, strength {p.strength}</>}
        </p>
      </header>
      <div className="progress">
        <progress max={100} value={pct} aria-label={`Progress: ${p.prompt}`} />
        <span data-testid="progress" className="pct">{pct} %</span>
        <span className={`badge ${state}`}>{state}</span>
        {running && ev?.total_steps ? (
          <span className="muted small">
            step {ev.step}/{ev.total_steps}
            {images > 1 && <> · image {Math.min(ev.image + 1, images)}/{images}</>}
          </span>
        ) : null}
      </div>
      <p className="muted small" data-testid="job-credits">{creditLine(done ?? job, !running)}</p>
      {/* Screen readers hear the job's state change, not every percent. */}
      <p className="visually-hidden" aria-live="polite">
        {p.prompt}: {state}
      </p>
      {error && <ErrorNote error={error} what="Following the job" />}
      {cancel.error && <ErrorNote error={cancel.error} what="Canceling" />}
      {done?.status === 'completed' && done.images.length > 0 ? (
        <ul className={`results n${Math.min(done.images.length, 4)}`} aria-label="Images of this job">
          {done.images.map((im, i) => (
            <li key={im.name}>
              <Link to={`/gallery?image=${encodeURIComponent(im.name)}`} title="Open in the gallery">
                <img
                  src={im.url}
                  width={im.width}
                  height={im.height}
                  alt={`Result: ${p.prompt}${done.images.length > 1 ? ` (${i + 1} of ${done.images.length})` : ''}`}
                  className="full"
                />
              </Link>
            </li>
          ))}
        </ul>
      ) : done?.status === 'completed' ? (
        // Completed, and its images deleted since.
        <p className="muted" role="status">
          {done.images_produced > 0
            ? `Its ${done.images_produced === 1 ? 'image was' : 'images were'} deleted.`
            : 'No image was made.'}
        </p>
      ) : done ? (
        <p className={state === 'canceled' ? 'muted' : 'error'} role={state === 'canceled' ? 'status' : 'alert'}>
          {state === 'canceled'
            ? `Canceled${last?.total_steps ? ` at step ${last.step} of ${last.total_steps}` : ' before it started'}.`
            : `The job ${done.status}${done.error ? `: ${done.error}` : '.'}`}
        </p>
      ) : preview ? (
        <img src={preview.data_url} width={preview.width} height={preview.height} alt="Live preview" className="full preview" />
      ) : (
        <p className="muted waiting">{state === 'canceling' ? 'Stopping the GPU…' : 'Waiting for a GPU…'}</p>
      )}
      <div className="actions">
        {running ? (
          <button
            type="button"
            onClick={() => cancel.mutate()}
            disabled={cancel.isPending || state === 'canceling'}
            aria-describedby={titleId}
          >
            {cancel.isPending || state === 'canceling' ? 'Canceling…' : 'Cancel'}
          </button>
        ) : (
          <button type="button" className="quiet" onClick={onDismiss} aria-describedby={titleId}>
            Dismiss
          </button>
        )}
      </div>
    </article>
  )
}
