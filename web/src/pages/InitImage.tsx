import { useRef, useState, type DragEvent } from 'react'
import { useMutation } from '@tanstack/react-query'
import { api, must } from '../api/client'
import { bytes } from '../lib/format'
import { UserError } from '../lib/problems'
import type { InitPicture } from '../lib/request'
import { ErrorNote } from './ErrorNote'

const ACCEPT = ['image/png', 'image/jpeg', 'image/webp']
const MAX_BYTES = 10 * 2 ** 20

// upload stores a picture through POST /v1/uploads (multipart, one `file`).
async function upload(file: File): Promise<InitPicture> {
  if (file.size > MAX_BYTES) throw new UserError(`${file.name} is ${bytes(file.size)}; a picture may be at most 10 MB.`)
  if (file.type && !ACCEPT.includes(file.type)) throw new UserError(`${file.name} is not a PNG, JPEG or WebP picture.`)
  const u = must(
    await api.POST('/v1/uploads', {
      body: { file: '' },
      bodySerializer: () => {
        const fd = new FormData()
        fd.append('file', file)
        return fd
      },
    }),
  )
  return { ref: u.id, url: u.url, width: u.width, height: u.height, label: file.name }
}

// InitImage picks the picture a generation starts from: a file chosen or
// dropped here, uploaded at once, or an image from the gallery; then the
// strength, how much of it is redrawn.
export function InitImage({
  value,
  strength,
  onChange,
  onStrength,
  onBusy,
}: {
  value?: InitPicture
  strength: number
  onChange: (p: InitPicture | undefined) => void
  onStrength: (s: number) => void
  onBusy: (busy: boolean) => void
}) {
  const input = useRef<HTMLInputElement>(null)
  const [over, setOver] = useState(false)
  const send = useMutation({
    mutationFn: upload,
    onMutate: () => onBusy(true),
    onSettled: () => onBusy(false),
    onSuccess: (p) => onChange(p),
  })
  const take = (files: FileList | null) => {
    const f = files?.[0]
    if (f) send.mutate(f)
  }
  const drop = (e: DragEvent) => {
    e.preventDefault()
    setOver(false)
    take(e.dataTransfer.files)
  }

  return (
    <fieldset className="init">
      <legend>Start from a picture</legend>
      {value ? (
        <div className="init-chosen">
          <img src={value.url} width={value.width} height={value.height} alt={`Init image: ${value.label}`} />
          <div>
            <p className="small">
              <strong>{value.label}</strong>
              <br />
              <span className="muted">{value.width}×{value.height}</span>
            </p>
            <button type="button" className="quiet" onClick={() => onChange(undefined)}>
              Remove picture
            </button>
          </div>
        </div>
      ) : (
        <div
          className={`drop${over ? ' over' : ''}`}
          onDragOver={(e) => {
            e.preventDefault()
            e.dataTransfer.dropEffect = 'copy'
            setOver(true)
          }}
          onDragLeave={() => setOver(false)}
          onDrop={drop}
          data-testid="drop-zone"
        >
          <p className="muted small">Drop a PNG, JPEG or WebP here (up to 10 MB), or</p>
          <button type="button" onClick={() => input.current?.click()} disabled={send.isPending}>
            {send.isPending ? 'Uploading…' : 'Choose a picture…'}
          </button>
          <input
            ref={input}
            type="file"
            accept={ACCEPT.join(',')}
            aria-label="Init image file"
            hidden
            onChange={(e) => {
              take(e.target.files)
              e.target.value = ''
            }}
          />
          {send.isPending && (
            <p role="status" className="small">
              Uploading {send.variables?.name}…
            </p>
          )}
        </div>
      )}
      {send.error && <ErrorNote error={send.error} what="Uploading the picture" />}
      {value && (
        <div className="strength">
          <label htmlFor="strength">
            Strength <output htmlFor="strength">{strength.toFixed(2)}</output>
          </label>
          <input
            id="strength"
            type="range"
            min={0.05}
            max={1}
            step={0.05}
            value={strength}
            aria-describedby="strength-hint"
            onChange={(e) => onStrength(Number(e.target.value))}
          />
          <p id="strength-hint" className="muted small">
            How much of the picture is redrawn: low keeps it close, 1 ignores it. Only the steps that run are charged.
          </p>
        </div>
      )}
    </fieldset>
  )
}
