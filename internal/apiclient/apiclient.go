// Package apiclient is the Go client of Easel's HTTP API. The CLI command
// `easel generate` uses it to submit a generation, follow its progress over
// Server-Sent Events (falling back to polling when the stream breaks),
// download the finished PNGs and cancel the job when the user gives up, so
// that held credits are refunded.
//
// Errors the API reports as application/problem+json come back as *Problem,
// wrapped with what the client was doing; use errors.As to reach them.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/google/uuid"
)

// Defaults used when the corresponding unexported Client knob is zero.
const (
	// DefaultPollInterval is how often Generate polls a job once its event
	// stream has broken.
	DefaultPollInterval = 500 * time.Millisecond
	// createRetries is how many times a failed POST /v1/generations is
	// retried (so at most createRetries+1 attempts).
	createRetries = 3
	// defaultRetryBackoff is the wait before the first retry; it doubles
	// on each further retry.
	defaultRetryBackoff = 500 * time.Millisecond
	// defaultStreamIdle is how long the event stream may stay silent. The
	// server sends keep-alive comments well within it, so silence means a
	// half-open connection (a proxy or NAT dropped it) and polling is the
	// only way to learn how the job ends.
	defaultStreamIdle = 60 * time.Second
	// cancelTimeout bounds the DELETE sent after the caller's context is
	// cancelled; the user has already asked to stop, so we must not hang.
	cancelTimeout = 5 * time.Second
	// maxErrorBody caps how much of an error response is read, so a
	// misbehaving proxy cannot make us buffer an arbitrarily large page.
	maxErrorBody = 64 << 10
)

// Client talks to one Easel API server.
type Client struct {
	// BaseURL is the server's root, such as "https://api.easel.dev"; it
	// may carry a path prefix. A trailing slash is ignored.
	BaseURL string
	// Token is sent as "Authorization: Bearer <Token>" on every /v1 call
	// (never on image downloads, whose presigned URLs carry their own
	// signature and may be rejected by the store when given extra auth).
	Token string
	// HTTP sends the requests. It must not have a Timeout: the event stream
	// of a long job stays open for minutes. Bound calls with contexts.
	HTTP *http.Client

	// Tunables that tests shrink; zero means the default.
	pollInterval time.Duration
	retryBackoff time.Duration
	streamIdle   time.Duration
}

// New returns a client for the server at baseURL that authenticates with
// token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: baseURL, Token: token, HTTP: &http.Client{}}
}

// GenerateRequest is the body of POST /v1/generations, and the params echoed
// back in a Generation.
type GenerateRequest struct {
	Prompt         string `json:"prompt"`
	NegativePrompt string `json:"negative_prompt,omitempty"`
	Model          string `json:"model"`
	// Width and Height are left out when 0: the model's native size, or
	// the init image's.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Steps and BatchSize are left out when 0, so the server's defaults
	// apply (30 and 1); the API refuses an explicit 0.
	Steps int `json:"steps,omitempty"`
	// CFGScale is left out when 0, so the server's default (7) applies;
	// the API accepts 1 to 30.
	CFGScale float64 `json:"cfg_scale,omitempty"`
	// Seed is optional: nil lets the server pick one.
	Seed      *uint32 `json:"seed,omitempty"`
	BatchSize int     `json:"batch_size,omitempty"`
	// InitImage starts from a picture: an upload's id (Client.Upload) or
	// one of the caller's images' name. Strength (0-1; nil: 0.75) is how
	// much of it is redrawn; Mask, an upload's id, limits the redrawing to
	// its white pixels.
	InitImage string   `json:"init_image,omitempty"`
	Strength  *float64 `json:"strength,omitempty"`
	Mask      string   `json:"mask,omitempty"`
}

// Upload is a picture stored for image-to-image and inpainting.
type Upload struct {
	ID        string    `json:"id"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Bytes     int64     `json:"bytes"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
}

// Progress is a job's live state, as carried by the event stream and the
// "progress" member of a Generation.
type Progress struct {
	JobID    string  `json:"job_id"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"` // 0..1 over the whole batch
	// Image is the 0-based index of the image being rendered; once the job
	// has completed it is the number of images made.
	Image      int       `json:"image"`
	Images     int       `json:"images"` // batch size
	Step       int       `json:"step"`
	TotalSteps int       `json:"total_steps"`
	Message    string    `json:"message,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Terminal reports whether no further progress will follow.
func (p Progress) Terminal() bool { return terminal(p.State) }

// Image is one rendered image of a generation.
type Image struct {
	Name   string `json:"name"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Seed   uint32 `json:"seed"`
	// URL and ThumbnailURL are presigned and absolute: fetch them with
	// Download, without credentials.
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnail_url"`
}

