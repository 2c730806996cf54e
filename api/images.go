package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// ImagePatch changes an image's flags. Starred is required: a PATCH that
// changes nothing is a mistake.
type ImagePatch struct {
	Starred *bool `json:"starred"`
}

// starImage answers PATCH /v1/images/{name} {"starred": true}.
func (s *Server) starImage(c *gin.Context) {
	var p ImagePatch
	if !s.decodeJSON(c, &p) {
		return
	}
	if p.Starred == nil {
		invalid(c, "starred is required", FieldError{Field: "starred", Message: "must be true or false"})
		return
	}
	img, err := s.Store.StarImage(c.Request.Context(), user(c).ID, c.Param("name"), *p.Starred)
	if !s.imageFound(c, err) {
		return
	}
	v, err := s.imageView(c.Request.Context(), img, true)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// deleteImage answers DELETE /v1/images/{name}: the picture and its
// thumbnail leave the bucket, then the row, so the storage it used stops
// counting against the plan. The credits its job settled stay spent. The
// objects go first: if the row's delete then fails, a retry finds the row
// and deletes the (already absent) objects again, and no row is ever left
// pointing at nothing.
func (s *Server) deleteImage(c *gin.Context) {
	ctx, u := c.Request.Context(), user(c)
	img, err := s.Store.GetImage(ctx, u.ID, c.Param("name"))
	if !s.imageFound(c, err) {
		return
	}
	if err := s.Objects.Delete(ctx, img.Key, img.ThumbnailKey); err != nil {
		unavailable(c, err)
		return
	}
	if _, err := s.Store.DeleteImage(ctx, u.ID, img.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
		unavailable(c, err)
		return
	}
	s.Log.InfoContext(ctx, "image deleted", "user_id", u.ID, "image", img.Name, "bytes", img.Bytes)
	c.Status(http.StatusNoContent)
}

// BulkDelete names the images POST /v1/images/bulk-delete removes.
type BulkDelete struct {
	Names []string `json:"names"`
}

// BulkDeleted is its answer: which names were removed and which the
// caller does not have (another user's names among them, indistinguishable
// from missing ones).
type BulkDeleted struct {
	Deleted  []string `json:"deleted"`
	NotFound []string `json:"not_found"`
}

// maxBulkDelete bounds one bulk delete: two objects per image, and S3's
// DeleteObjects takes 1000 keys.
const maxBulkDelete = 100

// bulkDeleteImages answers POST /v1/images/bulk-delete {"names": [...]}:
// like DELETE /v1/images/{name} for up to 100 images at once, objects
// first, then rows. Repeating it is safe: the second answer lists the
// names under not_found.
func (s *Server) bulkDeleteImages(c *gin.Context) {
	var req BulkDelete
	if !s.decodeJSON(c, &req) {
		return
	}
	names, ok := bulkNames(c, req.Names)
	if !ok {
		return
	}
	ctx, u := c.Request.Context(), user(c)
	imgs, err := s.Store.ImagesNamed(ctx, u.ID, names)
	if err != nil {
		unavailable(c, err)
		return
	}
	keys := make([]string, 0, 2*len(imgs))
	found := make([]string, 0, len(imgs))
	for _, img := range imgs {
		keys = append(keys, img.Key, img.ThumbnailKey)
		found = append(found, img.Name)
	}
	if err := s.Objects.Delete(ctx, keys...); err != nil {
		unavailable(c, err)
		return
	}
	deleted, err := s.Store.DeleteImages(ctx, u.ID, found)
	if err != nil {
		unavailable(c, err)
		return
	}
	s.Log.InfoContext(ctx, "images deleted", "user_id", u.ID, "count", len(deleted))
	c.JSON(http.StatusOK, BulkDeleted{Deleted: deleted, NotFound: missing(names, deleted)})
}

// bulkNames checks a bulk delete's names: 1 to maxBulkDelete non-empty
// names; duplicates count once.
func bulkNames(c *gin.Context, names []string) ([]string, bool) {
	if len(names) == 0 || len(names) > maxBulkDelete {
		msg := "must list 1 to " + strconv.Itoa(maxBulkDelete) + " image names"
		invalid(c, "names "+msg, FieldError{Field: "names", Message: msg})
		return nil, false
	}
	seen := make(map[string]bool, len(names))
	unique := names[:0:0]
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			field := "names[" + strconv.Itoa(i) + "]"
			invalid(c, field+" must not be empty", FieldError{Field: field, Message: "must not be empty"})
			return nil, false
		}
		if !seen[n] {
			seen[n] = true
			unique = append(unique, n)
		}
	}
	return unique, true
}

// missing lists the names not in deleted, in the order asked.
func missing(names, deleted []string) []string {
	gone := make(map[string]bool, len(deleted))
	for _, n := range deleted {
		gone[n] = true
	}
	out := []string{}
	for _, n := range names {
		if !gone[n] {
			out = append(out, n)
		}
	}
	return out
}

// imageFound answers 404 for an image the caller does not have (another
// user's name included) and 503 for a failed read.
func (s *Server) imageFound(c *gin.Context, err error) bool {
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(c, "image")
		return false
	case err != nil:
		unavailable(c, err)
		return false
	}
	return true
}

// imageFilter reads the list's filters: ?starred=true lists starred images
// only, ?job= one generation's images, ?model= one model family's.
func imageFilter(c *gin.Context) (store.ImageFilter, bool) {
	f := store.ImageFilter{JobID: c.Query("job"), Model: c.Query("model")}
	if f.JobID != "" {
		if _, err := uuid.Parse(f.JobID); err != nil {
			invalid(c, "job must be a generation id", FieldError{Field: "job", Message: "must be a generation id (a UUID)"})
			return f, false
		}
	}
	if _, ok := catalog.ModelByFamily(f.Model); f.Model != "" && !ok {
		msg := "must be one of " + strings.Join(catalog.ModelFamilies(), ", ")
		invalid(c, "model "+msg, FieldError{Field: "model", Message: msg})
		return f, false
	}
	if v := c.Query("starred"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			invalid(c, "starred must be true or false", FieldError{Field: "starred", Message: "must be true or false"})
			return f, false
		}
		f.StarredOnly = b
	}
	return f, true
}
