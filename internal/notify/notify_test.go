package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/easel/easel/internal/notify"
)

func TestLogSender(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := notify.LogSender{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := s.Send(context.Background(), notify.Notice{To: "a@example.com", Subject: "Low", Body: "5 left", Kind: "low_balance"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"to=a@example.com", "kind=low_balance", "subject=Low", `body="5 left"`} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("log %q lacks %q", buf.String(), want)
		}
	}
}

type sesRequest struct {
	method, path, auth string
	body               map[string]any
}

func sesServer(t *testing.T, status int) (*httptest.Server, *[]sesRequest) {
	var mu sync.Mutex
	var reqs []sesRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		mu.Lock()
		reqs = append(reqs, sesRequest{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.Header().Set("X-Amzn-ErrorType", "MessageRejected")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"message":"Email address is not verified."}`))
			return
		}
		_, _ = w.Write([]byte(`{"MessageId":"msg-1"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func newSES(t *testing.T, endpoint string) *notify.SESSender {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1}
	s, err := notify.NewSESSender(cfg, "Easel <billing@easel.dev>", endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSESSenderRequest(t *testing.T) {
	t.Parallel()
	srv, reqs := sesServer(t, http.StatusOK)
	s := newSES(t, srv.URL)
	err := s.Send(context.Background(), notify.Notice{To: "user@example.com", Subject: "Credits low",
		Body: "You have 4 credits left.", Kind: "low_balance"})
	if err != nil {
		t.Fatal(err)
	}
	if len(*reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(*reqs))
	}
	r := (*reqs)[0]
	if r.method != http.MethodPost || r.path != "/v2/email/outbound-emails" {
		t.Fatalf("request %s %s", r.method, r.path)
	}
	if !strings.HasPrefix(r.auth, "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(r.auth, "/ses/aws4_request") {
		t.Fatalf("authorization %q is not a SigV4 signature for ses", r.auth)
	}
	got, _ := json.Marshal(r.body)
	want := `{"Content":{"Simple":{"Body":{"Text":{"Charset":"UTF-8","Data":"You have 4 credits left."}},` +
		`"Subject":{"Charset":"UTF-8","Data":"Credits low"}}},"Destination":{"ToAddresses":["user@example.com"]},` +
		`"EmailTags":[{"Name":"kind","Value":"low_balance"}],"FromEmailAddress":"Easel \u003cbilling@easel.dev\u003e"}`
	if string(got) != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}

func TestSESSenderErrors(t *testing.T) {
	t.Parallel()
	srv, _ := sesServer(t, http.StatusBadRequest)
	s := newSES(t, srv.URL)
	err := s.Send(context.Background(), notify.Notice{To: "user@example.com", Subject: "s", Body: "b", Kind: "low_balance"})
	if err == nil || !strings.Contains(err.Error(), "MessageRejected") {
		t.Fatalf("err = %v, want the SES rejection", err)
	}
	if err := s.Send(context.Background(), notify.Notice{Subject: "s"}); err == nil {
		t.Fatal("sent without a recipient")
	}
	if _, err := notify.NewSESSender(aws.Config{}, "", ""); err == nil {
		t.Fatal("built a sender without a From address")
	}
}
