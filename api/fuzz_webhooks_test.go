package api

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/easel/easel/internal/webhook"
)

// FuzzWebhookEndpoint feeds arbitrary bodies to the checks of POST
// /v1/webhook-endpoints with the production guard: either a 400
// problem+json, or an https URL that names no loopback, private,
// link-local or metadata address literally, with known event types and a
// bounded description; never a panic.
func FuzzWebhookEndpoint(f *testing.F) {
	for _, seed := range []string{
		`{"url":"https://example.com/hooks","events":["generation.completed"],"description":"prod"}`,
		`{"url":"http://example.com/hooks"}`, `{"url":"https://127.0.0.1/x"}`, `{"url":"https://[::1]/x"}`,
		`{"url":"https://169.254.169.254/latest/meta-data"}`, `{"url":"https://[::ffff:10.0.0.1]/"}`,
		`{"url":"https://localhost./x"}`, `{"url":"https://user:pw@example.com/"}`, `{"url":"https://example.com/#f"}`,
		`{"url":"https://example.com","events":[]}`, `{"url":"https://example.com","events":["nope"]}`,
		`{"url":"https://example.com","events":null}`, `{"url":"https://example.com","description":"\u0007"}`,
		`{"url":"ftp://example.com"}`, `{"url":""}`, `{}`, `{"url":"https://0x7f.1/"}`, `{"url":"https://100.64.0.1/"}`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer(8192)
	guard := webhook.Guard{}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req CreateWebhookEndpointRequest
		if _, ok := fuzzDecode(t, s, "/v1/webhook-endpoints", body, &req); !ok {
			return
		}
		ep, errs := req.validate(guard)
		if !fieldErrorsNamed(t, errs) {
			return
		}
		u, err := url.Parse(ep.URL)
		if err != nil || u.Scheme != "https" || u.User != nil {
			t.Fatalf("accepted URL %q", ep.URL)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if a, err := netip.ParseAddr(host); err == nil && (a.Unmap().IsLoopback() || a.Unmap().IsPrivate() ||
			a.Unmap().IsLinkLocalUnicast() || a.Unmap().IsUnspecified()) {
			t.Fatalf("accepted a non-public address: %q", ep.URL)
		}
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			t.Fatalf("accepted loopback by name: %q", ep.URL)
		}
		for _, e := range ep.Events {
			if !slices.Contains(webhook.EventTypes, e) {
				t.Fatalf("accepted event type %q", e)
			}
		}
	})
}
