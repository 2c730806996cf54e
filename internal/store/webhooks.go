package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MaxWebhookEndpoints caps one user's webhook endpoints: every event is
// sent to each, so the cap bounds the deliveries one event can cause.
const MaxWebhookEndpoints = 10

// ErrTooManyWebhookEndpoints is returned by CreateWebhookEndpoint at the cap.
var ErrTooManyWebhookEndpoints = fmt.Errorf("at most %d webhook endpoints per user", MaxWebhookEndpoints)

// Webhook delivery statuses.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// WebhookEndpoint is a URL a user receives events at. Its signing secret
// is not part of it: it is returned once, by CreateWebhookEndpoint.
type WebhookEndpoint struct {
	ID          string
	UserID      string
	URL         string
	Description string
	// Events filters the event types sent; empty sends every type.
	Events    []string
	CreatedAt time.Time
	// PreviousSecretUntil is set while the secret a rotation replaced
	// still signs beside the new one.
	PreviousSecretUntil *time.Time
}

const webhookEndpointColumns = `id, user_id, url, description, events, created_at,
	CASE WHEN previous_secret_until > now() THEN previous_secret_until END`

func scanWebhookEndpoint(row pgx.Row) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	err := row.Scan(&e.ID, &e.UserID, &e.URL, &e.Description, &e.Events, &e.CreatedAt, &e.PreviousSecretUntil)
	return e, err
}

// MaxSecretOverlap bounds how long a replaced signing secret may keep
// signing beside its successor.
const MaxSecretOverlap = 7 * 24 * time.Hour

// rotateSQL are the assignments of a rotation to $secret: the secret in
// place becomes the previous one until now + $overlap seconds (none when
// $overlap is 0), and whatever was kept from an earlier rotation goes.
func rotateSQL(table, secret, overlap string) string {
	return fmt.Sprintf(`previous_secret = CASE WHEN %[3]s > 0 THEN %[1]s.secret END,
		previous_secret_until = CASE WHEN %[3]s > 0 THEN now() + %[3]s * interval '1 second' END,
		secret = %[2]s`, table, secret, overlap)
}

