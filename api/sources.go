package api

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
)

// Messages for an init_image or mask that names nothing of the caller's.
// They never depend on the id sent, so another user's id and one that does
// not exist get byte-identical answers.
const (
	initImageMissing = "names none of your uploads or images: send an upload's id or a generated image's name"
	maskMissing      = "names none of your uploads: send an upload's id"
)

// resolveSources finds the pictures an image-to-image or inpainting request
// starts from among the caller's own uploads and images, records their sizes
// on the request (width and height default to the init image's; the mask
// must match it), and writes upload ids in canonical form, from which the
// render derives their object keys. An id that names nothing of the
// caller's, missing or another user's alike, is a 400 naming the field.
func (s *Server) resolveSources(c *gin.Context, userID string, r *GenerationRequest) bool {
	ctx := c.Request.Context()
	var errs []FieldError
	if r.InitImage != "" {
		ref, size, err := s.initImage(ctx, userID, r.InitImage)
		switch {
		case errors.Is(err, store.ErrNotFound):
			errs = append(errs, FieldError{Field: "init_image", Message: initImageMissing})
		case err != nil:
			unavailable(c, err)
			return false
		default:
			r.InitImage, r.initSize = ref, size
		}
	}
	if r.Mask != "" {
		ref, size, err := s.uploadSize(ctx, userID, r.Mask)
		switch {
		case errors.Is(err, store.ErrNotFound):
			errs = append(errs, FieldError{Field: "mask", Message: maskMissing})
		case err != nil:
			unavailable(c, err)
			return false
		default:
			r.Mask, r.maskSize = ref, size
		}
	}
	if len(errs) > 0 {
		invalid(c, fmt.Sprintf("%d field(s) name pictures you do not have", len(errs)), errs...)
		return false
	}
	return true
}

// initImage looks ref up as an upload (a UUID) or else as a generated
// image's name, returning the reference as jobs carry it and the size.
func (s *Server) initImage(ctx context.Context, userID, ref string) (string, image.Point, error) {
	if _, err := uuid.Parse(ref); err == nil {
		return s.uploadSize(ctx, userID, ref)
	}
	img, err := s.Store.GetImage(ctx, userID, ref)
	if err != nil {
		return "", image.Point{}, err
	}
	return img.Name, image.Pt(img.Width, img.Height), nil
}

// uploadSize looks an upload up by id; anything but a UUID is not found.
func (s *Server) uploadSize(ctx context.Context, userID, ref string) (string, image.Point, error) {
	id, err := uuid.Parse(ref)
	if err != nil {
		return "", image.Point{}, fmt.Errorf("upload %q: %w", ref, store.ErrNotFound)
	}
	up, err := s.Store.GetUpload(ctx, userID, id.String())
	if err != nil {
		return "", image.Point{}, err
	}
	return up.ID, image.Pt(up.Width, up.Height), nil
}
