import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { isSuspended } from './lib/problems'
import { ProblemError } from './api/client'
import { BrowserRouter } from 'react-router'
import { App } from './App'
import { restoreSession } from './auth'
import './styles.css'

// A page load forgets the tokens (they live in memory only): ask the
// issuer's session for new ones before showing the sign-in page, except
// on the way back from the issuer's sign-in, which brings its own.
if (location.pathname !== '/auth/callback') void restoreSession()

// A request refused because the account was suspended (it can happen in
// the middle of a session) has /v1/me asked again: the app then shows the
// one page that explains it instead of an error in each section.
const suspended = (e: unknown, key?: readonly unknown[]) => {
  if (isSuspended(e) && key?.[0] !== 'me') void queries.invalidateQueries({ queryKey: ['me'] })
}
const queries: QueryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Once, and not a refusal (4xx: a suspended account's 403, a 404):
      // asked again at once, it is refused again.
      retry: (n, e) => n < 1 && !(e instanceof ProblemError && e.status < 500),
      refetchOnWindowFocus: false,
      staleTime: 10_000,
    },
  },
  queryCache: new QueryCache({ onError: (e, q) => suspended(e, q.queryKey) }),
  mutationCache: new MutationCache({ onError: (e) => suspended(e) }),
})

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queries}>
      <BrowserRouter>
        <App />
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
)
