package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Delivery limits: a receiver gets 5 s to accept the connection and 15 s
// for the whole exchange; Easel reads at most 64 KiB of its answer and
// keeps the first 4 KiB.
const (
	ConnectTimeout = 5 * time.Second
	RequestTimeout = 15 * time.Second
	MaxReadBytes   = 64 << 10
	MaxKeptBytes   = 4 << 10
)

// UserAgent names Easel to receivers.
const UserAgent = "Easel-Webhooks/1 (+https://easel.dev/docs/webhooks)"

// NewClient returns the HTTP client webhooks are sent with: every
// connection goes through g.Control, no proxy from the environment (which
// would connect on the caller's behalf, past the check), no redirects, and
// the timeouts above.
func NewClient(g Guard) *http.Client {
	dialer := &net.Dialer{Timeout: ConnectTimeout, Control: g.Control}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   ConnectTimeout,
		ResponseHeaderTimeout: RequestTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   RequestTimeout,
		// A redirect is answered, not followed: the Location could point
		// anywhere, and the receiver must be the URL that was registered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Sender signs and POSTs webhooks.
type Sender struct {
	Client *http.Client
	// Now is the clock of the webhook-timestamp header (nil: time.Now).
	Now func() time.Time
}

// Message is one webhook to send.
type Message struct {
	URL    string
	Secret string
	// PreviousSecret, when set, signs beside Secret (a rotation's overlap).
	PreviousSecret string
	ID             string // webhook-id: the event id, the same on every attempt
	Body           []byte
}

// Result is one attempt's outcome. Delivered is true for a 2xx answer;
// anything else (another status, a redirect, no answer) is a failure to be
// retried.
type Result struct {
	Delivered  bool
	StatusCode int    // 0 when no HTTP answer came
	Excerpt    string // the start of the answer's body, at most MaxKeptBytes
	Error      string // why the attempt failed; "" when delivered
	StartedAt  time.Time
	Duration   time.Duration
}

// Send makes one attempt. Only a signing failure (an unreadable secret) is
// returned as an error; everything the receiver or the network does is in
// the Result.
func (s Sender) Send(ctx context.Context, m Message) (Result, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	start := now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{}, fmt.Errorf("build webhook request %s: %w", m.ID, err)
	}
	if err := SetHeaders(req.Header, m.ID, start, m.Body, m.Secret, m.PreviousSecret); err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	res := Result{StartedAt: start}
	resp, err := s.Client.Do(req)
	if err != nil {
		res.Duration, res.Error = time.Since(start), describe(err)
		return res, nil
	}
	defer resp.Body.Close()
	// The status decides; a body that breaks off only shortens the excerpt.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxReadBytes))
	res.Duration, res.StatusCode, res.Excerpt = time.Since(start), resp.StatusCode, excerpt(body)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Error = fmt.Sprintf("redirect (%d) to %q not followed: register the final URL", resp.StatusCode,
			truncate(resp.Header.Get("Location"), 200))
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		res.Error = fmt.Sprintf("the receiver answered %d", resp.StatusCode)
	default:
		// A 2xx says the receiver took it, even if its body then broke off.
		res.Delivered = true
	}
	return res, nil
}

// describe says why no answer came, without the Go error chain's noise and
// without what the sending side's network looks like (its resolver's
// address): the customer reads it.
func describe(err error) string {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrForbiddenAddress) && errors.As(err, &opErr):
		return "refused: " + truncate(opErr.Err.Error(), 300)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return truncate(fmt.Sprintf("the host %s does not exist (DNS: no such host)", dnsErr.Name), 500)
		}
		return truncate(fmt.Sprintf("the host %s could not be resolved (DNS: %s)", dnsErr.Name, dnsErr.Err), 500)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timed out (the receiver must answer within %s)", RequestTimeout)
	}
	return truncate(err.Error(), 500)
}

// excerpt keeps the start of an answer as valid text Postgres can store.
func excerpt(b []byte) string {
	if len(b) > MaxKeptBytes {
		b = b[:MaxKeptBytes]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
