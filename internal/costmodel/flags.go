package costmodel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/easel/easel/internal/catalog"
)

// Floats reads the values of a key=value flag (--tier-mix t4=0.7,a10g=0.3)
// as numbers; keys and values may carry spaces.
func Floats(m map[string]string) (map[string]float64, error) {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return nil, fmt.Errorf("%q: no key", "="+v)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: not a number", k, v)
		}
		out[k] = f
	}
	return out, nil
}

// SetSeconds overrides GPU seconds per image, keyed "tier/model"
// (t4/flux=120) or by tier alone for every model of it scaled so that its
// SDXL time is the given value (a10g=10).
func (in *Inputs) SetSeconds(over map[string]float64) error {
	secs := map[string]map[string]float64{}
	for tier, byModel := range in.SecondsPerImage {
		secs[tier] = map[string]float64{}
		for m, s := range byModel {
			secs[tier][m] = s
		}
	}
	for key, v := range over {
		if !(v > 0) {
			return fmt.Errorf("seconds %s=%g: need > 0", key, v)
		}
		tier, model, both := strings.Cut(key, "/")
		cur, ok := secs[tier]
		if !ok {
			return fmt.Errorf("seconds %s: unknown tier %q", key, tier)
		}
		if both {
			if _, ok := cur[model]; !ok {
				return fmt.Errorf("seconds %s: unknown model %q", key, model)
			}
			cur[model] = v
			continue
		}
		ref := cur[catalog.ModelSDXL]
		if !(ref > 0) {
			return fmt.Errorf("seconds %s: tier has no SDXL time to scale from", key)
		}
		for m := range cur {
			cur[m] *= v / ref
		}
	}
	in.SecondsPerImage = secs
	return nil
}

// SetFixed overrides fixed monthly costs by key (rds=280, nat=0).
func (in *Inputs) SetFixed(over map[string]float64) error {
	fixed := append([]Fixed(nil), in.Fixed...)
	for key, v := range over {
		i := -1
		for j, f := range fixed {
			if f.Key == key {
				i = j
			}
		}
		if i < 0 {
			return fmt.Errorf("fixed cost %q: unknown key", key)
		}
		fixed[i].USD, fixed[i].Source = v, "flag --fixed"
	}
	in.Fixed = fixed
	return nil
}

// FixedKeys lists the keys SetFixed accepts.
func (in Inputs) FixedKeys() []string {
	var keys []string
	for _, f := range in.Fixed {
		keys = append(keys, f.Key)
	}
	return keys
}
