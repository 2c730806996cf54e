package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// TestAdminDefaultsToDevDatabase runs `easel admin promote` with no
// DATABASE_URL: it must work on the development database, as `easel dev` does.
func TestAdminDefaultsToDevDatabase(t *testing.T) {
	oldDB, oldRedis := devDatabaseURL, devRedisURL
	t.Cleanup(func() { devDatabaseURL, devRedisURL = oldDB, oldRedis })
	devDatabaseURL, devRedisURL = testenv.PostgresURL(t), testenv.RedisURL(t)
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	pool, err := store.Connect(t.Context(), devDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.New(pool).UpsertUser(t.Context(), "ops@example.com", "ops", "dev|ops@example.com"); err != nil {
		t.Fatal(err)
	}
	root := rootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"admin", "promote", "--email", "ops@example.com"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("admin promote without DATABASE_URL: %v (stderr %s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "is now an admin") || !strings.Contains(errOut.String(), "development database") {
		t.Fatalf("stdout %q, stderr %q", out.String(), errOut.String())
	}
}
