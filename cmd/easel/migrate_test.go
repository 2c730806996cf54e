package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/testenv"
)

// migrate says what it applied and what it rolled back, and says so when
// there is nothing to do.
func TestMigrateSaysWhatItDid(t *testing.T) {
	t.Setenv("DATABASE_URL", testenv.PostgresURL(t)) // migrated already
	migrate := func(verb string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := migrateCommand()
		cmd.SetArgs([]string{verb})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		done := make(chan error, 1)
		go func() { done <- cmd.Execute() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("migrate %s: %v\n%s", verb, err, out.String())
			}
		case <-time.After(time.Minute):
			t.Fatalf("migrate %s did not finish", verb)
		}
		return strings.TrimSpace(out.String())
	}
	if got := migrate("up"); got != "nothing to apply: the database is up to date" {
		t.Fatalf("up on a migrated database: %q", got)
	}
	latest := migrate("down")
	if !strings.HasPrefix(latest, "rolled back 000") || !strings.HasSuffix(latest, ".sql") {
		t.Fatalf("down: %q", latest)
	}
	name := strings.TrimPrefix(latest, "rolled back ")
	if got := migrate("up"); got != "applied "+name {
		t.Fatalf("up after down: %q, want the one rolled back (%s)", got, name)
	}
}
