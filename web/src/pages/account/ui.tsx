import { useEffect, useRef, useState, type ReactNode } from 'react'

// Confirm is a modal dialog (the browser's <dialog>: focus moves into it,
// Escape closes it, the page behind is inert) that asks before something
// that costs money or cannot be undone. Closed, it gives focus back to the
// control that opened it.
export function Confirm({ title, children, confirm, busy, onConfirm, onClose, danger }: {
  title: string
  children: ReactNode
  confirm: string
  busy?: boolean
  danger?: boolean
  onConfirm: () => void
  onClose: () => void
}) {
  const ref = useRef<HTMLDialogElement>(null)
  // What had focus when the dialog was asked for, read while rendering:
  // by the time effects run, autoFocus has moved focus into the dialog.
  const [opener] = useState(() => (document.activeElement instanceof HTMLElement ? document.activeElement : null))
  useEffect(() => {
    const d = ref.current
    if (d && !d.open) d.showModal()
    // The owner closes the dialog by unmounting it, which takes it out of
    // the page before the browser could hand focus back (it would land on
    // <body>): focus goes back to what opened it here, as the gallery
    // viewer's dialog does by closing while still on the page.
    return () => {
      d?.close()
      if (opener?.isConnected && opener !== document.body) opener.focus()
    }
  }, [opener])
  return (
    <dialog ref={ref} className="confirm" aria-labelledby="confirm-title" onClose={onClose} onCancel={onClose}>
      <h2 id="confirm-title">{title}</h2>
      <div className="confirm-body">{children}</div>
      <div className="actions">
        <button type="button" className="secondary" onClick={onClose} disabled={busy}>Back</button>
        <button type="button" className={danger ? 'danger' : 'primary'} onClick={onConfirm} disabled={busy} autoFocus>
          {busy ? 'Working…' : confirm}
        </button>
      </div>
    </dialog>
  )
}

// CopyButton copies text and says so, for screen readers too.
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<'copied' | 'failed' | null>(null)
  return (
    <>
      <button type="button" className="secondary" onClick={() => {
        navigator.clipboard.writeText(text).then(() => setDone('copied'), () => setDone('failed'))
      }}>{label}</button>
      <span role="status" className="muted small">{done === 'copied' ? 'Copied.' : done === 'failed' ? 'Copy failed: select the text and copy it.' : ''}</span>
    </>
  )
}

// Section is one titled panel of a page, with an id to link to.
export function Section({ id, title, children, actions }: { id: string; title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="panel acct-section" id={id} aria-labelledby={`${id}-h`}>
      <div className="section-head">
        <h2 id={`${id}-h`}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}

// Loading is a polite status line.
export function Loading({ what }: { what: string }) {
  return <p role="status" className="muted">Loading {what}…</p>
}
