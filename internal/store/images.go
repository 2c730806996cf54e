package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Image is a stored picture with its object keys.
type Image struct {
	Name         string
	UserID       string
	JobID        string
	Width        int
	Height       int
	Key          string
	ThumbnailKey string
	Bytes        int64
	Metadata     json.RawMessage
	Starred      bool
	CreatedAt    time.Time
}

const imageFields = `image_name, user_id, COALESCE(session_id, ''), width, height, COALESCE(s3_key, ''),
	COALESCE(s3_thumbnail_key, ''), COALESCE(file_size_bytes, 0), COALESCE(metadata, '{}'::jsonb),
	COALESCE(starred, FALSE), created_at`

const imageColumns = `SELECT ` + imageFields + ` FROM images`

func scanImage(row pgx.Row) (Image, error) {
	var i Image
	err := row.Scan(&i.Name, &i.UserID, &i.JobID, &i.Width, &i.Height, &i.Key, &i.ThumbnailKey, &i.Bytes,
		&i.Metadata, &i.Starred, &i.CreatedAt)
	return i, err
}

func (s *Store) listImages(ctx context.Context, sql string, args ...any) ([]Image, error) {
	rows, err := s.db.Query(ctx, imageColumns+sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Image, error) { return scanImage(r) })
}

// ImageFilter narrows a list of images.
type ImageFilter struct {
	StarredOnly bool
	JobID       string // "" lists every job's images
	Model       string // a model family; "" lists every model's images
}

// ListImages lists the user's images, newest first; the images of one
// batch (one instant) in batch order, by name (page.AfterKey is a name).
func (s *Store) ListImages(ctx context.Context, userID string, page Page, filter ImageFilter) ([]Image, error) {
	page = page.normalize()
	imgs, err := s.listImages(ctx, ` WHERE user_id = $1
		AND created_at <= $2 AND (created_at < $2 OR image_name > $7::text) AND (starred OR NOT $4)
		AND ($5 = '' OR session_id = $5) AND ($6 = '' OR metadata->>'model' = $6)
		ORDER BY created_at DESC, image_name LIMIT $3`,
		userID, page.Before, page.Limit, filter.StarredOnly, filter.JobID, filter.Model, page.afterKey())
	if err != nil {
		return nil, fmt.Errorf("list images of %s: %w", userID, err)
	}
	return imgs, nil
}

// JobImages lists the images a job produced, in batch order.
func (s *Store) JobImages(ctx context.Context, userID, jobID string) ([]Image, error) {
	imgs, err := s.listImages(ctx, ` WHERE user_id = $1 AND session_id = $2 ORDER BY image_name`, userID, jobID)
	if err != nil {
		return nil, fmt.Errorf("list images of job %s: %w", jobID, err)
	}
	return imgs, nil
}

// KeptImages counts, per job, the images of the named jobs that the user
// still has (an image deleted since its job completed is not counted); a
// job with none is absent from the map.
func (s *Store) KeptImages(ctx context.Context, userID string, jobIDs []string) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT session_id, count(*) FROM images
		WHERE user_id = $1 AND session_id = ANY($2) GROUP BY session_id`, userID, jobIDs)
	if err != nil {
		return nil, fmt.Errorf("count kept images of %d jobs of %s: %w", len(jobIDs), userID, err)
	}
	kept := map[string]int{}
	var job string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&job, &n}, func() error {
		kept[job] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count kept images of %d jobs of %s: %w", len(jobIDs), userID, err)
	}
	return kept, nil
}

// GetImage reads one of the user's images; another user's image is ErrNotFound.
func (s *Store) GetImage(ctx context.Context, userID, name string) (Image, error) {
	img, err := scanImage(s.db.QueryRow(ctx, imageColumns+` WHERE image_name = $1 AND user_id = $2`, name, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Image{}, fmt.Errorf("image %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("read image %s: %w", name, err)
	}
	return img, nil
}

// ImagesNamed reads those of the named images the user has; names the user
// does not have (another user's included) are simply absent.
func (s *Store) ImagesNamed(ctx context.Context, userID string, names []string) ([]Image, error) {
	imgs, err := s.listImages(ctx, ` WHERE user_id = $1 AND image_name = ANY($2) ORDER BY image_name`, userID, names)
	if err != nil {
		return nil, fmt.Errorf("read %d images of %s: %w", len(names), userID, err)
	}
	return imgs, nil
}

// DeleteImages removes those of the named images the user has and returns
// the names it removed.
func (s *Store) DeleteImages(ctx context.Context, userID string, names []string) ([]string, error) {
	rows, err := s.db.Query(ctx, `DELETE FROM images WHERE user_id = $1 AND image_name = ANY($2)
		RETURNING image_name`, userID, names)
	if err != nil {
		return nil, fmt.Errorf("delete %d images of %s: %w", len(names), userID, err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("delete %d images of %s: %w", len(names), userID, err)
	}
	return deleted, nil
}

// DeleteImage removes one of the user's images and returns what it was, so
// the caller can delete its objects; ErrNotFound when the user has no image
// of that name. The storage it used stops counting at once; the credits its
// job settled stay spent.
func (s *Store) DeleteImage(ctx context.Context, userID, name string) (Image, error) {
	img, err := scanImage(s.db.QueryRow(ctx, `DELETE FROM images WHERE user_id = $1 AND image_name = $2
		RETURNING `+imageFields, userID, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Image{}, ErrNotFound
	}
	if err != nil {
		return Image{}, fmt.Errorf("delete image %s of %s: %w", name, userID, err)
	}
	return img, nil
}

// StarImage stars or unstars one of the user's images; ErrNotFound when the
// user has no image of that name.
func (s *Store) StarImage(ctx context.Context, userID, name string, starred bool) (Image, error) {
	img, err := scanImage(s.db.QueryRow(ctx, `UPDATE images SET starred = $3 WHERE user_id = $1 AND image_name = $2
		RETURNING `+imageFields, userID, name, starred))
	if errors.Is(err, pgx.ErrNoRows) {
		return Image{}, ErrNotFound
	}
	if err != nil {
		return Image{}, fmt.Errorf("star image %s of %s: %w", name, userID, err)
	}
	return img, nil
}
