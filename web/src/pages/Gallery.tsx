import { startTransition, useEffect, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useInfiniteQuery, useQuery } from '@tanstack/react-query'
import { api, must } from '../api/client'
import { galleryFilter, imagesQuery } from './galleryQuery'
import { plural, when } from '../lib/format'
import { useOnVisible } from '../lib/useOnVisible'
import { ErrorNote } from './ErrorNote'
import { ImageViewer } from './ImageViewer'

// FIRST is how many thumbnails the first render shows: more than a
// phone's or a laptop's first screen holds.
const FIRST = 12

// EAGER thumbnails, the first rows, load at once. The others wait until
// those have loaded (or RELEASE_MS has passed): the browser's own lazy
// loading starts every image within a screen or two of the view at once,
// and on a slow network those below the fold would share the bandwidth
// with the ones on screen.
const EAGER = 6
const RELEASE_MS = 3000

// Gallery shows the caller's images newest first, loading more as the
// list scrolls; ?starred=true shows starred ones, ?job= one job's, and
// ?image= opens one in the viewer.
export function Gallery() {
  const [params, setParams] = useSearchParams()
  const { starred, job } = galleryFilter(params)
  const open = params.get('image') ?? undefined
  const images = useInfiniteQuery(imagesQuery({ starred, job }))
  const list = images.data?.pages.flatMap((p) => p.images) ?? []
  // The first screenful renders with the data; the rest in a transition,
  // which React renders in slices: no long task holds the page (or a
  // phone's main thread) while the first thumbnails are painted.
  const [shown, setShown] = useState(FIRST)
  useEffect(() => {
    if (shown < list.length) startTransition(() => setShown(list.length))
  }, [shown, list.length])
  const [loaded, setLoaded] = useState(0)
  const [released, setReleased] = useState(false)
  useEffect(() => {
    const t = setTimeout(() => setReleased(true), RELEASE_MS)
    return () => clearTimeout(t)
  }, [])
  const rest = released || (list.length > 0 && loaded >= Math.min(EAGER, list.length))
  const eagerDone = () => setLoaded((n) => n + 1)
  const more = () => images.hasNextPage && !images.isFetchingNextPage && !images.isError && void images.fetchNextPage()
  const sentinel = useOnVisible(more)
  const allShown = shown >= list.length

  const set = (change: Record<string, string | undefined>, replace = false) => {
    const next = new URLSearchParams(params)
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) next.delete(k)
      else next.set(k, v)
    }
    setParams(next, { replace })
  }
  const at = open ? list.findIndex((im) => im.name === open) : -1

  return (
    <section className="gallery">
      <div className="heading">
        <h1>Gallery</h1>
        <div className="filters" role="group" aria-label="Show">
          <button type="button" aria-pressed={!starred} onClick={() => set({ starred: undefined })}>
            All
          </button>
          <button type="button" aria-pressed={starred} onClick={() => set({ starred: 'true' })}>
            ★ Starred
          </button>
        </div>
      </div>
      {job && (
        <p className="chip">
          Images of job <code>{job.slice(0, 8)}</code>{' '}
          <button type="button" className="link" onClick={() => set({ job: undefined })}>
            Show all
          </button>
        </p>
      )}
      {images.isPending ? (
        <p role="status" className="center">Loading images…</p>
      ) : images.error && !list.length ? (
        <ErrorNote error={images.error} what="Loading your images" />
      ) : list.length === 0 ? (
        job ? (
          <NoJobImages id={job} />
        ) : (
          <div className="empty">
            <p>{starred ? 'No starred images yet: open an image and star it to keep it here.' : 'No images yet.'}</p>
            {!starred && <Link to="/" className="button primary">Generate one</Link>}
          </div>
        )
      ) : (
        <>
          <ul className="grid" aria-label="Images">
            {list.slice(0, shown).map((im, i) => (
              <li key={im.name}>
                <button type="button" className="thumb" onClick={() => set({ image: im.name })} aria-haspopup="dialog">
                  <img
                    src={i < EAGER || rest ? im.thumbnail_url : undefined}
                    onLoad={i < EAGER ? eagerDone : undefined}
                    onError={i < EAGER ? eagerDone : undefined}
                    alt={`Image ${i + 1}: ${im.width}×${im.height}, seed ${im.seed}, ${when(im.created_at)}${im.starred ? ', starred' : ''}`}
                    // The first rows are on screen at once (the largest paint):
                    // loaded at once, the very first first of all.
                    loading={i < EAGER ? 'eager' : 'lazy'}
                    fetchPriority={i < 2 ? 'high' : undefined}
                    decoding="async"
                    width={256}
                    height={Math.round((256 * im.height) / im.width)}
                  />
                  {im.starred && <span className="star-badge" aria-hidden="true">★</span>}
                </button>
              </li>
            ))}
          </ul>
          {/* Watched only once every loaded image is rendered: while the
              transition still renders the rest, the end of the list sits
              near the top and would fetch the next page at once. */}
          <div ref={allShown ? sentinel : undefined} key={`${images.data?.pages.length}/${allShown}`} className="more">
            {images.isFetchingNextPage ? (
              <p role="status">Loading more…</p>
            ) : images.error ? (
              <ErrorNote error={images.error} what="Loading more images" />
            ) : images.hasNextPage ? (
              <button type="button" onClick={more}>Load more</button>
            ) : (
              <p className="muted small">{plural(list.length, 'image')}: that is all.</p>
            )}
          </div>
        </>
      )}
      {open && (
        <ImageViewer
          name={open}
          item={at >= 0 ? list[at] : undefined}
          prev={at > 0 ? list[at - 1].name : undefined}
          next={at >= 0 && at < list.length - 1 ? list[at + 1].name : undefined}
          onGo={(name) => set({ image: name }, true)}
          onClose={() => set({ image: undefined }, true)}
        />
      )}
    </section>
  )
}

// NoJobImages says why a job's gallery is empty: no such job (a wrong or
// foreign link), a job still running, failed or canceled, or its images
// all deleted.
function NoJobImages({ id }: { id: string }) {
  const q = useQuery({
    queryKey: ['generation', id],
    retry: false,
    queryFn: async () => {
      const r = await api.GET('/v1/generations/{id}', { params: { path: { id } } })
      return r.response.status === 404 ? null : must(r)
    },
  })
  if (q.isPending) return <p role="status" className="center">Loading the job…</p>
  if (q.error) return <ErrorNote error={q.error} what="Loading the job" />
  const status = q.data?.status
  const text = !q.data
    ? 'This job was not found: the link may be wrong, or the job belongs to another account.'
    : status === 'queued' || status === 'running' || status === 'canceling'
      ? 'This job has no images yet: it is still running.'
      : status === 'failed' || status === 'canceled'
        ? `This job has no images: it ${status === 'failed' ? 'failed' : 'was canceled'}.`
        : "None of this job's images are left: they were deleted."
  return (
    <div className="empty" data-testid="job-empty">
      <p>{text}</p>
      <Link to="/jobs">See your jobs</Link>
    </div>
  )
}
