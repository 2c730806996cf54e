package testenv

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPostgresURL is the server the tests use unless EASEL_TEST_DATABASE_URL
// names another: the local Postgres with trust authentication.
const DefaultPostgresURL = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL creates a fresh, migrated database for the test, drops it when
// the test ends, and returns its connection URL. The database is a copy of a
// template migrated once per set of migrations (see migratedTemplate), which
// is much cheaper than running every migration for every test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	// Generous: the first test may wait while another test process migrates
	// the template.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := Getenv("EASEL_TEST_DATABASE_URL", DefaultPostgresURL)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(t, "postgres at %s: %v", base, err)
	}
	defer admin.Close(ctx)

	tmpl, err := migratedTemplate(ctx, admin, base, RepoRoot(t))
	if err != nil {
		t.Fatalf("prepare migrated template database: %v", err)
	}
	name := "easel_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl); err != nil {
		t.Fatalf("create test database from %s: %v", tmpl, err)
	}
	t.Cleanup(func() { dropDatabase(t, base, name) })

	dbURL, err := databaseURL(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return dbURL
}

// Postgres returns a pool on a fresh, migrated database for the test.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(PostgresURL(t))
	if err != nil {
		t.Fatalf("parse pool config: %v", err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// databaseURL is base with its database replaced by name.
func databaseURL(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", base, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(t testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Logf("drop test database %s: %v", name, err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		t.Logf("drop test database %s: %v", name, err)
	}
}
