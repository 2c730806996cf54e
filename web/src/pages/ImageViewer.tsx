import { useEffect, useId, useRef, useState } from 'react'
import { useNavigate } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, must, type Schemas } from '../api/client'
import { bytes, when } from '../lib/format'
import type { Settings } from '../lib/request'
import { ErrorNote } from './ErrorNote'
import type { GenerateState } from './Generate'
import { patchImage } from '../lib/imageCache'

type Image = Schemas['Image']

// ImageViewer is a modal dialog (the browser's <dialog>: focus moves into
// it and stays there, Escape closes it, and focus goes back to the
// thumbnail) with the full image, how it was made, and what to do with it.
export function ImageViewer(props: {
  name: string
  item?: Image
  prev?: string
  next?: string
  onGo: (name: string) => void
  onClose: () => void
}) {
  const { name, prev, next, onGo, onClose } = props
  const dialog = useRef<HTMLDialogElement>(null)
  const titleId = useId()
  const close = useRef<HTMLButtonElement>(null)
  useEffect(() => {
    const d = dialog.current
    if (d && !d.open) d.showModal()
  }, [])
  // Moving to another image (or past a deleted one) keeps focus in the
  // dialog: on Close when the control that had it is gone.
  useEffect(() => {
    const d = dialog.current
    if (d?.open && !d.contains(document.activeElement)) close.current?.focus()
  }, [name])
  const detail = useQuery({
    queryKey: ['images', 'detail', name],
    queryFn: async ({ signal }) => must(await api.GET('/v1/images/{name}', { params: { path: { name } }, signal })),
  })
  const im = detail.data ?? props.item

  return (
    <dialog
      ref={dialog}
      className="viewer"
      aria-labelledby={titleId}
      onClose={onClose}
      onKeyDown={(e) => {
        if (e.target instanceof HTMLInputElement) return
        if (e.key === 'ArrowLeft' && prev) onGo(prev)
        if (e.key === 'ArrowRight' && next) onGo(next)
      }}
      onClick={(e) => e.target === dialog.current && dialog.current.close()}
    >
      <div className="viewer-body">
        <div className="viewer-image">
          {im ? (
            <img
              key={im.name}
              src={detail.data?.url ?? im.thumbnail_url}
              width={im.width}
              height={im.height}
              alt={prompt(detail.data) ? `Full image: ${prompt(detail.data)}` : 'Full image'}
            />
          ) : detail.isPending ? (
            <p role="status">Loading…</p>
          ) : null}
        </div>
        <aside className="viewer-side">
          <div className="viewer-head">
            <h2 id={titleId}>Image details</h2>
            <button ref={close} type="button" className="icon" aria-label="Close" onClick={() => dialog.current?.close()}>
              ×
            </button>
          </div>
          {detail.error ? (
            <ErrorNote error={detail.error} what="Loading the image" />
          ) : !detail.data ? (
            <p role="status" className="muted">Loading its settings…</p>
          ) : (
            <Details key={name} image={detail.data} onDone={() => (next ? onGo(next) : prev ? onGo(prev) : dialog.current?.close())} />
          )}
          {/* An image that is not in the list (a link to one deleted or
              unknown, or the only one) has no neighbours to go to. */}
          {(prev || next) && (
            <div className="viewer-nav">
              <button type="button" disabled={!prev} onClick={() => prev && onGo(prev)}>
                ← Newer
              </button>
              <button type="button" disabled={!next} onClick={() => next && onGo(next)}>
                Older →
              </button>
            </div>
          )}
        </aside>
      </div>
    </dialog>
  )
}

const prompt = (im?: Image) => (im?.metadata as Settings | undefined)?.prompt

