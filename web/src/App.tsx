import { Suspense, lazy, useEffect, useState, useSyncExternalStore } from 'react'
import { NavLink, Navigate, Route, Routes, useNavigate } from 'react-router'
import { useQueryClient } from '@tanstack/react-query'
import { currentUser, isRestoring, onUserChange, setUser, signOut as endSignIn, userManager } from './auth'
import { SignIn } from './pages/SignIn'
import { Generate } from './pages/Generate'
// Pages past the first load come when first opened: the Generate page's
// JavaScript stays small. The page a load lands on (a reload, a link) is
// asked for at once, while the session is being restored.
const pages = {
  '/gallery': () => import('./pages/Gallery').then((m) => ({ default: m.Gallery })),
  '/jobs': () => import('./pages/Jobs').then((m) => ({ default: m.Jobs })),
  '/account': () => import('./pages/account/Account').then((m) => ({ default: m.Account })),
  '/admin': () => import('./pages/admin/Admin').then((m) => ({ default: m.Admin })),
}
const landing = Object.entries(pages).find(([p]) => location.pathname === p || location.pathname.startsWith(`${p}/`))
if (landing) void landing[1]()
const Gallery = lazy(pages['/gallery'])
const Jobs = lazy(pages['/jobs'])
const Account = lazy(pages['/account'])
const Admin = lazy(pages['/admin'])
import { LowBalance } from './LowBalance'
import { useMe } from './me'
import { SUSPENDED, isSuspended } from './lib/problems'
import { galleryFilter, imagesQuery } from './pages/galleryQuery'

function useUser() {
  return useSyncExternalStore(onUserChange, currentUser)
}

export function App() {
  const user = useUser()
  // While the issuer's session is asked for the tokens a reload forgot,
  // neither the sign-in page nor the app: whichever it is comes next.
  const restoring = useSyncExternalStore(onUserChange, isRestoring)
  return (
    <Routes>
      <Route path="/auth/callback" element={<Callback />} />
      <Route path="*" element={user ? <SignedIn email={user.profile.email ?? ''} /> : restoring ? <Restoring /> : <SignIn />} />
    </Routes>
  )
}

// Restoring is the sign-in page's first line, where it will be: whichever
// page comes next, nothing on screen moves.
function Restoring() {
  return (
    <main className="signin" aria-busy="true">
      <h1>Easel</h1>
    </main>
  )
}

function SignedIn({ email }: { email: string }) {
  const queries = useQueryClient()
  const me = useMe()
  const suspended = isSuspended(me.error)
  // A load that lands on the Gallery asks for its images beside /v1/me:
  // its lazy page renders a moment later, and its first thumbnails are
  // the page's largest paint.
  useState(() => {
    if (location.pathname === '/gallery') void queries.prefetchInfiniteQuery(imagesQuery(galleryFilter(new URLSearchParams(location.search))))
  })
  const signOut = () => {
    queries.clear()
    void endSignIn()
  }
  return (
    <>
      <header className="bar">
        <span className="brand">Easel</span>
        {!suspended && (
          <nav aria-label="Main">
            <NavLink to="/" end>Generate</NavLink>
            <NavLink to="/gallery">Gallery</NavLink>
            <NavLink to="/jobs">Jobs</NavLink>
            <NavLink to="/account">Account</NavLink>
            {me.data?.user.role === 'admin' && <NavLink to="/admin">Admin</NavLink>}
          </nav>
        )}
        <span className="who" title={email}>{email}</span>
        <button type="button" className="link" onClick={signOut}>Sign out</button>
      </header>
      {!suspended && <LowBalance />}
      <main>
        {suspended ? (
          <Suspended checking={me.isFetching} onCheck={() => void me.refetch()} />
        ) : (
          <Suspense fallback={<p className="center" role="status">Loading…</p>}>
            <Routes>
              <Route path="/" element={<Generate />} />
              <Route path="/gallery" element={<Gallery />} />
              <Route path="/jobs" element={<Jobs />} />
              <Route path="/account" element={<Account />} />
              <Route path="/admin/*" element={<Admin />} />
              <Route path="*" element={<Navigate to="/" replace />} />
            </Routes>
          </Suspense>
        )}
      </main>
    </>
  )
}

// Suspended stands in for every page while the account is suspended: the
// API refuses each of its requests, so each page would show only that
// refusal. It says once what happened and what to do, and checks again
// (an administrator may have reactivated the account).
function Suspended({ checking, onCheck }: { checking: boolean; onCheck: () => void }) {
  return (
    <section className="panel suspended" data-testid="suspended" aria-labelledby="suspended-h">
      <h1 id="suspended-h">Your account is suspended</h1>
      <p>{SUSPENDED}</p>
      <button type="button" className="secondary" onClick={onCheck} aria-disabled={checking}>
        {checking ? 'Checking…' : 'Check again'}
      </button>
    </section>
  )
}

// Callback completes the code flow: it trades the code for tokens (kept in
// memory) and goes where the person was headed.
function Callback() {
  const navigate = useNavigate()
  useEffect(() => {
    let live = true
    userManager()
      .then((m) => m.signinRedirectCallback())
      .then((u) => {
        if (!live) return
        setUser(u)
        navigate(typeof u.state === 'string' ? u.state : '/', { replace: true })
      })
      .catch((e: Error) => live && navigate(`/?signin_error=${encodeURIComponent(e.message)}`, { replace: true }))
    return () => {
      live = false
    }
  }, [navigate])
  return <p className="center" role="status">Signing in…</p>
}
