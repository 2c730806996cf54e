package invokeai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"maps"
	"net/url"
	"slices"

	"github.com/easel/easel/internal/engine"
)

// maxImageBytes bounds a downloaded PNG (a 4096x4096 RGBA image is 64 MiB
// raw, less encoded).
const maxImageBytes = 128 << 20

// imageOutput is the part of ImageOutput (and of any output with an image
// field) that names the image.
type imageOutput struct {
	Image struct {
		ImageName string `json:"image_name"`
	} `json:"image"`
}

// fetchOutput downloads the item's image, reads its size, and removes it
// from InvokeAI unless KeepImages is set.
func (e *Engine) fetchOutput(ctx context.Context, p *plan, item *queueItem) (engine.Image, error) {
	name, err := outputImage(p, &item.Session)
	if err != nil {
		return engine.Image{}, fmt.Errorf("queue item %d: %w", item.ItemID, err)
	}
	path := "/api/v1/images/i/" + url.PathEscape(name)
	data, err := e.api.getBytes(ctx, path+"/full", maxImageBytes)
	if err != nil {
		return engine.Image{}, fmt.Errorf("download image %s: %w", name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return engine.Image{}, fmt.Errorf("%w: image %s is not a PNG: %v", ErrRenderFailed, name, err)
	}
	if !e.cfg.KeepImages {
		if err := e.api.doJSON(ctx, "DELETE", path, nil, nil, nil); err != nil {
			e.log.WarnContext(ctx, "invokeai: delete downloaded image", "image", name, "err", err)
		}
	}
	if !p.raw {
		// The masks and the pre-paste picture of an inpainting graph.
		e.deleteImages(ctx, sessionImages(&item.Session, name))
	}
	return engine.Image{PNG: data, Width: cfg.Width, Height: cfg.Height}, nil
}

// sessionImages lists the images a session's nodes saved (any image_name
// in its results), but for the one named except.
func sessionImages(s *session, except string) []string {
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if n, ok := x["image_name"].(string); ok && n != except && !slices.Contains(names, n) {
				names = append(names, n)
			}
			for _, sub := range x {
				walk(sub)
			}
		case []any:
			for _, sub := range x {
				walk(sub)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Results)) {
		var v any
		if json.Unmarshal(s.Results[id], &v) == nil {
			walk(v)
		}
	}
	return names
}

// outputImage finds the result image: the output node's, for graphs built
// here, or the last image the session produced, for raw graphs.
func outputImage(p *plan, s *session) (string, error) {
	var ids []string
	if p.outputNode != "" {
		ids = s.SourcePreparedMapping[p.outputNode]
	} else {
		ids = slices.Clone(s.ExecutedHistory)
		slices.Reverse(ids)
	}
	for _, id := range ids {
		var out imageOutput
		if json.Unmarshal(s.Results[id], &out) == nil && out.Image.ImageName != "" {
			return out.Image.ImageName, nil
		}
	}
	if p.raw {
		return "", fmt.Errorf("%w: the graph produced no image", engine.ErrInvalidRequest)
	}
	return "", fmt.Errorf("%w: completed without an image from node %q", ErrRenderFailed, p.outputNode)
}
