package invokeai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"time"

	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/picture"
)

// Image-to-image and inpainting need their pictures inside InvokeAI: the
// engine uploads the init image and the mask (POST /api/v1/images/upload,
// as intermediates, which the gallery does not show) before the graph that
// names them is enqueued, and deletes them once the render has ended,
// whatever its outcome.

// sources are the InvokeAI image names of a request's init image and mask
// ("" when it has none).
type sources struct {
	init, mask string
}

// formBody is a multipart body with its Content-Type (see sendRaw).
type formBody struct {
	*bytes.Buffer
	contentType string
}

func (b formBody) ContentType() string { return b.contentType }

// uploadImage stores a PNG in InvokeAI as an intermediate image of the
// category (general, mask) and returns its image name.
func (c *apiClient) uploadImage(ctx context.Context, data []byte, category string) (string, error) {
	body := formBody{Buffer: &bytes.Buffer{}}
	mw := multipart.NewWriter(body.Buffer)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="easel.png"`)
	h.Set("Content-Type", "image/png") // InvokeAI refuses a file whose type is not image/*
	pw, err := mw.CreatePart(h)
	if err == nil {
		_, err = pw.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("invokeai: build the upload: %w", err)
	}
	body.contentType = mw.FormDataContentType()
	query := url.Values{"image_category": {category}, "is_intermediate": {"true"}}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, http.MethodPost, "/api/v1/images/upload", query, body)
	if err != nil {
		return "", err
	}
	defer drain(resp.Body)
	var dto struct {
		ImageName string `json:"image_name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dto); err != nil || dto.ImageName == "" {
		return "", fmt.Errorf("invokeai: upload answered without an image name: %w: %v", ErrUnavailable, err)
	}
	return dto.ImageName, nil
}

// uploadSources uploads the request's init image and mask. The mask is
// inverted on the way: Easel's masks repaint white, InvokeAI's
// create_gradient_mask repaints black. The returned function deletes what
// was uploaded, on a context of its own so that it runs after a cancel.
func (e *Engine) uploadSources(ctx context.Context, req engine.Request) (sources, func(), error) {
	var src sources
	var names []string
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		e.deleteImages(dctx, names)
	}
	if len(req.InitImage) == 0 {
		return src, func() {}, nil
	}
	name, err := e.api.uploadImage(ctx, req.InitImage, "general")
	if err != nil {
		return src, cleanup, fmt.Errorf("upload the init image: %w", err)
	}
	src.init, names = name, append(names, name)
	if len(req.Mask) == 0 {
		return src, cleanup, nil
	}
	inverted, err := picture.Invert(req.Mask)
	if err != nil {
		return src, cleanup, fmt.Errorf("%w: the mask: %v", engine.ErrInvalidRequest, err)
	}
	if name, err = e.api.uploadImage(ctx, inverted, "mask"); err != nil {
		return src, cleanup, fmt.Errorf("upload the mask: %w", err)
	}
	src.mask, names = name, append(names, name)
	return src, cleanup, nil
}

// deleteImages removes images from InvokeAI; a failure is logged, not
// returned: the render's outcome does not depend on it.
func (e *Engine) deleteImages(ctx context.Context, names []string) {
	for _, name := range names {
		if err := e.api.doJSON(ctx, http.MethodDelete, "/api/v1/images/i/"+url.PathEscape(name), nil, nil, nil); err != nil {
			e.log.WarnContext(ctx, "invokeai: delete an image", "image", name, "err", err)
		}
	}
}
