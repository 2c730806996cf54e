package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Roles a user may have (users.role; schema/migrations/00005 checks them).
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Admin grant limits, shared by the API and the CLI so both refuse the same
// grants.
const (
	MaxAdminGrantCredits = 1_000_000
	MaxAdminGrantReason  = 500
	// MaxAdminGrantDays bounds how far from now a grant's window may begin
	// or end: ten years is longer than any promotion, and keeps every date
	// well inside what JSON and Postgres both write.
	MaxAdminGrantDays = 3650
	// AdminGrantSource is the credits.source of an admin grant.
	AdminGrantSource = "test_grant"
	// AdminGrantReferencePrefix prefixes the Idempotency-Key of an admin
	// grant to make the credits row's reference_id, keeping admin keys apart
	// from the references other grant sources use.
	AdminGrantReferencePrefix = "admin-grant/"
	// MaxAdminGrantKeyLen keeps prefix and key within credits.reference_id
	// (VARCHAR(255)).
	MaxAdminGrantKeyLen = 255 - len(AdminGrantReferencePrefix)
)

// ErrNotAdmin is returned when the user named as the granting admin is not an
// admin.
var ErrNotAdmin = errors.New("not an admin")

// ErrIdempotencyConflict is returned when an admin grant's idempotency key
// was already used for a grant to another user or of another amount.
var ErrIdempotencyConflict = errors.New("idempotency key already used for a different grant")

// AdminUser is a user as an administrator sees it.
type AdminUser struct {
	User
	CreatedAt   time.Time
	LastLoginAt *time.Time
}

// AdminUserSummary is one row of the admin user listing.
type AdminUserSummary struct {
	AdminUser
	PlanSlug  string
	Available int
}

// AdminUserFilter narrows the admin user listing. Email, when set, matches a
// case-insensitive substring of the address.
type AdminUserFilter struct {
	Email string
	Page  Page
}

// TestGrant is the audit row of an admin grant (test_plan_grants).
type TestGrant struct {
	ID           string
	AdminUserID  string
	TargetUserID string
	// CreditID is the credits row the grant created; empty for audit rows
	// written before the two were linked.
	CreditID   string
	Credits    int
	ValidFrom  time.Time
	ValidUntil time.Time
	Reason     string
	CreatedAt  time.Time
	// Replayed is true when the grant was not written now but returned for a
	// repeated idempotency key.
	Replayed bool
}

// AdminGrantInput describes an admin grant. The target is UserID or, when
// that is empty, the user with Email. IdempotencyKey, when set, makes a
// repeated grant return the first.
type AdminGrantInput struct {
	AdminUserID    string
	UserID         string
	Email          string
	Credits        int
	ValidFrom      time.Time
	ValidUntil     time.Time
	Reason         string
	IdempotencyKey string
}

func (in AdminGrantInput) check() error {
	switch {
	case in.Credits < 1 || in.Credits > MaxAdminGrantCredits:
		return fmt.Errorf("credits must be between 1 and %d, got %d", MaxAdminGrantCredits, in.Credits)
	case !in.ValidUntil.After(in.ValidFrom):
		return errors.New("valid_until must be after valid_from")
	case strings.TrimSpace(in.Reason) == "" || utf8.RuneCountInString(in.Reason) > MaxAdminGrantReason:
		return fmt.Errorf("reason must be 1 to %d characters", MaxAdminGrantReason)
	case len(in.IdempotencyKey) > MaxAdminGrantKeyLen:
		return fmt.Errorf("idempotency key must be at most %d bytes", MaxAdminGrantKeyLen)
	case in.UserID == "" && in.Email == "":
		return errors.New("a user id or email is required")
	}
	return nil
}

const testGrantColumns = `SELECT id, admin_user_id, target_user_id, COALESCE(credit_id::text, ''), credits_granted,
	valid_from, valid_until, reason, created_at FROM test_plan_grants`

func scanTestGrant(row pgx.Row) (TestGrant, error) {
	var g TestGrant
	err := row.Scan(&g.ID, &g.AdminUserID, &g.TargetUserID, &g.CreditID, &g.Credits, &g.ValidFrom, &g.ValidUntil,
		&g.Reason, &g.CreatedAt)
	return g, err
}

