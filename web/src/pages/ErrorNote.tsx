import { ProblemError } from '../api/client'

// ErrorNote shows what failed and the API's problem detail.
export function ErrorNote({ error, what }: { error: Error; what: string }) {
  const p = error instanceof ProblemError ? error.problem : undefined
  return (
    <div className="error" role="alert">
      <strong>{what} failed{p?.title ? `: ${p.title}` : ''}.</strong> {p?.detail ?? error.message}
    </div>
  )
}
