package api

import (
	"encoding/json"
	"image"
	"testing"
)

// The image-to-image fields' rules that need no database: defaults, sizes
// taken from the init image, and the combinations refused.
func TestImageToImageRequestRules(t *testing.T) {
	half := 0.5
	for name, c := range map[string]struct {
		req   GenerationRequest
		field string // "" when valid
	}{
		"init image alone":     {GenerationRequest{Prompt: "p", InitImage: "u", initSize: image.Pt(640, 480)}, ""},
		"graph and init image": {GenerationRequest{Prompt: "p", InitImage: "u", Graph: json.RawMessage(`{}`), initSize: image.Pt(64, 64)}, "init_image"},
		"mask of another size": {GenerationRequest{Prompt: "p", InitImage: "u", Mask: "m", initSize: image.Pt(640, 480), maskSize: image.Pt(480, 640)}, "mask"},
		"mask of the same size": {GenerationRequest{Prompt: "p", InitImage: "u", Mask: "m", initSize: image.Pt(640, 480),
			maskSize: image.Pt(640, 480)}, ""},
		"strength alone": {GenerationRequest{Prompt: "p", Strength: &half}, "strength"},
		"mask alone":     {GenerationRequest{Prompt: "p", Mask: "m"}, "mask"},
	} {
		r := c.req
		r.normalize()
		errs := r.validate(fuzzPlan)
		switch {
		case c.field == "" && len(errs) > 0:
			t.Errorf("%s: refused %+v", name, errs)
		case c.field != "" && (len(errs) != 1 || errs[0].Field != c.field):
			t.Errorf("%s: errors %+v, want one naming %s", name, errs, c.field)
		}
	}
	r := GenerationRequest{Prompt: "p", InitImage: "u", initSize: image.Pt(645, 487)}
	r.normalize()
	if r.Width != 640 || r.Height != 480 || r.Strength == nil || *r.Strength != defaultStrength {
		t.Fatalf("normalized to %dx%d strength %v, want 640x480 at %v", r.Width, r.Height, r.Strength, defaultStrength)
	}
	r = GenerationRequest{Prompt: "p", InitImage: "u", Width: 512, Height: 512, initSize: image.Pt(645, 487)}
	r.normalize()
	if r.Width != 512 || r.sizeFromInit {
		t.Fatalf("a size sent was replaced by the init image's: %+v", r)
	}
}
