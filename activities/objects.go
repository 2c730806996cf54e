package activities

import (
	"context"

	"github.com/easel/easel/internal/objects"
)

// Objects holds the control plane's object-store activities.
type Objects struct {
	Bucket *objects.Bucket
}

// DeleteImages removes the PNG and thumbnail of each named image. Missing
// objects are fine, so a retry or a job that stored nothing is a no-op.
func (o *Objects) DeleteImages(ctx context.Context, in DeleteImagesInput) error {
	keys := make([]string, 0, 2*len(in.Names))
	for _, n := range in.Names {
		keys = append(keys, objects.ImageKey(in.UserID, n), objects.ThumbnailKey(in.UserID, n))
	}
	if len(keys) == 0 {
		return nil
	}
	return o.Bucket.Delete(ctx, keys...)
}
