package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// NoticeLowBalance is the kind of notice sent when a user's available
// balance drops under the low-balance threshold.
const NoticeLowBalance = "low_balance"

// UserNotice is one recorded notice.
type UserNotice struct {
	ID        string
	UserID    string
	Email     string // the user's address at claim time, for the sender
	Kind      string
	Balance   int
	CreatedAt time.Time
	SentAt    *time.Time
	Error     string
}

// ClaimLowBalanceNotice records a low-balance notice for the user at balance
// unless one was already claimed for the current episode; ok reports whether
// this call claimed it (and so must send it). The flag flip and the notice row
// are one statement, so of two concurrent settles exactly one gets ok.
func (s *Store) ClaimLowBalanceNotice(ctx context.Context, userID string, balance int) (n UserNotice, ok bool, err error) {
	err = s.db.QueryRow(ctx, `
		WITH claim AS (
			INSERT INTO user_notice_state (user_id, low_balance_notified, low_balance_notified_at, updated_at)
			VALUES ($1, TRUE, now(), now())
			ON CONFLICT (user_id) DO UPDATE
			   SET low_balance_notified = TRUE, low_balance_notified_at = now(), updated_at = now()
			 WHERE NOT user_notice_state.low_balance_notified
			RETURNING user_id
		)
		INSERT INTO user_notices (user_id, kind, balance)
		SELECT user_id, 'low_balance', $2 FROM claim
		RETURNING id, user_id, (SELECT email FROM users WHERE id = $1), kind, balance, created_at`,
		userID, balance).Scan(&n.ID, &n.UserID, &n.Email, &n.Kind, &n.Balance, &n.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserNotice{}, false, nil
	}
	if err != nil {
		return UserNotice{}, false, fmt.Errorf("claim low-balance notice for %s: %w", userID, err)
	}
	return n, true, nil
}

// RearmLowBalanceNotice ends the user's low-balance episode, so the next drop
// under the threshold sends a new notice. Call it when the balance is seen at
// or above the threshold.
func (s *Store) RearmLowBalanceNotice(ctx context.Context, userID string) error {
	if _, err := s.db.Exec(ctx, `
		UPDATE user_notice_state SET low_balance_notified = FALSE, updated_at = now()
		WHERE user_id = $1 AND low_balance_notified`, userID); err != nil {
		return fmt.Errorf("re-arm low-balance notice for %s: %w", userID, err)
	}
	return nil
}

// MarkNoticeSent records the sender's outcome: sent_at on success, the error
// otherwise.
func (s *Store) MarkNoticeSent(ctx context.Context, noticeID string, sendErr error) error {
	var err error
	if sendErr == nil {
		_, err = s.db.Exec(ctx, `UPDATE user_notices SET sent_at = now(), error = NULL WHERE id = $1`, noticeID)
	} else {
		_, err = s.db.Exec(ctx, `UPDATE user_notices SET error = $2 WHERE id = $1`, noticeID, sendErr.Error())
	}
	if err != nil {
		return fmt.Errorf("mark notice %s: %w", noticeID, err)
	}
	return nil
}

// Notices lists the user's notices, newest first.
func (s *Store) Notices(ctx context.Context, userID string) ([]UserNotice, error) {
	rows, err := s.db.Query(ctx, `
		SELECT n.id, n.user_id, u.email, n.kind, n.balance, n.created_at, n.sent_at, COALESCE(n.error, '')
		FROM user_notices n JOIN users u ON u.id = n.user_id
		WHERE n.user_id = $1 ORDER BY n.created_at DESC, n.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list notices of %s: %w", userID, err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserNotice, error) {
		var n UserNotice
		err := r.Scan(&n.ID, &n.UserID, &n.Email, &n.Kind, &n.Balance, &n.CreatedAt, &n.SentAt, &n.Error)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("list notices of %s: %w", userID, err)
	}
	return ns, nil
}

// Billing notice kinds.
const (
	NoticeDowngraded    = "downgraded"
	NoticeSuspended     = "suspended"
	NoticePaymentFailed = "payment_failed"
)

// RecordNotice records a notice of kind for the user, to be sent now, with
// the user's current balance; it returns the row with the user's address.
func (s *Store) RecordNotice(ctx context.Context, userID, kind string) (UserNotice, error) {
	var n UserNotice
	err := s.db.QueryRow(ctx, `
		INSERT INTO user_notices (user_id, kind, balance)
		SELECT u.id, $2, 0 FROM users u WHERE u.id = $1
		RETURNING id, user_id, (SELECT email FROM users WHERE id = $1), kind, balance, created_at`,
		userID, kind).Scan(&n.ID, &n.UserID, &n.Email, &n.Kind, &n.Balance, &n.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserNotice{}, fmt.Errorf("notice for user %s: %w", userID, ErrNotFound)
	}
	if err != nil {
		return UserNotice{}, fmt.Errorf("record %s notice for %s: %w", kind, userID, err)
	}
	return n, nil
}
