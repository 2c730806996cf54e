package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// User is an account.
type User struct {
	ID         string
	Email      string
	Name       string
	CognitoSub string
	Role       string
	Active     bool
	// Created is set by SignIn when this sign-in created the user.
	Created bool
	// Scopes is what the request may do when it authenticated with an API
	// key (ScopeGenerate, ...); nil for a session, which may do everything.
	Scopes []string
	// CredentialExpires is when the token or key that authenticated the
	// user stops being valid; zero when it never expires.
	CredentialExpires time.Time
}

// Plan is a subscription plan with the limits it grants.
type Plan struct {
	ID                string `json:"-"`
	Name              string `json:"name"`
	Slug              string `json:"slug"`
	MonthlyPrice      string `json:"monthly_price"`
	MonthlyCredits    int    `json:"monthly_credits"`
	GPUTier           string `json:"gpu_tier"`
	MaxResolution     int    `json:"max_resolution"`
	MaxBatchSize      int    `json:"max_batch_size"`
	MaxConcurrentJobs int    `json:"max_concurrent_jobs"`
	MaxStorageGB      int    `json:"max_storage_gb"`
	NodeEditorAccess  bool   `json:"node_editor_access"`
	APIAccess         bool   `json:"api_access"`
	PriorityQueue     bool   `json:"priority_queue"`
}

// FreePlan is the slug of the plan a user without a live subscription has.
const FreePlan = "free"

const planColumns = `p.id, p.name, p.slug, p.monthly_price::text, p.monthly_credits, p.gpu_tier,
	p.max_resolution, p.max_batch_size, p.max_concurrent_jobs, p.max_storage_gb,
	COALESCE(p.node_editor_access, FALSE), COALESCE(p.api_access, FALSE), COALESCE(p.priority_queue, FALSE)`

func scanPlan(row pgx.Row, extra ...any) (Plan, error) {
	var p Plan
	dest := append([]any{&p.ID, &p.Name, &p.Slug, &p.MonthlyPrice, &p.MonthlyCredits, &p.GPUTier,
		&p.MaxResolution, &p.MaxBatchSize, &p.MaxConcurrentJobs, &p.MaxStorageGB,
		&p.NodeEditorAccess, &p.APIAccess, &p.PriorityQueue}, extra...)
	return p, row.Scan(dest...)
}

// Plans lists the active plans, cheapest first.
func (s *Store) Plans(ctx context.Context) ([]Plan, error) {
	rows, err := s.db.Query(ctx, `SELECT `+planColumns+` FROM subscription_plans p
		WHERE COALESCE(p.is_active, TRUE) ORDER BY p.monthly_price`)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	plans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Plan, error) { return scanPlan(r) })
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return plans, nil
}

// PlanBySlug reads one plan.
func (s *Store) PlanBySlug(ctx context.Context, slug string) (Plan, error) {
	p, err := scanPlan(s.db.QueryRow(ctx, `SELECT `+planColumns+` FROM subscription_plans p WHERE p.slug = $1`, slug))
	if errors.Is(err, pgx.ErrNoRows) {
		return Plan{}, fmt.Errorf("plan %q: %w", slug, ErrNotFound)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("read plan %q: %w", slug, err)
	}
	return p, nil
}

// UserPlan returns the plan of the user's live subscription, or Free.
func (s *Store) UserPlan(ctx context.Context, userID string) (Plan, error) {
	p, err := scanPlan(s.db.QueryRow(ctx, `
		SELECT `+planColumns+` FROM user_subscriptions us
		JOIN subscription_plans p ON p.id = us.plan_id
		WHERE us.user_id = $1 AND us.status IN ('active', 'trialing', 'past_due')
		ORDER BY us.created_at DESC LIMIT 1`, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.PlanBySlug(ctx, FreePlan)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("read plan of %s: %w", userID, err)
	}
	return p, nil
}

// UpsertUser creates the user with this identity-provider subject, or
// updates its email and name, and returns it.
func (s *Store) UpsertUser(ctx context.Context, email, name, sub string) (User, error) {
	var u User
	err := s.db.QueryRow(ctx, `
		INSERT INTO users (email, name, cognito_sub) VALUES ($1, $2, $3)
		ON CONFLICT (cognito_sub) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name
		RETURNING id, email, name, cognito_sub, role, COALESCE(is_active, TRUE)`,
		email, name, sub).Scan(&u.ID, &u.Email, &u.Name, &u.CognitoSub, &u.Role, &u.Active)
	if err != nil {
		return User{}, fmt.Errorf("upsert user %s: %w", email, err)
	}
	return u, nil
}

// SignIn returns the user with this identity-provider subject, creating it
// on first sight (User.Created; xmax = 0 marks the row this statement
// inserted rather than updated) and refreshing its email, name and last_login_at (the
// latter at most every 10 minutes, so authenticated requests rarely write).
//
// A user it creates starts on the free plan in the same transaction: a free
// subscription for one month from now and that period's credits, keyed by
// PeriodReference as the subscription's workflow keys them (its own grant of
// the period then finds this one). Whoever sees the user, even a request
// racing the one that created it, sees the credits.
func (s *Store) SignIn(ctx context.Context, email, name, sub string) (User, error) {
	// Nearly every call is a known user whose claims have not changed and
	// who signed in minutes ago: one indexed read answers it, with no
	// write and no row lock.
	if u, current, err := s.knownUser(ctx, email, name, sub); err == nil && current {
		return u, nil
	}
	u, err := s.signIn(ctx, email, name, sub)
	// ON CONFLICT arbitrates on cognito_sub only: two first sign-ins of one
	// identity racing each other can trip the email index instead, and the
	// loser's second try finds the winner's row by its subject.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "users_email_key" {
		u, err = s.signIn(ctx, email, name, sub)
	}
	return u, err
}

