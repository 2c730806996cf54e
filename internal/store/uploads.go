package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Upload is a picture a user uploaded, stored as a PNG, to start
// image-to-image and inpainting jobs from.
type Upload struct {
	ID           string
	UserID       string
	Key          string
	Width        int
	Height       int
	Bytes        int64
	SourceFormat string // what was sent: png, jpeg or webp
	CreatedAt    time.Time
}

const uploadFields = `id, user_id, s3_key, width, height, file_size_bytes, source_format, created_at`

func scanUpload(row pgx.Row) (Upload, error) {
	var u Upload
	err := row.Scan(&u.ID, &u.UserID, &u.Key, &u.Width, &u.Height, &u.Bytes, &u.SourceFormat, &u.CreatedAt)
	return u, err
}

// CreateUpload records an upload whose object is already stored.
func (s *Store) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	out, err := scanUpload(s.db.QueryRow(ctx, `
		INSERT INTO uploads (id, user_id, s3_key, width, height, file_size_bytes, source_format)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+uploadFields,
		u.ID, u.UserID, u.Key, u.Width, u.Height, u.Bytes, u.SourceFormat))
	if err != nil {
		return Upload{}, fmt.Errorf("record upload %s of %s: %w", u.ID, u.UserID, err)
	}
	return out, nil
}

// GetUpload reads one of the user's uploads; another user's upload is
// ErrNotFound, exactly like a missing one. id must be a UUID.
func (s *Store) GetUpload(ctx context.Context, userID, id string) (Upload, error) {
	u, err := scanUpload(s.db.QueryRow(ctx, `SELECT `+uploadFields+` FROM uploads WHERE id = $1 AND user_id = $2`,
		id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, fmt.Errorf("upload %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Upload{}, fmt.Errorf("read upload %s: %w", id, err)
	}
	return u, nil
}

// ListUploads lists the user's uploads, newest first; uploads created in
// the same instant by id, descending (page.AfterKey is an upload id).
func (s *Store) ListUploads(ctx context.Context, userID string, page Page) ([]Upload, error) {
	page = page.normalize()
	rows, err := s.db.Query(ctx, `SELECT `+uploadFields+` FROM uploads
		WHERE user_id = $1 AND created_at <= $2 AND (created_at < $2 OR id < $4::uuid)
		ORDER BY created_at DESC, id DESC LIMIT $3`,
		userID, page.Before, page.Limit, page.afterKey())
	if err != nil {
		return nil, fmt.Errorf("list uploads of %s: %w", userID, err)
	}
	ups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Upload, error) { return scanUpload(r) })
	if err != nil {
		return nil, fmt.Errorf("list uploads of %s: %w", userID, err)
	}
	return ups, nil
}

// DeleteUpload removes one of the user's uploads and returns what it was;
// ErrNotFound when the user has no upload with that id. The storage it used
// stops counting at once.
func (s *Store) DeleteUpload(ctx context.Context, userID, id string) (Upload, error) {
	u, err := scanUpload(s.db.QueryRow(ctx, `DELETE FROM uploads WHERE id = $1 AND user_id = $2
		RETURNING `+uploadFields, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, ErrNotFound
	}
	if err != nil {
		return Upload{}, fmt.Errorf("delete upload %s of %s: %w", id, userID, err)
	}
	return u, nil
}
