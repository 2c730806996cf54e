package webhook_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel/easel/internal/webhook"
)

// The Standard Webhooks specification's published example: this secret,
// id, timestamp and body sign to this value in every conforming library.
func TestSignatureMatchesSpecVector(t *testing.T) {
	t.Parallel()
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	got, err := webhook.Sign(secret, id, time.Unix(1614265330, 0), body)
	if err != nil || got != want {
		t.Fatalf("signature = %q, %v; want %q", got, err, want)
	}
	h := http.Header{}
	if err := webhook.SetHeaders(h, id, time.Now(), body, secret); err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(secret, h, body); err != nil {
		t.Fatalf("a fresh signature does not verify: %v", err)
	}
	if err := webhook.Verify(secret, h, []byte(`{"test": 1}`)); err == nil {
		t.Fatal("a changed body verified")
	}
	old := http.Header{}
	_ = webhook.SetHeaders(old, id, time.Now().Add(-time.Hour), body, secret)
	if err := webhook.Verify(secret, old, body); err == nil {
		t.Fatal("an hour-old timestamp verified")
	}
}

// TestRotationSignsWithBoth: during a rotation's overlap a message carries
// a signature for each secret, and a receiver holding either verifies it.
func TestRotationSignsWithBoth(t *testing.T) {
	t.Parallel()
	current, _ := webhook.NewSecret()
	previous, _ := webhook.NewSecret()
	other, _ := webhook.NewSecret()
	body := []byte(`{"type":"generation.completed"}`)
	h := http.Header{}
	if err := webhook.SetHeaders(h, "evt_1", time.Now(), body, current, previous); err != nil {
		t.Fatal(err)
	}
	if sigs := strings.Fields(h.Get(webhook.HeaderSignature)); len(sigs) != 2 {
		t.Fatalf("signature header %q: want two signatures", h.Get(webhook.HeaderSignature))
	}
	for name, secret := range map[string]string{"current": current, "previous": previous} {
		if err := webhook.Verify(secret, h, body); err != nil {
			t.Errorf("the %s secret does not verify: %v", name, err)
		}
	}
	if err := webhook.Verify(other, h, body); err == nil {
		t.Error("a third secret verified")
	}
	if err := webhook.SetHeaders(http.Header{}, "evt_2", time.Now(), body, "", ""); err == nil {
		t.Error("a message with no secret was signed")
	}
}

func TestNewSecretIsStandard(t *testing.T) {
	t.Parallel()
	a, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := webhook.NewSecret()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, webhook.SecretPrefix))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) < 24 || len(key) > 64 || a == b {
		t.Fatalf("secrets %q, %q: want whsec_ and base64 of 24-64 random bytes", a, b)
	}
}

// Every class of address outside the public internet is refused, IPv4 and
// IPv6, also when an IPv6 address carries an IPv4 one; loopback only with
// AllowLocal.
func TestGuardRefusesNonPublicAddresses(t *testing.T) {
	t.Parallel()
	refused := map[string]string{
		"127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback",
		"10.1.2.3": "private", "172.16.0.1": "private", "172.31.255.254": "private", "192.168.1.1": "private",
		"fd00::1": "private", "fc12::7": "private",
		"169.254.169.254": "link-local", "169.254.0.1": "link-local", "fe80::1": "link-local",
		"0.0.0.0": "unspecified", "::": "unspecified",
		"224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
		"100.64.0.1": "CGNAT", "100.127.255.254": "CGNAT",
		"0.1.2.3": "this network", "255.255.255.255": "broadcast", "198.18.0.1": "benchmarking",
		"::ffff:127.0.0.1": "IPv4-mapped loopback", "::ffff:10.0.0.1": "IPv4-mapped private",
		"::ffff:169.254.169.254": "IPv4-mapped metadata", "64:ff9b::a00:1": "NAT64 to 10.0.0.1",
	}
	var on webhook.Guard
	for addr, class := range refused {
		if err := on.CheckAddr(netip.MustParseAddr(addr)); !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("%s (%s) was not refused: %v", addr, class, err)
		}
	}
	for _, addr := range []string{"93.184.216.34", "8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111"} {
		if err := on.CheckAddr(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("public %s refused: %v", addr, err)
		}
	}
	local := webhook.Guard{AllowLocal: true}
	for _, addr := range []string{"127.0.0.1", "::1"} {
		if err := local.CheckAddr(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("AllowLocal refused %s: %v", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.1", "169.254.169.254", "fd00::1", "100.64.0.1"} {
		if err := local.CheckAddr(netip.MustParseAddr(addr)); err == nil {
			t.Errorf("AllowLocal let %s through: only loopback is allowed", addr)
		}
	}
}

func TestGuardChecksURLs(t *testing.T) {
	t.Parallel()
	var on webhook.Guard
	for _, u := range []string{"https://example.com/hooks", "https://example.com:8443/a?b=c", "https://93.184.216.34/x",
		"https://1password.example/x", "https://0x.example/", "https://cafe.example/", "https://example.com:65535/"} {
		if err := on.CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://example.com/hooks", "ftp://example.com", "https://", "/relative", "example.com",
		"https://user:pw@example.com/", "https://localhost/x", "https://app.localhost/x", "https://127.0.0.1/",
		"https://[::1]/", "https://10.0.0.5/", "https://169.254.169.254/latest/meta-data/", "https://[fd00::1]/",
		"https://example.com/#frag", "https://exa mple.com/", "https://example.com/" + strings.Repeat("a", 3000),
		"javascript:alert(1)", "file:///etc/passwd", "https://2130706433/", "https://0x7f.1/", "https://017700000001/",
		"https://0/", "https://127.1/", "https://0X7F000001/", "https://example.com:99999/h", "https://example.com:0/h",
		"https://example.com:65536/"} {
		if err := on.CheckURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	local := webhook.Guard{AllowLocal: true}
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://localhost:9/x", "https://[::1]:443/"} {
		if err := local.CheckURL(u); err != nil {
			t.Errorf("AllowLocal refused %s: %v", u, err)
		}
	}
	if err := local.CheckURL("http://10.0.0.1/"); err == nil {
		t.Error("AllowLocal accepted a private address")
	}
}

// receiver is a local webhook receiver that verifies what it gets.
type receiver struct {
	*httptest.Server
	calls atomic.Int32
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func message(t *testing.T, url string) webhook.Message {
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return webhook.Message{URL: url, Secret: secret, ID: "evt-1", Body: []byte(`{"type":"generation.completed"}`)}
}

func TestSenderSignsWhatItSends(t *testing.T) {
	t.Parallel()
	var verified atomic.Bool
	var m webhook.Message
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		verified.Store(webhook.Verify(m.Secret, req.Header, body) == nil &&
			req.Header.Get("Content-Type") == "application/json" && req.Header.Get("webhook-id") == "evt-1")
		_, _ = io.WriteString(w, strings.Repeat("ok", 10<<10))
	})
	m = message(t, r.URL)
	res, err := webhook.Sender{Client: webhook.NewClient(webhook.Guard{AllowLocal: true})}.Send(context.Background(), m)
	if err != nil || !res.Delivered || res.StatusCode != 200 || !verified.Load() {
		t.Fatalf("send: %+v %v; verified %v", res, err, verified.Load())
	}
	if len(res.Excerpt) != webhook.MaxKeptBytes {
		t.Fatalf("kept %d bytes of the answer, want %d", len(res.Excerpt), webhook.MaxKeptBytes)
	}
}

