import { InMemoryWebStorage, User, UserManager, WebStorageStateStore, type OidcMetadata } from 'oidc-client-ts'

// AppConfig is what the server tells the app (GET /config.json): where to
// sign in, and what the account and admin pages need.
export interface AppConfig {
  oidc_authority: string
  oidc_client_id: string
  // The balance under which the app warns that credits run low (the
  // threshold of the credits.low webhook).
  low_balance_credits?: number
  // Temporal's Web UI and namespace, for links to workflows; absent when
  // the server does not know where the UI is.
  temporal_ui?: string
  temporal_namespace?: string
  // Set when cards are collected with Stripe Elements (production);
  // without it the app offers the stripe-mock test card.
  stripe_publishable_key?: string
  // Where sign-out ends the issuer's own session, when the issuer's
  // discovery document does not say (Cognito's /logout).
  oidc_end_session_endpoint?: string
  // The issuer's endpoints, when the server knows them (the development
  // issuer, Cognito's hosted UI): sign-in then skips the discovery
  // document, one round trip less before a reloaded page has its tokens.
  oidc_metadata?: Partial<OidcMetadata>
}

let config: Promise<AppConfig> | undefined

// appConfig loads /config.json once.
export function appConfig(): Promise<AppConfig> {
  config ??= fetch('/config.json').then((r) => {
    if (!r.ok) throw new Error(`loading the app's configuration: HTTP ${r.status}`)
    return r.json() as Promise<AppConfig>
  })
  return config
}

let manager: Promise<UserManager> | undefined

// silentCallback is the page the issuer sends a silent sign-in back to,
// in a hidden frame: it hands the answer to the app and nothing else
// (its one inline script, api.SilentScript), so it loads nothing more.
export const silentCallbackPath = '/auth/silent.html'

// userManager signs in with the authorization code flow and PKCE. Tokens
// and the flow's state live in memory only: never in localStorage. The
// session renews itself before the ID token expires, with the refresh
// token the issuer gave (Cognito and the development issuer both do), so
// nobody is signed out in the middle of their work. A reload forgets the
// tokens; restoreSession gets new ones from the issuer's own session.
export function userManager(): Promise<UserManager> {
  manager ??= appConfig().then((cfg) => {
    const store = new InMemoryWebStorage()
    const m = new UserManager({
      authority: cfg.oidc_authority,
      client_id: cfg.oidc_client_id,
      redirect_uri: `${location.origin}/auth/callback`,
      silent_redirect_uri: `${location.origin}${silentCallbackPath}`,
      post_logout_redirect_uri: `${location.origin}/`,
      response_type: 'code',
      scope: 'openid email profile',
      userStore: new WebStorageStateStore({ store }),
      // The state of a sign-in in progress must survive the round trip
      // to the issuer, which reloads the page: sessionStorage holds only
      // that state (PKCE verifier, nonce), never a token, and it is
      // removed when the callback completes.
      stateStore: new WebStorageStateStore({ store: sessionStorage }),
      metadata: cfg.oidc_metadata,
      metadataSeed: cfg.oidc_end_session_endpoint ? { end_session_endpoint: cfg.oidc_end_session_endpoint } : undefined,
      // Renew a minute before expiry, through the refresh token grant.
      automaticSilentRenew: true,
      accessTokenExpiringNotificationTimeInSeconds: 60,
      loadUserInfo: false,
    })
    m.events.addUserLoaded((u) => setUser(u))
    m.events.addSilentRenewError(() => {
      // The session can no longer be renewed (the refresh token expired,
      // the issuer restarted): keep the token while it lasts.
      if (current?.expired) endSession('Your session ended: sign in again.')
    })
    m.events.addAccessTokenExpired(() => endSession('Your session ended: sign in again.'))
    return m
  })
  return manager
}

// How long the issuer may take to answer a silent sign-in: it answers at
// once, with a code or login_required, unless it cannot be reached.
const restoreTimeoutSeconds = 5

let restoring: Promise<void> | undefined
let restored = false

// restoreSession signs the person back in without a page of the issuer's,
// when the issuer still has their session (they signed in before this
// page load): an authorization request with prompt=none in a hidden
// frame, whose code is traded for tokens like a sign-in's. Without a
// session the issuer answers login_required and the sign-in page shows.
export function restoreSession(): Promise<void> {
  restoring ??= userManager()
    .then((m) => m.signinSilent({ silentRequestTimeoutInSeconds: restoreTimeoutSeconds }))
    .then((u) => {
      if (u && !u.expired) setUser(u)
    })
    .catch(() => {
      // login_required (no session at the issuer), or no answer in time:
      // signed out, as before the restore.
    })
    .finally(() => {
      restored = true
      listeners.forEach((l) => l())
    })
  return restoring
}

// restoring is true until restoreSession has answered, or when it never
// started (the sign-in callback).
export function isRestoring(): boolean {
  return restoring !== undefined && !restored
}

let current: User | null = null
let notice: string | null = null
const listeners = new Set<() => void>()

export function currentUser(): User | null {
  return current && !current.expired ? current : null
}

export function setUser(u: User | null) {
  current = u
  if (u) notice = null
  listeners.forEach((l) => l())
}

export function onUserChange(l: () => void): () => void {
  listeners.add(l)
  return () => listeners.delete(l)
}

// signOutNotice is why the session ended, when the person did not sign
// out themselves.
export function signOutNotice(): string | null {
  return notice
}

// endSession forgets the tokens: the next screen is the sign-in page.
export function endSession(why: string | null = null) {
  notice = why
  setUser(null)
  void userManager().then((m) => m.removeUser())
}

// signOut ends the session at the person's request: the tokens here, then
// the issuer's own session (its end-session endpoint, which sends the
// browser back to the app's first page), so a reload does not sign them
// back in. The caller clears the cached server state (the query client)
// first, so nothing of this account is shown to whoever signs in next.
export async function signOut() {
  const idToken = current?.id_token
  endSession(null)
  const m = await userManager()
  try {
    await m.signoutRedirect({
      id_token_hint: idToken,
      // Cognito's /logout names the app and where to go back by these.
      extraQueryParams: { client_id: m.settings.client_id, logout_uri: `${location.origin}/` },
    })
  } catch {
    // An issuer with no end-session endpoint: its session stays, and the
    // sign-in page shows.
  }
}

// bearer is the token the API accepts: the ID token (Cognito's or the
// development issuer's).
export function bearer(): string | undefined {
  return currentUser()?.id_token
}