// RotateWebhookEndpointSecret makes secret the endpoint's signing secret.
// The one it replaces keeps signing beside it for overlap (0: not at all;
// at most MaxSecretOverlap). Another user's endpoint, a missing one and an
// id that is not a UUID are ErrNotFound.
func (s *Store) RotateWebhookEndpointSecret(ctx context.Context, userID, id, secret string, overlap time.Duration) (WebhookEndpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return WebhookEndpoint{}, fmt.Errorf("webhook endpoint %q: %w", id, ErrNotFound)
	}
	e, err := scanWebhookEndpoint(s.db.QueryRow(ctx, `UPDATE webhook_endpoints SET `+
		rotateSQL("webhook_endpoints", "$3", "$4::int")+` WHERE id = $1 AND user_id = $2 RETURNING `+webhookEndpointColumns,
		id, userID, secret, overlapSeconds(overlap)))
	if errors.Is(err, pgx.ErrNoRows) {
		return WebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("rotate secret of webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// RotateWebhookSecret makes secret the account's signing secret (creating
// it if the user had none); the one it replaces keeps signing beside it
// for overlap, as for endpoints. It returns until when that is, nil for
// not at all. A missing user is ErrNotFound.
func (s *Store) RotateWebhookSecret(ctx context.Context, userID, secret string, overlap time.Duration) (*time.Time, error) {
	var until *time.Time
	err := s.db.QueryRow(ctx, `
		INSERT INTO webhook_secrets (user_id, secret) SELECT id, $2 FROM users WHERE id = $1
		ON CONFLICT (user_id) DO UPDATE SET `+rotateSQL("webhook_secrets", "EXCLUDED.secret", "$3::int")+`
		RETURNING previous_secret_until`, userID, secret, overlapSeconds(overlap)).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook secret of user %s: %w", userID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("rotate webhook secret of user %s: %w", userID, err)
	}
	return until, nil
}

// overlapSeconds is a rotation's overlap in whole seconds, within
// [0, MaxSecretOverlap].
func overlapSeconds(overlap time.Duration) int {
	return int(min(max(overlap, 0), MaxSecretOverlap) / time.Second)
}

// CreateWebhookEndpoint registers an endpoint with its signing secret. It
// returns ErrTooManyWebhookEndpoints at the cap and ErrNotFound for a
// missing user.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e WebhookEndpoint, secret string) (WebhookEndpoint, error) {
	if e.Events == nil {
		e.Events = []string{}
	}
	var out WebhookEndpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise one user's creations so two concurrent requests cannot
		// both pass the cap check (as for API keys).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('webhook_endpoints/' || $1::uuid::text, 0))`,
			e.UserID); err != nil {
			return fmt.Errorf("lock webhook endpoints of %s: %w", e.UserID, err)
		}
		var exists bool
		var n int
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1),
			(SELECT count(*) FROM webhook_endpoints WHERE user_id = $1)`, e.UserID).Scan(&exists, &n); err != nil {
			return fmt.Errorf("count webhook endpoints of %s: %w", e.UserID, err)
		}
		if !exists {
			return fmt.Errorf("user %s: %w", e.UserID, ErrNotFound)
		}
		if n >= MaxWebhookEndpoints {
			return fmt.Errorf("create webhook endpoint for %s: %w", e.UserID, ErrTooManyWebhookEndpoints)
		}
		var err error
		out, err = scanWebhookEndpoint(tx.QueryRow(ctx, `
			INSERT INTO webhook_endpoints (user_id, url, description, events, secret)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+webhookEndpointColumns,
			e.UserID, e.URL, e.Description, e.Events, secret))
		if err != nil {
			return fmt.Errorf("insert webhook endpoint for %s: %w", e.UserID, err)
		}
		return nil
	})
	return out, err
}

// ListWebhookEndpoints lists the user's endpoints, oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, userID string) ([]WebhookEndpoint, error) {
	rows, err := s.db.Query(ctx, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints of %s: %w", userID, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookEndpoint, error) { return scanWebhookEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints of %s: %w", userID, err)
	}
	return es, nil
}

