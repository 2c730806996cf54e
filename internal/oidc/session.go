package oidc

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SessionTTL is how long the development issuer remembers a sign-in in
// its own session cookie: an hour, as Cognito's hosted UI does. While it
// lasts, an authorization request with prompt=none answers with a code
// without the form, so the web app, which keeps its tokens in memory
// only, signs the person back in silently after a reload.
const SessionTTL = time.Hour

// sessionCookie names the issuer's session cookie, scoped to the issuer's
// path: the app and the API never see it.
const sessionCookie = "easel_dev_oidc_session"

// session is a sign-in the issuer remembers: whose, and until when.
type session struct {
	id      Identity
	expires time.Time
}

func (s session) expiresAt() time.Time { return s.expires }

func (d *DevIssuer) sessionTTL() time.Duration {
	if d.SessionTTL > 0 {
		return d.SessionTTL
	}
	return SessionTTL
}

// cookiePath is the path the issuer is served at (its URL's path), where
// its session cookie applies.
func (d *DevIssuer) cookiePath() string {
	u, err := url.Parse(d.issuer)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}

// startSession remembers id's sign-in and sets the session cookie:
// HttpOnly (no script reads it), SameSite=Lax (sent on the app's own
// requests and top-level navigations, not on other sites' requests),
// Secure when the issuer is served over https, and gone when the session
// ends.
func (d *DevIssuer) startSession(w http.ResponseWriter, id Identity) {
	ttl := d.sessionTTL()
	secret := d.sessions.put(session{id: id, expires: time.Now().Add(ttl)})
	// Max-Age counts whole seconds; the store's expiry is the exact one.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: d.cookiePath(),
		MaxAge: int(math.Ceil(ttl.Seconds())), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(d.issuer, "https://")})
}

// liveSession answers the identity of the request's session while it lasts.
func (d *DevIssuer) liveSession(r *http.Request) (Identity, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return Identity{}, false
	}
	s, ok := d.sessions.get(c.Value)
	return s.id, ok
}

// endSession forgets the request's session and clears its cookie.
func (d *DevIssuer) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.sessions.take(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: d.cookiePath(), MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(d.issuer, "https://")})
}

// logout is the end-session endpoint (OpenID Connect RP-Initiated Logout
// 1.0): it ends the issuer's session and sends the browser to
// post_logout_redirect_uri, or to logout_uri as Cognito's /logout names
// it, when that is on the issuer's origin, with the request's state.
// Anything else shows a page saying the person is signed out.
func (d *DevIssuer) logout(w http.ResponseWriter, r *http.Request) {
	d.endSession(w, r)
	q := r.URL.Query()
	back := q.Get("post_logout_redirect_uri")
	if back == "" {
		back = q.Get("logout_uri")
	}
	w.Header().Set("Cache-Control", "no-store")
	if back == "" || !d.sameOrigin(back) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(signedOutPage))
		return
	}
	if state := q.Get("state"); state != "" {
		u, _ := url.Parse(back) // sameOrigin parsed it
		v := u.Query()
		v.Set("state", state)
		u.RawQuery = v.Encode()
		back = u.String()
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

const signedOutPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Signed out of Easel (development)</title></head>
<body><h1>Signed out</h1><p>The development issuer's session has ended.</p></body></html>
`