// Details lists an image's settings and its actions: download, star,
// make again, start from it, delete (after a confirmation).
function Details({ image, onDone }: { image: Image; onDone: () => void }) {
  const queries = useQueryClient()
  const navigate = useNavigate()
  // Asking to delete moves focus to "Keep it"; keeping it moves focus back.
  const [confirm, setConfirm] = useState(false)
  const keep = useRef<HTMLButtonElement>(null)
  const del = useRef<HTMLButtonElement>(null)
  const asked = useRef(false)
  useEffect(() => {
    if (confirm) keep.current?.focus()
    else if (asked.current) del.current?.focus()
    asked.current = confirm
  }, [confirm])
  const m = (image.metadata ?? {}) as Settings & { init_image?: string; cfg_scale?: number }

  const star = useMutation({
    mutationFn: async (starred: boolean) =>
      must(await api.PATCH('/v1/images/{name}', { params: { path: { name: image.name } }, body: { starred } })),
    onMutate: (starred) => {
      queries.setQueryData<Image>(['images', 'detail', image.name], (d) => d && { ...d, starred })
      patchImage(queries, image.name, (im) => ({ ...im, starred }))
    },
    onError: (_e, starred) => {
      queries.setQueryData<Image>(['images', 'detail', image.name], (d) => d && { ...d, starred: !starred })
      patchImage(queries, image.name, (im) => ({ ...im, starred: !starred }))
    },
    onSuccess: () => void queries.invalidateQueries({ queryKey: ['images', 'list', { starred: true }] }),
  })
  const remove = useMutation({
    mutationFn: async () => must(await api.DELETE('/v1/images/{name}', { params: { path: { name: image.name } } })),
    onSuccess: () => {
      // The viewer moves on; the gone image's own answer is left to
      // expire, as removing it now would have the viewer ask for it again.
      patchImage(queries, image.name, null)
      void queries.invalidateQueries({ queryKey: ['me'] })
      onDone()
    },
  })
  const go = (state: GenerateState) => navigate('/', { state })

  return (
    <>
      <dl className="settings">
        <dt>Prompt</dt>
        <dd>{m.prompt ?? '—'}</dd>
        {m.negative_prompt && (
          <>
            <dt>Negative prompt</dt>
            <dd>{m.negative_prompt}</dd>
          </>
        )}
        <dt>Model</dt>
        <dd>{m.model ?? '—'}</dd>
        <dt>Size</dt>
        <dd>{image.width}×{image.height}</dd>
        <dt>Steps</dt>
        <dd>{m.steps ?? '—'}</dd>
        {m.cfg_scale !== undefined && (
          <>
            <dt>Guidance</dt>
            <dd>{m.cfg_scale}</dd>
          </>
        )}
        <dt>Seed</dt>
        <dd>{image.seed}</dd>
        {m.init_image && (
          <>
            <dt>From a picture</dt>
            <dd>strength {m.strength ?? 0.75}</dd>
          </>
        )}
        <dt>Made</dt>
        <dd>
          <time dateTime={image.created_at}>{when(image.created_at)}</time> · {bytes(image.bytes)}
        </dd>
      </dl>
      <div className="actions">
        {/* download_url answers as an attachment: the browser saves it and the page stays (a
            download attribute alone is ignored on the bucket's origin). */}
        <a className="button" href={image.download_url} download={`${image.name}.png`}>
          Download PNG
        </a>
        <button type="button" aria-pressed={image.starred} onClick={() => star.mutate(!image.starred)}>
          {image.starred ? '★ Starred' : '☆ Star'}
        </button>
        <button type="button" onClick={() => go({ settings: { ...m, seed: image.seed, width: image.width, height: image.height } })}>
          Use these settings
        </button>
        <button
          type="button"
          onClick={() => go({ init: { ref: image.name, url: image.url, width: image.width, height: image.height, label: m.prompt ?? image.name } })}
        >
          Use as init image
        </button>
        <button ref={del} type="button" className="danger" onClick={() => setConfirm(true)} aria-expanded={confirm}>
          Delete…
        </button>
      </div>
      {star.error && <ErrorNote error={star.error} what="Starring" />}
      {confirm && (
        <div className="confirm" role="group" aria-label="Confirm delete">
          <p>
            <strong>Delete this image?</strong> It cannot be undone; the credits it cost stay spent.
          </p>
          <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
            {remove.isPending ? 'Deleting…' : 'Delete image'}
          </button>
          <button type="button" ref={keep} onClick={() => setConfirm(false)}>
            Keep it
          </button>
          {remove.error && <ErrorNote error={remove.error} what="Deleting" />}
        </div>
      )}
    </>
  )
}