// With the guard on, a receiver on this machine is never reached, even
// through a name (localhost) that only the dialer resolves.
func TestSenderRefusesLoopbackWithGuardOn(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	client := webhook.Sender{Client: webhook.NewClient(webhook.Guard{})}
	port := r.URL[strings.LastIndex(r.URL, ":")+1:]
	for _, u := range []string{r.URL, "http://localhost:" + port + "/"} {
		res, err := client.Send(context.Background(), message(t, u))
		if err != nil || res.Delivered || res.StatusCode != 0 || !strings.HasPrefix(res.Error, "refused: ") {
			t.Errorf("%s: %+v %v; want refused", u, res, err)
		}
	}
	if n := r.calls.Load(); n != 0 {
		t.Fatalf("the receiver was called %d times", n)
	}
}

func TestSenderDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	target := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target.URL, http.StatusTemporaryRedirect)
	})
	res, err := webhook.Sender{Client: webhook.NewClient(webhook.Guard{AllowLocal: true})}.Send(context.Background(), message(t, r.URL))
	if err != nil || res.Delivered || res.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(res.Error, "redirect") {
		t.Fatalf("send: %+v %v; want a failed attempt naming the redirect", res, err)
	}
	if target.calls.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestSenderTimesOutSlowReceivers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	defer close(release)
	client := webhook.NewClient(webhook.Guard{AllowLocal: true})
	client.Timeout = 200 * time.Millisecond
	res, err := webhook.Sender{Client: client}.Send(context.Background(), message(t, r.URL))
	if err != nil || res.Delivered || !strings.HasPrefix(res.Error, "timed out") || res.Duration < 200*time.Millisecond {
		t.Fatalf("send: %+v %v; want a timed-out attempt", res, err)
	}
}

func TestSenderFailsOnErrorStatus(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database \x00 down", http.StatusServiceUnavailable)
	})
	res, err := webhook.Sender{Client: webhook.NewClient(webhook.Guard{AllowLocal: true})}.Send(context.Background(), message(t, r.URL))
	if err != nil || res.Delivered || res.StatusCode != 503 || res.Excerpt != "database  down\n" {
		t.Fatalf("send: %+v %v", res, err)
	}
}

// A host that does not resolve is reported by name, without the address of
// the resolver that was asked (the sending side's network is not the
// customer's business).
func TestSenderReportsUnresolvableHostsPlainly(t *testing.T) {
	t.Parallel()
	m := message(t, "https://no-such-host.invalid/hook")
	res, err := webhook.Sender{Client: webhook.NewClient(webhook.Guard{})}.Send(context.Background(), m)
	if err != nil || res.Delivered {
		t.Fatalf("send: %+v %v", res, err)
	}
	if !strings.Contains(res.Error, "no-such-host.invalid") || strings.Contains(res.Error, ":53") ||
		strings.Contains(res.Error, " on ") || strings.Contains(res.Error, "dial tcp") {
		t.Fatalf("error %q", res.Error)
	}
}