func (s *Store) signIn(ctx context.Context, email, name, sub string) (User, error) {
	var u User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
		INSERT INTO users (email, name, cognito_sub, last_login_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (cognito_sub) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, last_login_at = now()
		WHERE users.email <> EXCLUDED.email OR users.name <> EXCLUDED.name
		   OR users.last_login_at IS NULL OR users.last_login_at < now() - interval '10 minutes'
		RETURNING id, email, name, cognito_sub, role, COALESCE(is_active, TRUE), xmax = 0`,
			email, truncate(name, 100), sub).Scan(&u.ID, &u.Email, &u.Name, &u.CognitoSub, &u.Role, &u.Active, &u.Created)
		if err != nil || !u.Created {
			return err
		}
		return startFreePlan(ctx, tx, u.ID)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return s.userBySub(ctx, sub)
	}
	if err != nil {
		return User{}, fmt.Errorf("sign in %s: %w", email, err)
	}
	return u, nil
}

// startFreePlan gives a new user a free subscription, starting at the
// transaction's time, and grants its first period.
func startFreePlan(ctx context.Context, tx pgx.Tx, userID string) error {
	var subID string
	var credits int
	var start, end time.Time
	err := tx.QueryRow(ctx, `
		INSERT INTO user_subscriptions (user_id, plan_id, stripe_customer_id, status, current_period_start, current_period_end)
		SELECT $1, p.id, '', 'active', now(), now() + interval '1 month' FROM subscription_plans p WHERE p.slug = $2
		RETURNING id, current_period_start, current_period_end,
		          (SELECT monthly_credits FROM subscription_plans WHERE slug = $2)`,
		userID, FreePlan).Scan(&subID, &start, &end, &credits)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // no free plan: the user has no subscription, as before plans existed
	}
	if err != nil {
		return fmt.Errorf("start the free plan of %s: %w", userID, err)
	}
	if credits <= 0 {
		return nil
	}
	_, err = grantTx(ctx, tx, GrantInput{UserID: userID, Amount: credits, Source: SourceSubscription,
		ValidFrom: start, ValidUntil: end, ReferenceID: PeriodReference(subID, start),
		Description: fmt.Sprintf("%s subscription %s, %s to %s", FreePlan, subID,
			start.UTC().Format(time.DateOnly), end.UTC().Format(time.DateOnly))})
	if err != nil {
		return fmt.Errorf("grant the first free period of %s: %w", userID, err)
	}
	return nil
}

// knownUser reads the user with this subject and whether the row is
// current: same email and name, last_login_at within 10 minutes. A missing
// user is an error (pgx.ErrNoRows), and SignIn then takes the writing path.
func (s *Store) knownUser(ctx context.Context, email, name, sub string) (User, bool, error) {
	var u User
	var current bool
	err := s.db.QueryRow(ctx, `SELECT id, email, name, cognito_sub, role, COALESCE(is_active, TRUE),
			COALESCE(email = $2 AND name = $3 AND last_login_at >= now() - interval '10 minutes', FALSE)
		FROM users WHERE cognito_sub = $1`, sub, email, truncate(name, 100)).Scan(&u.ID, &u.Email, &u.Name,
		&u.CognitoSub, &u.Role, &u.Active, &current)
	return u, current, err
}

func (s *Store) userBySub(ctx context.Context, sub string) (User, error) {
	var u User
	err := s.db.QueryRow(ctx, `SELECT id, email, name, cognito_sub, role, COALESCE(is_active, TRUE)
		FROM users WHERE cognito_sub = $1`, sub).Scan(&u.ID, &u.Email, &u.Name, &u.CognitoSub, &u.Role, &u.Active)
	if err != nil {
		return User{}, fmt.Errorf("read user by subject: %w", err)
	}
	return u, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// GetUser reads a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	err := s.db.QueryRow(ctx, `SELECT id, email, name, cognito_sub, role, COALESCE(is_active, TRUE)
		FROM users WHERE id = $1`, id).Scan(&u.ID, &u.Email, &u.Name, &u.CognitoSub, &u.Role, &u.Active)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %s: %w", id, err)
	}
	return u, nil
}

// Subscribe puts a user on a plan for one period, replacing any live
// subscription. The billing workflows own this in production; development
// and tests use it to seed users.
func (s *Store) Subscribe(ctx context.Context, userID, planSlug, customerID string, periodEnd time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE user_subscriptions SET status = 'canceled'
			WHERE user_id = $1 AND status IN ('active', 'trialing', 'past_due')`, userID); err != nil {
			return fmt.Errorf("end previous subscription: %w", err)
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO user_subscriptions (user_id, plan_id, stripe_customer_id, status, current_period_start, current_period_end)
			SELECT $1, id, $3, 'active', now(), $4 FROM subscription_plans WHERE slug = $2`,
			userID, planSlug, customerID, periodEnd)
		if err != nil {
			return fmt.Errorf("subscribe %s to %s: %w", userID, planSlug, err)
		}
		return nil
	})
}

// PriceCents is the plan's monthly price in cents, parsed exactly from its
// decimal text (a float would round some prices).
func (p Plan) PriceCents() (int64, error) {
	whole, frac, _ := strings.Cut(p.MonthlyPrice, ".")
	if len(frac) > 2 {
		return 0, fmt.Errorf("plan %s: price %q has fractions of a cent", p.Slug, p.MonthlyPrice)
	}
	d, err1 := strconv.ParseUint(whole, 10, 32)
	c, err2 := strconv.ParseUint((frac + "00")[:2], 10, 8)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("plan %s: price %q is not a decimal amount", p.Slug, p.MonthlyPrice)
	}
	return int64(d*100 + c), nil
}
