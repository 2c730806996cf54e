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

// TestGroupCommandsRefuseUnknownSubcommands: a mistyped or missing
// subcommand of a command that only groups others fails (a deploy script
// stops) and suggests the one meant; a real subcommand's bad flag fails
// before any database is touched.
func TestGroupCommandsRefuseUnknownSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "upp"}, `unknown command "upp" for "easel migrate"; did you mean up?`},
		{[]string{"admin", "bogus"}, `unknown command "bogus" for "easel admin"`},
		{[]string{"autoscale", "simulat"}, "did you mean simulate?"},
		{[]string{"migrate"}, "easel migrate needs a subcommand"},
		{[]string{"billing"}, "easel billing needs a subcommand"},
		{[]string{"admin", "grant", "--email", "a@example.com", "--credits", "5", "--reason", "x", "--days", "3651"},
			"--days must be between 1 and 3650"},
	} {
		root := rootCommand()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(tc.args)
		err := root.ExecuteContext(t.Context())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("easel %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
