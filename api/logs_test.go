package api_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/testenv"
)

// The logs are JSON, each request line carries its request id and user,
// and no credential ever reaches them: ID tokens, API keys (good or
// forged), webhook signatures and secrets.
func TestLogsCarryIDsAndNoSecrets(t *testing.T) {
	logs := &testenv.Buffer{}
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true, logs: logs})
	u, token := s.newUser(t, "pro", 100)
	key := createAPIKey(t, s, token, map[string]any{"name": "ci"}).Key
	if r := s.do(t, http.MethodGet, "/v1/me", key, nil); r.status != http.StatusOK {
		t.Fatalf("me with key: %d", r.status)
	}
	hooks := newHookReceiver(t, answer(http.StatusOK))
	endpoint := s.createEndpoint(t, token, map[string]any{"url": hooks.URL})
	var account api.WebhookSecretView
	s.do(t, http.MethodGet, "/v1/webhook-secret", token, nil).decode(t, &account)
	forged := key[:len(key)-4] + "abcd"
	if r := s.do(t, http.MethodGet, "/v1/me", forged, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("forged key: %d", r.status)
	}
	r := s.do(t, http.MethodPost, "/v1/generations", key, map[string]any{"prompt": "a quiet harbour", "model": "sd-1.5",
		"width": 512, "height": 512}, "Idempotency-Key", "logs-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("generate: %d %s", r.status, r.body)
	}
	ev, sig := signedEvent(t, s.webhookSecret, "evt_logs", "customer.deleted", map[string]any{"id": "cus_none", "object": "customer"}, time.Now())
	if r := s.webhook(t, ev, sig); r.status != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	if r := s.webhook(t, ev, "t=1,v1=deadbeef"); r.status != http.StatusBadRequest {
		t.Fatalf("bad signature: %d", r.status)
	}
	waitFor(t, "job finished", func() bool {
		var st string
		_ = s.store.Pool().QueryRow(t.Context(), `SELECT status FROM generations WHERE user_id = $1`, u.ID).Scan(&st)
		return st == "completed"
	})

	sent := hooks.wait(t, 1)[0].header.Get("webhook-signature")
	waitFor(t, "webhook delivered", func() bool {
		return strings.Contains(logs.String(), `"msg":"webhook attempt"`)
	})
	out := logs.String()
	if testing.Verbose() {
		t.Log(out)
	}
	for name, secret := range map[string]string{"ID token": token, "API key": key, "forged key": forged,
		"webhook secret": s.webhookSecret, "signature": sig[strings.Index(sig, "v1=")+3:], "stripe key": "sk_test_easel",
		"endpoint secret": strings.TrimPrefix(endpoint.Secret, "whsec_"), "account webhook secret": strings.TrimPrefix(account.Secret, "whsec_"),
		"outgoing signature": strings.TrimPrefix(sent, "v1,")} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	var requests, generations int
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %s", sc.Text())
		}
		if line["msg"] != "http request" {
			continue
		}
		requests++
		if line["route"] == "/v1/generations" && line["method"] == "POST" {
			job, _ := line["job_id"].(string)
			if job == "" || line["workflow_id"] != "generation/"+job {
				t.Errorf("generation request line without job and workflow ids: %s", sc.Text())
			}
			generations++
		}
		if line["request_id"] == "" || line["request_id"] == nil {
			t.Errorf("request line without request_id: %s", sc.Text())
		}
		if path, _ := line["route"].(string); strings.HasPrefix(path, "/v1/") && path != "/v1/webhooks/stripe" &&
			line["status"] != float64(http.StatusUnauthorized) && line["user_id"] != u.ID {
			t.Errorf("authenticated request line without the user: %s", sc.Text())
		}
	}
	if generations != 1 {
		t.Errorf("%d generation request lines, want 1", generations)
	}
	if requests < 5 {
		t.Fatalf("%d request lines logged, want every request", requests)
	}
}
