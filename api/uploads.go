package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/picture"
	"github.com/easel/easel/internal/store"
)

// maxUploadBytes bounds an uploaded file: the bytes as sent, before they are
// re-encoded.
const maxUploadBytes = 10 << 20

// uploadFormSlack is what a multipart body may hold beside the file: part
// headers and boundaries.
const uploadFormSlack = 16 << 10

// uploadField is the multipart part that carries the file.
const uploadField = "file"

// UploadView is an uploaded picture as the API shows it; URL downloads the
// stored PNG for PresignTTL.
type UploadView struct {
	ID        string    `json:"id"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Bytes     int64     `json:"bytes"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
}

// maxPixels is the largest picture a plan accepts as an upload: the area of
// its largest square render (max_resolution squared), in any shape.
func maxPixels(plan store.Plan) int { return plan.MaxResolution * plan.MaxResolution }

// createUpload answers POST /v1/uploads (multipart/form-data with a "file"
// part): the picture is told by its content, decoded, re-encoded as PNG and
// stored under users/<id>/uploads/<upload id>.png, where it counts against
// the plan's storage quota. 201 with the upload.
func (s *Server) createUpload(c *gin.Context) {
	ctx, u := c.Request.Context(), user(c)
	data, ok := readUploadFile(c)
	if !ok {
		return
	}
	plan, err := s.userPlan(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	pic, ok := decodeUpload(c, data, plan)
	if !ok {
		return
	}
	if !s.withinStorage(c, u.ID, plan, int64(len(pic.Data))) {
		return
	}
	up := store.Upload{ID: uuid.NewString(), UserID: u.ID, Width: pic.Width, Height: pic.Height,
		Bytes: int64(len(pic.Data)), SourceFormat: pic.Source}
	up.Key = objects.UploadKey(u.ID, up.ID)
	// The object goes first, so that no row ever points at nothing.
	if err := s.Objects.Put(ctx, up.Key, pic.Data, "image/png"); err != nil {
		unavailable(c, err)
		return
	}
	created, err := s.Store.CreateUpload(ctx, up)
	if err != nil {
		s.dropObject(c, up.Key)
		unavailable(c, err)
		return
	}
	up = created
	s.Log.InfoContext(ctx, "upload stored", "user_id", u.ID, "upload_id", up.ID, "format", pic.Source,
		"width", up.Width, "height", up.Height, "bytes", up.Bytes)
	s.writeUpload(c, http.StatusCreated, up)
}

// dropObject deletes an object whose row could not be written, on a
// context the client's departure does not cancel; a failure only leaves
// an orphaned object (a storage cost, not a charge).
func (s *Server) dropObject(c *gin.Context, key string) {
	ctx, cancel := detached(c, 10*time.Second)
	defer cancel()
	if err := s.Objects.Delete(ctx, key); err != nil {
		s.Log.WarnContext(ctx, "delete orphaned upload object", "key", key, "err", err)
	}
}

// readUploadFile reads the "file" part of a multipart/form-data body of at
// most maxUploadBytes. Anything else (another content type, a missing,
// repeated or unknown part, a file too large) is answered here.
func readUploadFile(c *gin.Context) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "multipart/form-data" {
		problem(c, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"send the picture as multipart/form-data with a part named \"file\"", nil)
		return nil, false
	}
	if c.Request.ContentLength > maxUploadBytes+uploadFormSlack {
		uploadTooLarge(c)
		return nil, false
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxUploadBytes+uploadFormSlack)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		invalid(c, "the body is not valid multipart/form-data: "+err.Error())
		return nil, false
	}
	var data []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			uploadReadError(c, err)
			return nil, false
		}
		switch name := part.FormName(); {
		case name != uploadField:
			invalid(c, "the body has a part other than the file", FieldError{Field: strings.ToValidUTF8(name, "\uFFFD"),
				Message: "unknown part; send only a part named \"file\""})
			return nil, false
		case data != nil:
			invalid(c, "the body has more than one file", FieldError{Field: uploadField, Message: "must be sent once"})
			return nil, false
		}
		if data, err = io.ReadAll(io.LimitReader(part, maxUploadBytes+1)); err != nil {
			uploadReadError(c, err)
			return nil, false
		}
		if len(data) > maxUploadBytes {
			uploadTooLarge(c)
			return nil, false
		}
	}
	if data == nil {
		invalid(c, "the body has no file", FieldError{Field: uploadField, Message: "is required: a multipart part named \"file\""})
		return nil, false
	}
	return data, true
}

func uploadTooLarge(c *gin.Context) {
	problem(c, http.StatusRequestEntityTooLarge, "upload-too-large", "Upload too large",
		fmt.Sprintf("the file must be at most %d bytes (10 MiB)", maxUploadBytes), map[string]any{"max_bytes": maxUploadBytes})
}

