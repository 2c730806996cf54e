package invokeai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/easel/easel/internal/engine"
)

// ErrUnavailable marks failures of the server rather than of the request:
// connection refused or reset, timeouts, 5xx and 429 answers. Another attempt
// (after InvokeAI restarts, or on another host) may succeed.
var ErrUnavailable = errors.New("invokeai: server unavailable")

// HTTPError is a non-2xx answer from InvokeAI. It unwraps to
// engine.ErrInvalidRequest for 400 and 422 (InvokeAI's validation errors),
// to ErrUnauthorized (a configuration error, also not retried) for 401, to
// ErrUnavailable for 408, 429 and 5xx, and to nothing otherwise.
type HTTPError struct {
	Method string
	Path   string
	Status int
	// Detail is InvokeAI's error text: the validation messages of a 422,
	// or the start of the body.
	Detail string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("invokeai: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Detail)
}

func (e *HTTPError) Unwrap() error {
	switch {
	case e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity:
		return engine.ErrInvalidRequest
	case e.Status == http.StatusUnauthorized:
		return ErrUnauthorized
	case e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return ErrUnavailable
	}
	return nil
}

// maxErrorBody bounds how much of an error answer is read into messages.
const maxErrorBody = 64 << 10

// apiClient is a thin JSON-over-HTTP client for InvokeAI's routes.
type apiClient struct {
	base    *url.URL
	http    *http.Client
	auth    *auth
	timeout time.Duration
}

// url joins path (already escaped where needed) onto the base URL, keeping
// any prefix the base has (InvokeAI behind a path-routing proxy).
func (c *apiClient) url(path string, query url.Values) string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	return u.String()
}

// doJSON sends body (if not nil) as JSON and decodes a 2xx answer into out
// (if not nil). Each call is bounded by the client's timeout.
func (c *apiClient) doJSON(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("invokeai: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, method, path, query, rd)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("invokeai: decode %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	return nil
}

// getBytes reads a 2xx body of at most limit bytes.
func (c *apiClient) getBytes(ctx context.Context, path string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	defer drain(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("invokeai: read GET %s: %w: %w", path, ErrUnavailable, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("invokeai: GET %s: body larger than %d bytes", path, limit)
	}
	return data, nil
}

// send performs one request, with InvokeAI's bearer token in multi-user
// mode, and turns transport failures and non-2xx answers into errors; on
// success the caller owns resp.Body.
func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	token, err := c.auth.bearer(ctx, c)
	if err != nil {
		return nil, err
	}
	resp, err := c.sendRaw(ctx, method, path, query, body, token)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		c.auth.expired(token)
	}
	return resp, err
}

// sendRaw performs one request with the given token (none when empty).
func (c *apiClient) sendRaw(ctx context.Context, method, path string, query url.Values, body io.Reader, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), body)
	if err != nil {
		return nil, fmt.Errorf("invokeai: build %s %s: %w", method, path, err)
	}
	if typed, ok := body.(interface{ ContentType() string }); ok {
		req.Header.Set("Content-Type", typed.ContentType())
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("invokeai: %s %s: %w", method, path, err)
		}
		// Refused, reset, DNS or timeout: the server, not the request.
		return nil, fmt.Errorf("invokeai: %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		defer drain(resp.Body)
		return nil, &HTTPError{Method: method, Path: path, Status: resp.StatusCode, Detail: errorDetail(resp.Body)}
	}
	return resp, nil
}

// errorDetail extracts FastAPI's "detail" (a string, or a list of
// validation errors with loc and msg) or else the start of the body.
func errorDetail(body io.Reader) string {
	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	var v struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(raw, &v) == nil && len(v.Detail) > 0 {
		var s string
		if json.Unmarshal(v.Detail, &s) == nil {
			return s
		}
		var list []struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal(v.Detail, &list) == nil && len(list) > 0 {
			msgs := make([]string, 0, len(list))
			for _, d := range list {
				msgs = append(msgs, fmt.Sprintf("%v: %s", d.Loc, d.Msg))
			}
			return strings.Join(msgs, "; ")
		}
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}

// drain reads what is left of a body (so the connection can be reused) and
// closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
