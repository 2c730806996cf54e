package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// APIRole is the database role the API works as: it does not own the tables
// and has no BYPASSRLS, so row-level security (migration 00007) applies.
const APIRole = "easel_api"

type scopeKey struct{}

// Scope says whose rows a context may touch under row-level security.
type Scope struct {
	UserID string
	// Admin lets administrators (and authentication, which must find a key's
	// owner) read across users.
	Admin bool
}

// WithScope returns ctx carrying the scope the pool applies to every
// connection acquired with it.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

func scopeOf(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	return s
}

// ScopedConfig makes pool connections work as role (SET ROLE on connect) and
// carry the acquiring context's Scope in app.user_id and app.admin, which the
// row-level security policies check. A context without a scope sees no
// tenant rows at all.
func ScopedConfig(cfg *pgxpool.Config, role string) {
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SET ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			return fmt.Errorf("set role %s: %w", role, err)
		}
		return nil
	}
	cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		if ctx.Value(inBatchKey{}) != nil {
			// scopedDB sends the scope with the statement.
			return true, nil
		}
		s := scopeOf(ctx)
		admin := ""
		if s.Admin {
			admin = "on"
		}
		if _, err := c.Exec(ctx, `SELECT set_config('app.user_id', $1, false), set_config('app.admin', $2, false)`,
			s.UserID, admin); err != nil {
			// The connection is unusable for scoped work; let the pool drop it.
			return false, fmt.Errorf("set row-level security scope: %w", err)
		}
		return true, nil
	}
}

// NewScoped wraps a pool opened by ConnectScoped: each statement carries
// its context's Scope in the same round trip (scopedDB), rather than the
// pool setting it on every acquire.
func NewScoped(pool *pgxpool.Pool) *Store { return &Store{pool: pool, db: scopedDB{pool}} }

// ConnectScoped opens a pool like Connect whose connections work as role
// under row-level security.
func ConnectScoped(ctx context.Context, url, role string) (*pgxpool.Pool, error) {
	return connect(ctx, url, func(cfg *pgxpool.Config) { ScopedConfig(cfg, role) })
}
