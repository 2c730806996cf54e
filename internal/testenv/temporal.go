package testenv

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/easel/easel/internal/devstack/temporalserver"
)

// Temporal starts an in-memory embedded Temporal server for the test, with
// the given custom search attributes, and returns a client on it. Both stop
// when the test ends.
func Temporal(t testing.TB, searchAttributes map[string]enumspb.IndexedValueType) client.Client {
	t.Helper()
	_, c := TemporalServer(t, temporalserver.Options{SearchAttributes: searchAttributes})
	return c
}

// TemporalServer starts an embedded Temporal server with opts for the test
// and returns it with a client on it; tests that restart the server (crash
// tests, with opts.DatabaseFile) use the server handle.
func TemporalServer(t testing.TB, opts temporalserver.Options) (*temporalserver.Server, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := temporalserver.Start(ctx, opts)
	if err != nil {
		Unavailable(t, "embedded temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	// Workers log through the client; tests only want warnings and worse.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.HostPort(), Namespace: srv.Namespace(),
		Logger: sdklog.NewStructuredLogger(quiet)})
	if err != nil {
		t.Fatalf("dial embedded temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

// TemporalPostgres names two fresh databases on the test Postgres server
// (EASEL_TEST_DATABASE_URL, else the local one) for an embedded Temporal
// server's Postgres persistence; the server creates them at start, and they
// are dropped when the test ends (after its servers stopped: register this
// before starting them).
func TemporalPostgres(t testing.TB) *temporalserver.Postgres {
	t.Helper()
	base := Getenv("EASEL_TEST_DATABASE_URL", DefaultPostgresURL)
	name := "temporal_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	dbURL, err := databaseURL(base, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dropDatabase(t, base, name)
		dropDatabase(t, base, name+"_visibility")
	})
	return &temporalserver.Postgres{URL: dbURL}
}
