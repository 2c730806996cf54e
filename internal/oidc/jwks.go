package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"
)

// Key set timing. The first load is retried with backoff (at least
// minRetry apart even when requests ask for it early), a loaded set is
// refreshed every refreshEvery, and a token naming an unknown key id
// refetches it at most once per unknownKIDEvery (waiting at most that long
// for its turn, so no request hangs on the limiter).
const (
	minRetry        = time.Second
	maxRetry        = 10 * time.Second
	fetchTimeout    = 10 * time.Second
	refreshEvery    = time.Hour
	unknownKIDEvery = 5 * time.Second
)

// keySet loads an issuer's JWKS, retrying until it answers with at least
// one key, and then keeps it fresh through jwkset's HTTP storage.
type keySet struct {
	url string
	log *slog.Logger
	// kick asks the loader for an early attempt (a token arrived while the
	// set is not loaded).
	kick chan struct{}
	// loaded is closed once kf is set.
	loaded chan struct{}

	mu      sync.Mutex
	kf      keyfunc.Keyfunc
	lastErr error
	// stop ends the loaded set's refresh (also ended by load's ctx).
	stop context.CancelFunc
}

func newKeySet(jwksURL string, log *slog.Logger) (*keySet, error) {
	if _, err := url.ParseRequestURI(jwksURL); err != nil {
		return nil, fmt.Errorf("oidc: JWKS URL %q: %w", jwksURL, err)
	}
	return &keySet{url: jwksURL, log: log, kick: make(chan struct{}, 1), loaded: make(chan struct{}),
		lastErr: errors.New("not fetched yet")}, nil
}

// get returns the key function, or ErrKeysUnavailable with the last load error.
func (k *keySet) get() (keyfunc.Keyfunc, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kf != nil {
		return k.kf, nil
	}
	return nil, fmt.Errorf("%w from %s: %v", ErrKeysUnavailable, k.url, k.lastErr)
}

// wait returns the key function, kicking the loader and waiting up to max
// (or ctx) when the set has not loaded yet.
func (k *keySet) wait(ctx context.Context, max time.Duration) (keyfunc.Keyfunc, error) {
	if kf, err := k.get(); err == nil {
		return kf, nil
	}
	select {
	case k.kick <- struct{}{}:
	default:
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-k.loaded:
	case <-t.C:
	case <-ctx.Done():
	}
	return k.get()
}

// load fetches the key set until it loads or ctx ends, backing off between
// attempts; a kick shortens the wait to minRetry since the last attempt.
func (k *keySet) load(ctx context.Context) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = minRetry, maxRetry
	for attempt := 1; ; attempt++ {
		started := time.Now()
		kf, stop, err := k.fetch(ctx)
		if err == nil {
			k.mu.Lock()
			k.kf, k.stop = kf, stop
			k.mu.Unlock()
			close(k.loaded)
			k.log.Info("oidc key set loaded", "url", k.url, "attempts", attempt)
			return
		}
		k.mu.Lock()
		k.lastErr = err
		k.mu.Unlock()
		next := b.NextBackOff()
		k.log.Warn("oidc key set not loaded; retrying", "url", k.url, "attempt", attempt, "retry_in", next, "err", err)
		if !k.sleep(ctx, next, started) {
			return
		}
	}
}

// sleep waits d, or until a kick once minRetry has passed since the last
// attempt started; false when ctx ended.
func (k *keySet) sleep(ctx context.Context, d time.Duration, lastAttempt time.Time) bool {
	full := time.NewTimer(d)
	defer full.Stop()
	kick := k.kick
	for {
		select {
		case <-ctx.Done():
			return false
		case <-full.C:
			return true
		case <-kick:
			early := time.Until(lastAttempt.Add(minRetry))
			if early <= 0 {
				return true
			}
			if early < d {
				full.Reset(early)
			}
			kick = nil // one early retry is already scheduled
		}
	}
}

// fetch makes one attempt: jwkset's HTTP storage fetches the set and, when
// that worked, keeps refreshing it until ctx ends or stop is called. A set
// without keys counts as a failure (it verifies no one).
func (k *keySet) fetch(ctx context.Context) (kf keyfunc.Keyfunc, stop context.CancelFunc, err error) {
	attempt, cancel := context.WithCancel(ctx)
	store, err := jwkset.NewStorageFromHTTP(k.url, jwkset.HTTPClientStorageOptions{
		Ctx:             attempt,
		HTTPTimeout:     fetchTimeout,
		RefreshInterval: refreshEvery,
		RefreshErrorHandler: func(_ context.Context, err error) {
			k.log.Warn("oidc key set refresh failed; keeping the keys already loaded", "url", k.url, "err", err)
		},
	})
	if err == nil {
		err = hasKeys(attempt, store)
	}
	if err != nil {
		cancel() // stops the failed storage's refresh goroutine
		return nil, nil, err
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{k.url: store},
		RateLimitWaitMax:  unknownKIDEvery,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDEvery), 1),
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("oidc: key set client: %w", err)
	}
	kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("oidc: key function: %w", err)
	}
	return kf, cancel, nil
}

func hasKeys(ctx context.Context, store jwkset.Storage) error {
	keys, err := store.KeyReadAll(ctx)
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	if len(keys) == 0 {
		return errors.New("the JWKS has no usable keys")
	}
	return nil
}
