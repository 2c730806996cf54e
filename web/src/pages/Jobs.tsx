import { Link, useNavigate } from 'react-router'
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query'
import { api, must, type Schemas } from '../api/client'
import { isTerminal } from '../events'
import { plural, when } from '../lib/format'
import { useOnVisible } from '../lib/useOnVisible'
import { ErrorNote } from './ErrorNote'
import type { GenerateState } from './Generate'
import { invalidateAfterJob } from './JobCard'

type Generation = Schemas['Generation']

const PAGE = 25

// Jobs lists every generation, newest first: its status (with progress
// while it runs and the reason when it failed), the credits it held and
// what it was charged, its images; a running job can be canceled here.
// While any job on screen runs, the list refreshes every 2 seconds, and
// otherwise every 15 (jobs started elsewhere, by API keys, show up).
export function Jobs() {
  const jobs = useInfiniteQuery({
    queryKey: ['generations', 'list'],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam, signal }) =>
      must(await api.GET('/v1/generations', { params: { query: { limit: PAGE, before: pageParam } }, signal })),
    // next_before is a cursor: each job comes once, however many share an instant.
    getNextPageParam: (last) => last.next_before ?? undefined,
    refetchInterval: (q) => (q.state.data?.pages.some((p) => p.generations.some((g) => !isTerminal(g.status))) ? 2000 : 15_000),
  })
  const list = jobs.data?.pages.flatMap((p) => p.generations) ?? []
  const more = () => jobs.hasNextPage && !jobs.isFetchingNextPage && !jobs.isError && void jobs.fetchNextPage()
  const sentinel = useOnVisible(more)

  return (
    <section className="jobs-page">
      <h1>Jobs</h1>
      {jobs.isPending ? (
        <p role="status" className="center">Loading your jobs…</p>
      ) : jobs.error && !list.length ? (
        <ErrorNote error={jobs.error} what="Loading your jobs" />
      ) : list.length === 0 ? (
        <div className="empty">
          <p>No jobs yet.</p>
          <Link to="/" className="button primary">Generate an image</Link>
        </div>
      ) : (
        <>
          <table className="jobs-table">
            <caption className="visually-hidden">Your jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Prompt</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">Held</th>
                <th scope="col" className="num">Charged</th>
                <th scope="col">Images</th>
                <th scope="col"><span className="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {list.map((g) => (
                <JobRow key={g.id} g={g} />
              ))}
            </tbody>
          </table>
          <div ref={sentinel} key={jobs.data?.pages.length} className="more">
            {jobs.isFetchingNextPage ? (
              <p role="status">Loading more…</p>
            ) : jobs.error ? (
              <ErrorNote error={jobs.error} what="Loading more jobs" />
            ) : jobs.hasNextPage ? (
              <button type="button" onClick={more}>Load more</button>
            ) : (
              <p className="muted small">{plural(list.length, 'job')}: that is all.</p>
            )}
          </div>
        </>
      )}
    </section>
  )
}

function JobRow({ g }: { g: Generation }) {
  const queries = useQueryClient()
  const navigate = useNavigate()
  const cancel = useMutation({
    mutationFn: async () => must(await api.DELETE('/v1/generations/{id}', { params: { path: { id: g.id } } })),
    onSettled: () => invalidateAfterJob(queries),
  })
  const p = g.params
  const ended = isTerminal(g.status)
  const pct = g.progress ? Math.round(g.progress.progress * 100) : 0
  const rowName = `job-${g.id}`
  return (
    <tr data-testid="job-row" data-status={g.status}>
      <td data-label="Started">
        <time dateTime={g.created_at} title={new Date(g.created_at).toLocaleString()}>{when(g.created_at)}</time>
      </td>
      <td data-label="Prompt" className="prompt-cell">
        <div>
          <span id={rowName} className="job-prompt">{p.prompt}</span>
          <span className="muted small">
            {p.model} · {p.width}×{p.height} · {plural(p.steps, 'step')}
            {p.batch_size > 1 && <> · {plural(p.batch_size, 'image')}</>}
            {p.negative_prompt && <> · not “{p.negative_prompt}”</>}
            {p.init_image && <> · from a picture</>}
          </span>
        </div>
      </td>
      <td data-label="Status">
        <span className={`badge ${g.status}`}>{g.status}</span>
        {g.status === 'running' && <span className="small"> {pct} %</span>}
        {g.error && <span className="small error-text"> {g.error}</span>}
      </td>
      <td data-label="Held" className="num">{g.credits_held}</td>
      <td data-label="Charged" className="num">
        {ended ? (g.credits_settled ?? 0) : <span className="muted">—</span>}
      </td>
      <td data-label="Images">
        {g.images_kept > 0 ? (
          <Link to={`/gallery?job=${g.id}`}>
            {g.images_kept < g.images_produced
              ? `${g.images_kept} of ${plural(g.images_produced, 'image')}`
              : plural(g.images_kept, 'image')}
          </Link>
        ) : g.images_produced > 0 ? (
          <span className="muted">{g.images_produced === 1 ? 'deleted' : 'all deleted'}</span>
        ) : (
          <span className="muted">none</span>
        )}
      </td>
      <td className="row-actions">
        {!ended ? (
          <button type="button" onClick={() => cancel.mutate()} disabled={cancel.isPending || g.status === 'canceling'} aria-describedby={rowName}>
            {cancel.isPending || g.status === 'canceling' ? 'Canceling…' : 'Cancel'}
          </button>
        ) : (
          <button type="button" className="quiet" onClick={() => navigate('/', { state: { settings: p } satisfies GenerateState })} aria-describedby={rowName}>
            Use settings
          </button>
        )}
        {cancel.error && <ErrorNote error={cancel.error} />}
      </td>
    </tr>
  )
}
