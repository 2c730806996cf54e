package invokeai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/engine"
)

// modelID is InvokeAI's ModelIdentifierField, the value a loader node's
// model input takes. A zero Key means "none installed" (optional models).
type modelID struct {
	Key  string `json:"key"`
	Hash string `json:"hash"`
	Name string `json:"name"`
	Base string `json:"base"`
	Type string `json:"type"`
	// Format is the install's format (diffusers, checkpoint,
	// bnb_quantized_nf4b, ...): a diffusers FLUX pipeline bundles its text
	// encoders and VAE. It is cached but never sent in a graph.
	Format string `json:"format,omitempty"`
}

// modelQuery asks for one installed model.
type modelQuery struct {
	Base string // BaseModelType: sd-1, sdxl, flux, any
	Type string // ModelType: main, vae, t5_encoder, clip_embed
	Name string
	// Strict means the name was configured: no fallback to another model.
	Strict bool
	// Optional means none installed is fine (the graph then omits it).
	Optional bool
	// Variant restricts the fallback choice (e.g. CLIP-L, not CLIP-G, for
	// FLUX; a normal, not an inpainting, main model).
	Variant string
}

// installed is one entry of the models list; Variant is read only to choose
// and is not sent back in graphs.
type installed struct {
	modelID
	Variant string `json:"variant"`
}

// fallbackOK says whether m may stand in for a default name that is not
// installed. Besides the variant, a FLUX text-to-image render must not get
// a FLUX Fill (inpainting, variant dev_fill) or Kontext (image editing)
// model: both need an input image and give garbage without one.
func (q modelQuery) fallbackOK(m installed) bool {
	if q.Variant != "" && m.Variant != "" && m.Variant != q.Variant {
		return false
	}
	if q.Base == "flux" && q.Type == "main" {
		name := strings.ToLower(m.Name)
		return m.Variant != "dev_fill" && !strings.Contains(name, "kontext") && !strings.Contains(name, "fill")
	}
	return true
}

// cacheKey is the Redis key. The deployment guide names it model_cache:{model_key};
// here model_key is scope/base/type/name, because InvokeAI's model keys are
// random per install and must not leak from one host's install to another.
func (q modelQuery) cacheKey(scope string) string {
	return "model_cache:" + scope + "/" + q.Base + "/" + q.Type + "/" + q.Name
}

type memEntry struct {
	id      modelID
	expires time.Time
}

// resolver maps model names to keys through /api/v2/models/, caching the
// answers in memory and, when configured, in Redis.
type resolver struct {
	api   *apiClient
	redis *redis.Client
	scope string
	ttl   time.Duration
	log   *slog.Logger

	mu  sync.Mutex
	mem map[string]memEntry
}

// resolve returns the model q names and whether it came from a cache.
// fresh skips the cache reads (after a cached key turned out stale).
func (r *resolver) resolve(ctx context.Context, q modelQuery, fresh bool) (modelID, bool, error) {
	key := q.cacheKey(r.scope)
	if !fresh {
		if id, ok := r.cached(ctx, key, q); ok {
			return id, true, nil
		}
	}
	id, err := r.lookup(ctx, q)
	if err != nil {
		return modelID{}, false, err
	}
	r.store(ctx, key, id)
	return id, false, nil
}

// cached reads memory, then Redis. Cache errors only cost a lookup.
func (r *resolver) cached(ctx context.Context, key string, q modelQuery) (modelID, bool) {
	r.mu.Lock()
	e, ok := r.mem[key]
	r.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.id, true
	}
	if r.redis == nil {
		return modelID{}, false
	}
	raw, err := r.redis.Get(ctx, key).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			r.log.WarnContext(ctx, "invokeai: model cache read failed", "key", key, "err", err)
		}
		return modelID{}, false
	}
	var id modelID
	if err := json.Unmarshal(raw, &id); err != nil || (q.Strict && id.Name != q.Name) {
		return modelID{}, false
	}
	r.remember(key, id)
	return id, true
}

func (r *resolver) store(ctx context.Context, key string, id modelID) {
	r.remember(key, id)
	if r.redis == nil {
		return
	}
	raw, _ := json.Marshal(id)
	if err := r.redis.Set(ctx, key, raw, r.ttl).Err(); err != nil {
		r.log.WarnContext(ctx, "invokeai: model cache write failed", "key", key, "err", err)
	}
}

func (r *resolver) remember(key string, id modelID) {
	r.mu.Lock()
	r.mem[key] = memEntry{id: id, expires: time.Now().Add(r.ttl)}
	r.mu.Unlock()
}

// forget drops the entries for qs from both caches.
func (r *resolver) forget(ctx context.Context, qs ...modelQuery) {
	keys := make([]string, 0, len(qs))
	r.mu.Lock()
	for _, q := range qs {
		k := q.cacheKey(r.scope)
		delete(r.mem, k)
		keys = append(keys, k)
	}
	r.mu.Unlock()
	if r.redis != nil && len(keys) > 0 {
		if err := r.redis.Del(ctx, keys...).Err(); err != nil {
			r.log.WarnContext(ctx, "invokeai: model cache delete failed", "keys", keys, "err", err)
		}
	}
}

// lookup lists the installed models of q's base and type and picks one.
func (r *resolver) lookup(ctx context.Context, q modelQuery) (modelID, error) {
	var list struct {
		Models []installed `json:"models"`
	}
	query := url.Values{"base_models": {q.Base}, "model_type": {q.Type}}
	if err := r.api.doJSON(ctx, "GET", "/api/v2/models/", query, nil, &list); err != nil {
		return modelID{}, fmt.Errorf("list %s %s models: %w", q.Base, q.Type, err)
	}
	return pick(list.Models, q)
}

// pick prefers the exact name; without Strict it falls back to the first
// installed model by name, so a host with one model of a family just works.
func pick(models []installed, q modelQuery) (modelID, error) {
	sort.SliceStable(models, func(i, j int) bool { return models[i].Name < models[j].Name })
	for _, m := range models {
		if m.Name == q.Name {
			return m.modelID, nil
		}
	}
	for _, m := range models {
		if !q.Strict && q.fallbackOK(m) {
			return m.modelID, nil
		}
	}
	if q.Optional && !q.Strict {
		return modelID{}, nil
	}
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.Name
	}
	return modelID{}, fmt.Errorf("%w: model %q (base %s, type %s) is not installed in InvokeAI; installed: %q",
		engine.ErrInvalidRequest, q.Name, q.Base, q.Type, names)
}
