import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { BrowserRouter } from 'react-router'
import { App } from './App'
import { restoreSession } from './auth'
import './styles.css'

// A page load forgets the tokens (they live in memory only): ask the
// issuer's session for new ones before showing the sign-in page, except
// on the way back from the issuer's sign-in, which brings its own.
if (location.pathname !== '/auth/callback') void restoreSession()

const queries = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false, staleTime: 10_000 } },
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
