import { useState } from 'react'
import { useLocation, useSearchParams } from 'react-router'
import { signOutNotice, userManager } from '../auth'

export function SignIn() {
  const [params] = useSearchParams()
  const where = useLocation()
  const [error, setError] = useState(params.get('signin_error'))
  const [busy, setBusy] = useState(false)
  const start = async () => {
    setBusy(true)
    setError(null)
    try {
      const m = await userManager()
      await m.signinRedirect({ state: where.pathname === '/' ? '/' : where.pathname })
    } catch (e) {
      setError((e as Error).message)
      setBusy(false)
    }
  }
  return (
    <main className="signin">
      <h1>Easel</h1>
      <p className="lede">Turn a sentence into an image. Watch it render, keep what you like.</p>
      <button type="button" className="primary" onClick={start} disabled={busy}>
        {busy ? 'Opening sign-in…' : 'Sign in'}
      </button>
      {error && <p className="error" role="alert">Sign-in failed: {error}</p>}
      {!error && signOutNotice() && <p role="status">{signOutNotice()}</p>}
    </main>
  )
}
