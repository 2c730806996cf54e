package api

import (
	"context"

	"crypto/sha256"
	"encoding/hex"
	"github.com/gin-gonic/gin"
	"time"

	"github.com/easel/easel/internal/authcache"
	"github.com/easel/easel/internal/store"
)

// cachedAuth remembers for a few seconds (authcache.TTL, and never past
// the credential's own expiry) whom a token authenticated, keyed by the
// token's hash, so a client's next requests skip the signature check, the
// user read and, for an API key, the key lookup. A change to the user, the
// key or the plan is heard through authcache.Listen and forgets the user.
type cachedAuth struct {
	next  Authenticator
	users *authcache.Cache[store.User]
}

func (a cachedAuth) Authenticate(ctx context.Context, token string) (store.User, error) {
	sum := sha256.Sum256([]byte(token))
	key := hex.EncodeToString(sum[:])
	now := time.Now()
	if u, ok := a.users.Get(key, now); ok {
		return u, nil
	}
	gen := a.users.Generation()
	u, err := a.next.Authenticate(ctx, token)
	if err != nil {
		return u, err
	}
	until := now.Add(authcache.TTL)
	if !u.CredentialExpires.IsZero() && u.CredentialExpires.Before(until) {
		until = u.CredentialExpires
	}
	kept := u
	kept.Created = false // the welcome happens once, on the request that created the user
	a.users.Put(key, u.ID, kept, gen, until)
	return u, nil
}

// userPlan is the user's plan, from the cache when it is fresh.
func (s *Server) userPlan(ctx context.Context, userID string) (store.Plan, error) {
	now := time.Now()
	if p, ok := s.planCache.Get(userID, now); ok {
		return p, nil
	}
	gen := s.planCache.Generation()
	p, err := s.Store.UserPlan(ctx, userID)
	if err == nil {
		s.planCache.Put(userID, userID, p, gen, now.Add(authcache.TTL))
	}
	return p, err
}

// forget drops what this process remembers of the user after the API
// itself changed it, so the very next request sees the change even before
// the database's announcement arrives.
func (s *Server) forget(userID string) {
	if s.AuthCache != nil {
		s.AuthCache.Forget(userID)
	}
}

// forgetCaller forgets the caller once the handler has run: the routes it
// guards change the caller's plan, through workflows whose writes this
// process would otherwise hear of a moment later.
func (s *Server) forgetCaller(c *gin.Context) {
	c.Next()
	s.forget(user(c).ID)
}
