import { UserManager } from 'oidc-client-ts'

// The page the issuer sends a silent sign-in (prompt=none, from
// restoreSession in auth.ts) back to, inside the app's hidden frame: it
// hands the answer in its URL (a code, or login_required) to the app,
// which trades the code for tokens. Handing it on reads no setting: the
// library's type asks for these three.
void new UserManager({ authority: location.origin, client_id: 'easel-web', redirect_uri: location.href }).signinSilentCallback()