// GetWebhookEndpoint reads one of the user's endpoints; another user's, a
// missing one and an id that is not a UUID are ErrNotFound.
func (s *Store) GetWebhookEndpoint(ctx context.Context, userID, id string) (WebhookEndpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return WebhookEndpoint{}, fmt.Errorf("webhook endpoint %q: %w", id, ErrNotFound)
	}
	e, err := scanWebhookEndpoint(s.db.QueryRow(ctx, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints
		WHERE id = $1 AND user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return WebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("read webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// DeleteWebhookEndpoint removes one of the user's endpoints with its
// deliveries; a delivery still retrying finds itself gone and stops.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, userID, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("webhook endpoint %q: %w", id, ErrNotFound)
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook endpoint %s: %w", id, ErrNotFound)
	}
	return nil
}

// WebhookEndpointsFor lists the user's endpoints that take eventType.
func (s *Store) WebhookEndpointsFor(ctx context.Context, userID, eventType string) ([]WebhookEndpoint, error) {
	rows, err := s.db.Query(ctx, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints
		WHERE user_id = $1 AND (cardinality(events) = 0 OR $2 = ANY(events)) ORDER BY created_at, id`, userID, eventType)
	if err != nil {
		return nil, fmt.Errorf("find webhook endpoints of %s for %s: %w", userID, eventType, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookEndpoint, error) { return scanWebhookEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("find webhook endpoints of %s for %s: %w", userID, eventType, err)
	}
	return es, nil
}

// WebhookSecret returns the user's account signing secret, storing
// candidate as that secret if the user has none yet (the first caller's
// candidate wins a race).
func (s *Store) WebhookSecret(ctx context.Context, userID, candidate string) (string, error) {
	var secret string
	err := s.db.QueryRow(ctx, `
		WITH created AS (
			INSERT INTO webhook_secrets (user_id, secret) SELECT id, $2 FROM users WHERE id = $1
			ON CONFLICT (user_id) DO NOTHING RETURNING secret
		)
		SELECT secret FROM created UNION ALL SELECT secret FROM webhook_secrets WHERE user_id = $1
		LIMIT 1`, userID, candidate).Scan(&secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("webhook secret of user %s: %w", userID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("webhook secret of user %s: %w", userID, err)
	}
	return secret, nil
}

// WebhookEvent is an event as emitted.
type WebhookEvent struct {
	ID      string
	UserID  string
	Type    string
	Payload json.RawMessage // the exact body sent
}

// NewWebhookDelivery is one target of an event: an endpoint, or a bare URL
// (a generation request's webhook_url, signed with the account secret).
type NewWebhookDelivery struct {
	ID         string
	EndpointID string // "" for a bare URL
	URL        string
}

// RecordWebhookEvent stores an event and its deliveries in one
// transaction. Both are keyed by id, so recording the same event again (a
// retried activity) adds nothing.
func (s *Store) RecordWebhookEvent(ctx context.Context, ev WebhookEvent, deliveries []NewWebhookDelivery) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_events (id, user_id, type, payload) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO NOTHING`, ev.ID, ev.UserID, ev.Type, string(ev.Payload)); err != nil {
			return fmt.Errorf("record webhook event %s: %w", ev.ID, err)
		}
		for _, d := range deliveries {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, user_id, event_id, endpoint_id, url)
				VALUES ($1, $2, $3, NULLIF($4, '')::uuid, $5) ON CONFLICT (id) DO NOTHING`,
				d.ID, ev.UserID, ev.ID, d.EndpointID, d.URL); err != nil {
				return fmt.Errorf("record webhook delivery %s of event %s: %w", d.ID, ev.ID, err)
			}
		}
		return nil
	})
}

// WebhookSend is what one attempt of a delivery needs.
type WebhookSend struct {
	DeliveryID string
	UserID     string
	EventID    string
	URL        string
	Secret     string
	// PreviousSecret, while a rotation's overlap lasts, signs beside Secret.
	PreviousSecret string
	Status         string
	Payload        []byte
}

// WebhookToSend reads a delivery with its payload and signing secret (the
// endpoint's, or the account's for a bare URL). A delivery whose endpoint
// (or user) was deleted is ErrNotFound.
func (s *Store) WebhookToSend(ctx context.Context, deliveryID string) (WebhookSend, error) {
	var w WebhookSend
	var payload string
	err := s.db.QueryRow(ctx, `
		SELECT d.id, d.user_id, d.event_id, d.url, COALESCE(e.secret, a.secret, ''),
			-- At most one of e and a joins: an endpoint's delivery or a bare URL's.
			COALESCE(CASE WHEN COALESCE(e.previous_secret_until, a.previous_secret_until) > now()
				THEN COALESCE(e.previous_secret, a.previous_secret) END, ''),
			d.status, ev.payload::text
		FROM webhook_deliveries d
		JOIN webhook_events ev ON ev.id = d.event_id
		LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id
		LEFT JOIN webhook_secrets a ON a.user_id = d.user_id AND d.endpoint_id IS NULL
		WHERE d.id = $1`, deliveryID).Scan(&w.DeliveryID, &w.UserID, &w.EventID, &w.URL, &w.Secret, &w.PreviousSecret,
		&w.Status, &payload)
	if errors.Is(err, pgx.ErrNoRows) {
		return WebhookSend{}, fmt.Errorf("webhook delivery %s: %w", deliveryID, ErrNotFound)
	}
	if err != nil {
		return WebhookSend{}, fmt.Errorf("read webhook delivery %s: %w", deliveryID, err)
	}
	w.Payload = []byte(payload)
	return w, nil
}

// WebhookAttempt is one try of a delivery.
type WebhookAttempt struct {
	Attempt    int
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int // 0: no HTTP answer
	Excerpt    string
	Error      string
}

// RecordWebhookAttempt stores an attempt (again, if a retry records the same
// number) and counts it on the delivery, which becomes delivered when the
// attempt was.
func (s *Store) RecordWebhookAttempt(ctx context.Context, deliveryID string, a WebhookAttempt, delivered bool) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO webhook_attempts (delivery_id, attempt, user_id, started_at, duration_ms, status_code,
				response_excerpt, error)
			SELECT id, $2, user_id, $3, $4, NULLIF($5, 0), $6, $7 FROM webhook_deliveries WHERE id = $1
			ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = EXCLUDED.started_at,
				duration_ms = EXCLUDED.duration_ms, status_code = EXCLUDED.status_code,
				response_excerpt = EXCLUDED.response_excerpt, error = EXCLUDED.error`,
			deliveryID, a.Attempt, a.StartedAt, a.Duration.Milliseconds(), a.StatusCode,
			storableText(a.Excerpt), storableText(a.Error))
		if err != nil {
			return fmt.Errorf("record attempt %d of webhook delivery %s: %w", a.Attempt, deliveryID, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook delivery %s: %w", deliveryID, ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE webhook_deliveries SET attempts = GREATEST(attempts, $2), last_attempt_at = $3,
				status = CASE WHEN $4 THEN 'delivered' ELSE status END,
				finished_at = CASE WHEN $4 AND finished_at IS NULL THEN now() ELSE finished_at END
			WHERE id = $1`, deliveryID, a.Attempt, a.StartedAt, delivered); err != nil {
			return fmt.Errorf("count attempt %d of webhook delivery %s: %w", a.Attempt, deliveryID, err)
		}
		return nil
	})
}

// FailWebhookDelivery gives a delivery up (its retries ran out); a
// delivered one stays delivered.
func (s *Store) FailWebhookDelivery(ctx context.Context, deliveryID string) error {
	if _, err := s.db.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', finished_at = now()
		WHERE id = $1 AND status = 'pending'`, deliveryID); err != nil {
		return fmt.Errorf("give up webhook delivery %s: %w", deliveryID, err)
	}
	return nil
}

// WebhookDelivery is a delivery as its owner sees it, with its attempts.
type WebhookDelivery struct {
	ID            string
	UserID        string
	EventID       string
	EventType     string
	EndpointID    string // "" for a generation request's webhook_url
	URL           string
	Status        string
	Attempts      []WebhookAttempt
	ReplayOf      string
	CreatedAt     time.Time
	LastAttemptAt *time.Time
	FinishedAt    *time.Time
	Payload       json.RawMessage
}

// WebhookDeliveryFilter narrows a list of deliveries.
type WebhookDeliveryFilter struct {
	EndpointID string // "" lists every endpoint's (and bare URLs')
	EventID    string
}

const webhookDeliveryColumns = `SELECT d.id, d.user_id, d.event_id, ev.type, COALESCE(d.endpoint_id::text, ''), d.url,
	d.status, COALESCE(d.replay_of::text, ''), d.created_at, d.last_attempt_at, d.finished_at, ev.payload::text
	FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id`

// ListWebhookDeliveries lists the user's deliveries, newest first, with
// their attempts; deliveries created in the same instant (one event's, to
// each endpoint) by id, descending (page.AfterKey is a delivery id).
func (s *Store) ListWebhookDeliveries(ctx context.Context, userID string, f WebhookDeliveryFilter, page Page) ([]WebhookDelivery, error) {
	page = page.normalize()
	rows, err := s.db.Query(ctx, webhookDeliveryColumns+`
		WHERE d.user_id = $1 AND d.created_at <= $2 AND (d.created_at < $2 OR d.id < $6::uuid)
			AND ($4 = '' OR d.endpoint_id::text = $4) AND ($5 = '' OR d.event_id::text = $5)
		ORDER BY d.created_at DESC, d.id DESC LIMIT $3`,
		userID, page.Before, page.Limit, f.EndpointID, f.EventID, page.afterKey())
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries of %s: %w", userID, err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookDelivery, error) { return scanWebhookDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries of %s: %w", userID, err)
	}
	if err := s.withAttempts(ctx, ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// GetWebhookDelivery reads one of the user's deliveries with its attempts.
func (s *Store) GetWebhookDelivery(ctx context.Context, userID, id string) (WebhookDelivery, error) {
	if _, err := uuid.Parse(id); err != nil {
		return WebhookDelivery{}, fmt.Errorf("webhook delivery %q: %w", id, ErrNotFound)
	}
	d, err := scanWebhookDelivery(s.db.QueryRow(ctx, webhookDeliveryColumns+` WHERE d.id = $1 AND d.user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return WebhookDelivery{}, fmt.Errorf("webhook delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return WebhookDelivery{}, fmt.Errorf("read webhook delivery %s: %w", id, err)
	}
	ds := []WebhookDelivery{d}
	if err := s.withAttempts(ctx, ds); err != nil {
		return WebhookDelivery{}, err
	}
	return ds[0], nil
}

// ReplayWebhookDelivery creates delivery newID of the same event to the
// same target as one of the user's deliveries.
func (s *Store) ReplayWebhookDelivery(ctx context.Context, userID, id, newID string) (WebhookDelivery, error) {
	if _, err := uuid.Parse(id); err != nil {
		return WebhookDelivery{}, fmt.Errorf("webhook delivery %q: %w", id, ErrNotFound)
	}
	tag, err := s.db.Exec(ctx, `
		INSERT INTO webhook_deliveries (id, user_id, event_id, endpoint_id, url, replay_of)
		SELECT $3, user_id, event_id, endpoint_id, url, id FROM webhook_deliveries WHERE id = $1 AND user_id = $2`,
		id, userID, newID)
	if err != nil {
		return WebhookDelivery{}, fmt.Errorf("replay webhook delivery %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return WebhookDelivery{}, fmt.Errorf("webhook delivery %s: %w", id, ErrNotFound)
	}
	return s.GetWebhookDelivery(ctx, userID, newID)
}

func scanWebhookDelivery(row pgx.Row) (WebhookDelivery, error) {
	var d WebhookDelivery
	var payload string
	err := row.Scan(&d.ID, &d.UserID, &d.EventID, &d.EventType, &d.EndpointID, &d.URL, &d.Status, &d.ReplayOf,
		&d.CreatedAt, &d.LastAttemptAt, &d.FinishedAt, &payload)
	d.Payload = json.RawMessage(payload)
	return d, err
}

// withAttempts fills in the deliveries' attempts, in order.
func (s *Store) withAttempts(ctx context.Context, ds []WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]string, len(ds))
	at := make(map[string]int, len(ds))
	for i, d := range ds {
		ids[i], at[d.ID] = d.ID, i
		ds[i].Attempts = []WebhookAttempt{}
	}
	rows, err := s.db.Query(ctx, `
		SELECT delivery_id, attempt, started_at, duration_ms, COALESCE(status_code, 0), response_excerpt, error
		FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return fmt.Errorf("list webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a WebhookAttempt
		var ms int64
		if err := rows.Scan(&id, &a.Attempt, &a.StartedAt, &ms, &a.StatusCode, &a.Excerpt, &a.Error); err != nil {
			return fmt.Errorf("list webhook attempts: %w", err)
		}
		a.Duration = time.Duration(ms) * time.Millisecond
		i := at[id]
		ds[i].Attempts = append(ds[i].Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list webhook attempts: %w", err)
	}
	return nil
}
