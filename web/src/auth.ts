import { InMemoryWebStorage, User, UserManager, WebStorageStateStore } from 'oidc-client-ts'

// AppConfig is what the server tells the app about sign-in (GET /config.json).
export interface AppConfig {
  oidc_authority: string
  oidc_client_id: string
}

let manager: Promise<UserManager> | undefined

// userManager signs in with the authorization code flow and PKCE. Tokens
// and the flow's state live in memory only: never in localStorage.
export function userManager(): Promise<UserManager> {
  manager ??= fetch('/config.json')
    .then((r) => {
      if (!r.ok) throw new Error(`loading the app's configuration: HTTP ${r.status}`)
      return r.json() as Promise<AppConfig>
    })
    .then((cfg) => {
      const store = new InMemoryWebStorage()
      return new UserManager({
        authority: cfg.oidc_authority,
        client_id: cfg.oidc_client_id,
        redirect_uri: `${location.origin}/auth/callback`,
        post_logout_redirect_uri: `${location.origin}/`,
        response_type: 'code',
        scope: 'openid email profile',
        userStore: new WebStorageStateStore({ store }),
        // The state of a sign-in in progress must survive the round trip
        // to the issuer, which reloads the page: sessionStorage holds only
        // that state (PKCE verifier, nonce), never a token, and it is
        // removed when the callback completes.
        stateStore: new WebStorageStateStore({ store: sessionStorage }),
        automaticSilentRenew: false,
        loadUserInfo: false,
      })
    })
  return manager
}

let current: User | null = null
const listeners = new Set<() => void>()

export function currentUser(): User | null {
  return current && !current.expired ? current : null
}

export function setUser(u: User | null) {
  current = u
  listeners.forEach((l) => l())
}

export function onUserChange(l: () => void): () => void {
  listeners.add(l)
  return () => listeners.delete(l)
}

// bearer is the token the API accepts: the ID token (Cognito's or the
// development issuer's).
export function bearer(): string | undefined {
  return currentUser()?.id_token
}
