package objects

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestDeleteFallsBackWithoutDeleteObjects uses a fake server that, like some
// S3-compatible stores, answers DeleteObjects with NotImplemented; versitygw
// supports it, so the real-server tests never reach the fallback.
func TestDeleteFallsBackWithoutDeleteObjects(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var deleted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Has("delete"):
			w.WriteHeader(http.StatusNotImplemented)
			_, _ = w.Write([]byte(`<Error><Code>NotImplemented</Code><Message>no batch delete</Message></Error>`))
		case r.Method == http.MethodDelete:
			mu.Lock()
			deleted = append(deleted, strings.TrimPrefix(r.URL.Path, "/bkt/"))
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "unexpected "+r.Method, http.StatusBadRequest)
		}
	}))
	defer srv.Close()

	s, err := New(context.Background(), Config{
		Bucket: "bkt", Region: "us-east-1", Endpoint: srv.URL, PathStyle: true,
		AccessKeyID: "k", SecretAccessKey: "s",
	})
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	keys := []string{"a.png", "b/c.webp", "d.png"}
	if err := s.Delete(context.Background(), keys...); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if !slices.Equal(deleted, keys) {
		t.Fatalf("deleted %q one by one, want %q", deleted, keys)
	}
}

func TestBatchErrorsIgnoresMissingKeys(t *testing.T) {
	t.Parallel()
	missing := types.Error{Key: aws.String("gone"), Code: aws.String("NoSuchKey")}
	if err := batchErrors([]types.Error{missing}); err != nil {
		t.Fatalf("missing key reported as failure: %v", err)
	}
	denied := types.Error{Key: aws.String("locked"), Code: aws.String("AccessDenied"), Message: aws.String("no")}
	err := batchErrors([]types.Error{missing, denied})
	if err == nil || !strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "gone") {
		t.Fatalf("err = %v, want only the AccessDenied key", err)
	}
}