// AdminGrant gives a user credits on an admin's authority: in one transaction
// under the user's ledger lock it writes the credits row (source test_grant,
// through the ledger's grantTx) and its test_plan_grants audit row. It
// returns ErrNotFound for an unknown target, ErrNotAdmin when AdminUserID is
// not an admin, and ErrIdempotencyConflict when the key was used for another
// grant.
func (s *Store) AdminGrant(ctx context.Context, in AdminGrantInput) (TestGrant, Grant, error) {
	if err := in.check(); err != nil {
		return TestGrant{}, Grant{}, fmt.Errorf("admin grant: %w", err)
	}
	var tg TestGrant
	var g Grant
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var role string
		err := tx.QueryRow(ctx, `SELECT role FROM users WHERE id = $1`, in.AdminUserID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && role != RoleAdmin {
			return fmt.Errorf("granting user %s: %w", in.AdminUserID, ErrNotAdmin)
		}
		if err != nil {
			return fmt.Errorf("read granting user: %w", err)
		}
		target := in.UserID
		if target == "" {
			u, err := userByEmail(ctx, tx, in.Email)
			if err != nil {
				return err
			}
			target = u.ID
		}
		if err := lockUser(ctx, tx, target); err != nil {
			return err
		}
		ref := ""
		if in.IdempotencyKey != "" {
			ref = AdminGrantReferencePrefix + in.IdempotencyKey
		}
		g, err = grantTx(ctx, tx, GrantInput{UserID: target, Amount: in.Credits, Source: AdminGrantSource,
			ValidFrom: in.ValidFrom, ValidUntil: in.ValidUntil, ReferenceID: ref,
			Description: fmt.Sprintf("%d credits granted by an admin: %s", in.Credits, in.Reason)})
		if err != nil {
			return err
		}
		// A reused key returns the first grant; one for another user or
		// amount is a different request, which must not pass as a replay.
		if g.UserID != target || g.Total != in.Credits || g.Source != AdminGrantSource {
			return ErrIdempotencyConflict
		}
		// The audit row is written only with a new credits row: for a replay
		// the conflict on credit_id leaves the first audit row, read below.
		tg, err = scanTestGrant(tx.QueryRow(ctx, `
			INSERT INTO test_plan_grants (admin_user_id, target_user_id, credits_granted, valid_from, valid_until, reason, credit_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (credit_id) DO NOTHING
			RETURNING id, admin_user_id, target_user_id, COALESCE(credit_id::text, ''), credits_granted,
				valid_from, valid_until, reason, created_at`,
			in.AdminUserID, target, g.Total, g.ValidFrom, g.ValidUntil, in.Reason, g.ID))
		if errors.Is(err, pgx.ErrNoRows) {
			tg, err = scanTestGrant(tx.QueryRow(ctx, testGrantColumns+` WHERE credit_id = $1`, g.ID))
			tg.Replayed = true
		}
		if err != nil {
			return fmt.Errorf("record admin grant: %w", err)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.TableName == "credits" {
		// The same key raced for two different users (each under its own
		// user's lock); the loser hit credits.reference_id's unique index.
		err = ErrIdempotencyConflict
	}
	if err != nil {
		return TestGrant{}, Grant{}, fmt.Errorf("admin grant: %w", err)
	}
	return tg, g, nil
}

// TestGrants lists the admin grants made to a user, newest first.
func (s *Store) TestGrants(ctx context.Context, userID string) ([]TestGrant, error) {
	rows, err := s.db.Query(ctx, testGrantColumns+` WHERE target_user_id = $1 ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list admin grants of %s: %w", userID, err)
	}
	grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TestGrant, error) { return scanTestGrant(r) })
	if err != nil {
		return nil, fmt.Errorf("list admin grants of %s: %w", userID, err)
	}
	return grants, nil
}

const adminUserColumns = `SELECT id, email, name, cognito_sub, role, COALESCE(is_active, TRUE), created_at, last_login_at FROM users`

func scanAdminUser(row pgx.Row) (AdminUser, error) {
	var u AdminUser
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.CognitoSub, &u.Role, &u.Active, &u.CreatedAt, &u.LastLoginAt)
	return u, err
}

// UserByEmail finds a user by email address, ignoring case (identity
// providers do not agree on it); an exact match wins over others.
func (s *Store) UserByEmail(ctx context.Context, email string) (AdminUser, error) {
	return userByEmail(ctx, s.db, email)
}

func userByEmail(ctx context.Context, q querier, email string) (AdminUser, error) {
	u, err := scanAdminUser(q.QueryRow(ctx, adminUserColumns+`
		WHERE lower(email) = lower($1) ORDER BY email = $1 DESC, created_at LIMIT 1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return AdminUser{}, fmt.Errorf("user %s: %w", email, ErrNotFound)
	}
	if err != nil {
		return AdminUser{}, fmt.Errorf("read user %s: %w", email, err)
	}
	return u, nil
}

// AdminGetUser reads a user by id, with the dates an administrator needs.
func (s *Store) AdminGetUser(ctx context.Context, id string) (AdminUser, error) {
	u, err := scanAdminUser(s.db.QueryRow(ctx, adminUserColumns+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return AdminUser{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return AdminUser{}, fmt.Errorf("read user %s: %w", id, err)
	}
	return u, nil
}

// FirstAdmin returns the earliest-created admin, or ErrNotFound when there
// is none.
func (s *Store) FirstAdmin(ctx context.Context) (AdminUser, error) {
	u, err := scanAdminUser(s.db.QueryRow(ctx, adminUserColumns+`
		WHERE role = $1 ORDER BY created_at, id LIMIT 1`, RoleAdmin))
	if errors.Is(err, pgx.ErrNoRows) {
		return AdminUser{}, fmt.Errorf("admin user: %w", ErrNotFound)
	}
	if err != nil {
		return AdminUser{}, fmt.Errorf("read first admin: %w", err)
	}
	return u, nil
}

// AdminListUsers lists users newest first, with their plan and spendable
// balance; users created in the same instant by id, descending
// (f.Page.AfterKey is a user id).
func (s *Store) AdminListUsers(ctx context.Context, f AdminUserFilter) ([]AdminUserSummary, error) {
	page := f.Page.normalize()
	rows, err := s.db.Query(ctx, adminUserColumns+`
		WHERE created_at <= $1 AND (created_at < $1 OR id < $4::uuid)
			AND ($2 = '' OR email ILIKE '%' || $2 || '%' ESCAPE '\')
		ORDER BY created_at DESC, id DESC LIMIT $3`, page.Before, escapeLike(f.Email), page.Limit, page.afterKey())
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminUser, error) { return scanAdminUser(r) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	// Plan and balance come from UserPlan and Balance, one page (at most 100
	// users) at a time, so the listing cannot drift from the ledger's own
	// definition of a balance or from plan resolution.
	out := make([]AdminUserSummary, 0, len(users))
	for _, u := range users {
		plan, err := s.UserPlan(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		bal, err := s.Balance(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, AdminUserSummary{AdminUser: u, PlanSlug: plan.Slug, Available: bal.Available})
	}
	return out, nil
}

// escapeLike makes s match itself literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// SetUserActive suspends (false) or reactivates (true) a user and returns it.
// Authentication refuses inactive users, so it takes effect on their next
// request.
func (s *Store) SetUserActive(ctx context.Context, id string, active bool) (AdminUser, error) {
	return s.updateUser(ctx, `is_active = $2`, id, active)
}

// SetUserRole makes a user an admin or a plain user and returns it.
func (s *Store) SetUserRole(ctx context.Context, id, role string) (AdminUser, error) {
	if role != RoleUser && role != RoleAdmin {
		return AdminUser{}, fmt.Errorf("set role of %s: unknown role %q", id, role)
	}
	return s.updateUser(ctx, `role = $2`, id, role)
}

func (s *Store) updateUser(ctx context.Context, set, id string, value any) (AdminUser, error) {
	u, err := scanAdminUser(s.db.QueryRow(ctx, `UPDATE users SET `+set+` WHERE id = $1
		RETURNING id, email, name, cognito_sub, role, COALESCE(is_active, TRUE), created_at, last_login_at`, id, value))
	if errors.Is(err, pgx.ErrNoRows) {
		return AdminUser{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return AdminUser{}, fmt.Errorf("update user %s: %w", id, err)
	}
	return u, nil
}