// uploadReadError answers a body that ended early or broke the multipart
// format: 413 when it ran past the size limit, 400 otherwise.
func uploadReadError(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		uploadTooLarge(c)
		return
	}
	invalid(c, "the body is not valid multipart/form-data: "+err.Error())
}

// decodeUpload turns the file into the PNG that is stored, answering what
// cannot be: 415 for anything that is not a PNG, JPEG or WebP picture (by
// its content: the file's name and declared type are ignored), 400 for one
// that does not decode or has more pixels than the plan allows.
func decodeUpload(c *gin.Context, data []byte, plan store.Plan) (picture.PNG, bool) {
	pic, err := picture.Normalize(data, maxPixels(plan))
	var tooMany *picture.TooManyPixelsError
	switch {
	case err == nil:
		return pic, true
	case errors.Is(err, picture.ErrNotImage):
		problem(c, http.StatusUnsupportedMediaType, "unsupported-image-type", "Unsupported image type",
			"the file is not a PNG, JPEG or WebP image (judged by its content, not its name or declared type)",
			map[string]any{"accepted": []string{"image/png", "image/jpeg", "image/webp"}})
	case errors.As(err, &tooMany):
		invalid(c, "the picture has more pixels than your plan allows", FieldError{Field: uploadField,
			Message: fmt.Sprintf("is %dx%d (%d pixels); the %s plan allows at most %d pixels (%dx%d)",
				tooMany.Width, tooMany.Height, tooMany.Width*tooMany.Height, plan.Name, tooMany.MaxPixels,
				plan.MaxResolution, plan.MaxResolution)})
	case errors.Is(err, picture.ErrCorrupt):
		invalid(c, "the picture could not be decoded", FieldError{Field: uploadField, Message: err.Error()})
	default:
		internalError(c, err)
	}
	return pic, false
}

func (s *Server) writeUpload(c *gin.Context, status int, up store.Upload) {
	v, err := s.uploadView(c.Request.Context(), up)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(status, v)
}

func (s *Server) uploadView(ctx context.Context, up store.Upload) (UploadView, error) {
	url, err := s.imageURL(ctx, up.Key)
	if err != nil {
		return UploadView{}, err
	}
	return UploadView{ID: up.ID, Width: up.Width, Height: up.Height, Bytes: up.Bytes, URL: url, CreatedAt: up.CreatedAt}, nil
}

// listUploads answers GET /v1/uploads, newest first, paged like images
// (?limit=, ?before= a next_before cursor).
func (s *Server) listUploads(c *gin.Context) {
	page, ok := parseCursorPage(c, isUUID)
	if !ok {
		return
	}
	ups, err := s.Store.ListUploads(c.Request.Context(), user(c).ID, page)
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]UploadView, 0, len(ups))
	for _, up := range ups {
		v, err := s.uploadView(c.Request.Context(), up)
		if err != nil {
			unavailable(c, err)
			return
		}
		views = append(views, v)
	}
	c.JSON(http.StatusOK, gin.H{"uploads": views, "next_before": nextCursor(len(views), page.Limit, func() (time.Time, string) {
		return ups[len(ups)-1].CreatedAt, ups[len(ups)-1].ID
	})})
}

// getUpload answers GET /v1/uploads/{id}.
func (s *Server) getUpload(c *gin.Context) {
	if up, ok := s.loadUpload(c); ok {
		s.writeUpload(c, http.StatusOK, up)
	}
}

// deleteUpload answers DELETE /v1/uploads/{id}: the object leaves the
// bucket, then the row, so the storage it used stops counting against the
// plan (objects first, as for images: a failed row delete is retried and
// no row ever points at nothing). A job already admitted with it as its
// init image or mask fails without charge when its render finds it gone.
func (s *Server) deleteUpload(c *gin.Context) {
	ctx, u := c.Request.Context(), user(c)
	up, ok := s.loadUpload(c)
	if !ok {
		return
	}
	if err := s.Objects.Delete(ctx, up.Key); err != nil {
		unavailable(c, err)
		return
	}
	if _, err := s.Store.DeleteUpload(ctx, u.ID, up.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		unavailable(c, err)
		return
	}
	s.Log.InfoContext(ctx, "upload deleted", "user_id", u.ID, "upload_id", up.ID, "bytes", up.Bytes)
	c.Status(http.StatusNoContent)
}

// loadUpload reads the caller's upload named by the path, answering 404 for
// an id that is not a UUID, missing, or another user's, alike.
func (s *Server) loadUpload(c *gin.Context) (store.Upload, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		notFound(c, "upload")
		return store.Upload{}, false
	}
	up, err := s.Store.GetUpload(c.Request.Context(), user(c).ID, id.String())
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(c, "upload")
		return up, false
	case err != nil:
		unavailable(c, err)
		return up, false
	}
	return up, true
}