// Price is what a generation costs in credits.
type Price struct {
	PerImage int    `json:"per_image"`
	Images   int    `json:"images"`
	Total    int    `json:"total"`
	Formula  string `json:"formula"`
}

// Links are the server-relative URLs of a generation's resources.
type Links struct {
	Self   string `json:"self"`
	Events string `json:"events"`
	Cancel string `json:"cancel"`
}

// Generation is a generation job as the API reports it.
type Generation struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	Progress *Progress       `json:"progress,omitempty"`
	Params   GenerateRequest `json:"params"`
	Price    Price           `json:"price"`
	// CreditsHeld are reserved while the job runs; CreditsSettled is nil
	// until the job ends and the charge is final.
	CreditsHeld    int        `json:"credits_held"`
	CreditsSettled *int       `json:"credits_settled"`
	Images         []Image    `json:"images"`
	Error          string     `json:"error,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	CompletedAt    *time.Time `json:"completed_at"`
	Links          Links      `json:"links"`
}

// Terminal reports whether the generation has ended.
func (g Generation) Terminal() bool { return terminal(g.Status) }

func terminal(state string) bool {
	return state == catalog.JobCompleted || state == catalog.JobFailed || state == catalog.JobCanceled
}

// Credits is the caller's balance.
type Credits struct {
	Available int `json:"available"`
	Held      int `json:"held"`
	Granted   int `json:"granted"`
}

// Problem is an RFC 9457 problem detail returned by the API. Responses that
// are not problem+json (a proxy's HTML error page, say) are reported as a
// Problem too, built from the status line and the start of the body, so
// callers need handle only one error type for HTTP failures.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Extensions holds the members beyond the standard ones, such as
	// "needed" and "available" on an insufficient-credits problem.
	Extensions map[string]json.RawMessage `json:"-"`
}

// Error reads "<title>: <detail> (HTTP <status>)", leaving out empty parts.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Title)
	if p.Detail != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(p.Detail)
	}
	if b.Len() == 0 {
		b.WriteString("request failed")
	}
	fmt.Fprintf(&b, " (HTTP %d)", p.Status)
	return b.String()
}

// FieldError is one entry of an invalid-request problem's "errors": the
// request field (its JSON name) and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldErrors lists the fields an invalid-request problem names; none for
// other problems.
func (p *Problem) FieldErrors() []FieldError {
	var errs []FieldError
	if raw, ok := p.Extensions["errors"]; ok {
		_ = json.Unmarshal(raw, &errs)
	}
	return errs
}

// Slug is the last path segment of Type, such as "insufficient-credits"
// for "https://easel.dev/problems/insufficient-credits".
func (p *Problem) Slug() string {
	return p.Type[strings.LastIndex(p.Type, "/")+1:]
}

// CreateGeneration submits req. The idempotencyKey lets the server recognise
// a repeated submission (it then answers 200 with the existing job instead
// of charging again); an empty key is replaced by a random one. Network
// errors and 5xx answers are retried up to 3 times with backoff, always with
// the same key, so a retry can never start a second job.
func (c *Client) CreateGeneration(ctx context.Context, req GenerateRequest, idempotencyKey string) (Generation, error) {
	if idempotencyKey == "" {
		idempotencyKey = uuid.NewString()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Generation{}, fmt.Errorf("create generation: encode request: %w", err)
	}
	hdr := http.Header{"Idempotency-Key": {idempotencyKey}}
	backoff := c.retryBackoff
	if backoff <= 0 {
		backoff = defaultRetryBackoff
	}
	var g Generation
	for attempt := 0; ; attempt++ {
		g = Generation{}
		err = c.do(ctx, http.MethodPost, "/v1/generations", body, hdr, &g)
		if err == nil {
			return g, nil
		}
		if attempt == createRetries || !transient(ctx, err) {
			break
		}
		if werr := sleep(ctx, backoff<<attempt); werr != nil {
			err = werr
			break
		}
	}
	return Generation{}, fmt.Errorf("create generation (idempotency key %s): %w", idempotencyKey, err)
}

// Upload stores a PNG, JPEG or WebP picture (at most 10 MiB) to start
// generations from; name is the file name sent with it.
func (c *Client) Upload(ctx context.Context, name string, picture io.Reader) (Upload, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", name)
	if err == nil {
		_, err = io.Copy(part, picture)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return Upload{}, fmt.Errorf("upload %s: %w", name, err)
	}
	var up Upload
	hdr := http.Header{"Content-Type": {mw.FormDataContentType()}}
	if err := c.do(ctx, http.MethodPost, "/v1/uploads", body.Bytes(), hdr, &up); err != nil {
		return Upload{}, fmt.Errorf("upload %s: %w", name, err)
	}
	return up, nil
}

// GetGeneration fetches generation id; a missing one is a 404 *Problem.
func (c *Client) GetGeneration(ctx context.Context, id string) (Generation, error) {
	var g Generation
	if err := c.do(ctx, http.MethodGet, generationPath(id), nil, nil, &g); err != nil {
		return Generation{}, fmt.Errorf("get generation %s: %w", id, err)
	}
	return g, nil
}

// CancelGeneration asks the server to stop generation id and release the
// credits it still holds. The returned Generation is the server's view right
// after the request, which may not yet be "canceled".
func (c *Client) CancelGeneration(ctx context.Context, id string) (Generation, error) {
	var g Generation
	if err := c.do(ctx, http.MethodDelete, generationPath(id), nil, nil, &g); err != nil {
		return Generation{}, fmt.Errorf("cancel generation %s: %w", id, err)
	}
	return g, nil
}

// Credits fetches the caller's credit balance.
func (c *Client) Credits(ctx context.Context) (Credits, error) {
	var cr Credits
	if err := c.do(ctx, http.MethodGet, "/v1/credits", nil, nil, &cr); err != nil {
		return Credits{}, fmt.Errorf("get credits: %w", err)
	}
	return cr, nil
}

// Download fetches a presigned URL and returns its body. No Authorization
// header is sent: the URL's own signature authorises it.
func (c *Client) Download(ctx context.Context, rawURL string) ([]byte, error) {
	// The query of a presigned URL is a bearer credential; keep it out of
	// error messages, which end up in terminals and logs.
	shown := redactURL(rawURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", shown, redactErr(err))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", shown, redactErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %w", shown, readProblem(resp))
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("download %s: read body: %w", shown, redactErr(err))
	}
	return b, nil
}

func generationPath(id string) string { return "/v1/generations/" + url.PathEscape(id) }

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// newRequest builds an authenticated request for an API path.
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends one API call and decodes a 2xx JSON answer into out. A non-2xx
// answer becomes a *Problem.
func (c *Client) do(ctx context.Context, method, path string, body []byte, hdr http.Header, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer func() {
		// Draining lets the transport reuse the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readProblem(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

// readProblem turns a failed response into a *Problem, decoding the body
// when it is JSON and synthesising one from the status otherwise.
func readProblem(resp *http.Response) *Problem {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	p := &Problem{}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if strings.HasSuffix(mt, "json") {
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) == nil && json.Unmarshal(body, p) == nil {
			for _, k := range []string{"type", "title", "status", "detail"} {
				delete(members, k)
			}
			if len(members) > 0 {
				p.Extensions = members
			}
		}
	}
	// The status line is authoritative: a body may omit "status" or come
	// from an intermediary that copied it wrong.
	p.Status = resp.StatusCode
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(resp.StatusCode)
	}
	if p.Detail == "" && !strings.HasSuffix(mt, "json") {
		p.Detail = snippet(body)
	}
	return p
}

// snippet is the start of a non-JSON error body, on one line, so the user
// sees something of e.g. a gateway's message.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// transient reports whether a failed call may succeed if repeated: network
// errors and 5xx answers, but not when the caller has given up.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var p *Problem
	if errors.As(err, &p) {
		return p.Status >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redactURL drops the query and fragment of a URL, where presigned URLs
// keep their signature.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// redactErr scrubs the URL that net/http puts into its *url.Error.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	return err
}

// DevLogin signs in through the development OIDC issuer that `easel dev`
// serves under /dev/oidc, returning an ID token for email.
func DevLogin(ctx context.Context, baseURL, email string) (string, error) {
	c := New(baseURL, "")
	body, err := json.Marshal(map[string]string{"email": email})
	if err != nil {
		return "", err
	}
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := c.do(ctx, http.MethodPost, "/dev/oidc/login", body, nil, &out); err != nil {
		return "", fmt.Errorf("development sign-in at %s: %w", baseURL, err)
	}
	return out.IDToken, nil
}
