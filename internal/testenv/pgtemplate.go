package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easel/easel/schema"
)

// templatePrefix starts the name of every migrated template database. The
// rest of the name is a hash of the migration files, so test processes of
// the same checkout, in any package, share one template, and a changed
// migration gets a template of its own instead of a stale one.
const templatePrefix = "easel_tmpl_"

// readyTemplate remembers, for this process, the template found ready,
// so only the first test of a process looks it up or builds it.
var readyTemplate struct {
	sync.Mutex
	name string
}

// migratedTemplate returns the name of a template database holding every
// migration under root/schema/migrations, building it first if no test
// process has yet.
func migratedTemplate(ctx context.Context, admin *pgx.Conn, base, root string) (string, error) {
	readyTemplate.Lock()
	defer readyTemplate.Unlock()
	if readyTemplate.name != "" {
		return readyTemplate.name, nil
	}
	name, err := templateName(filepath.Join(root, "schema", "migrations"))
	if err != nil {
		return "", err
	}
	if err := ensureTemplate(ctx, admin, base, name); err != nil {
		return "", err
	}
	readyTemplate.name = name
	return name, nil
}

// templateName hashes the names and contents of the migration files in dir,
// the files the schema package embeds.
func templateName(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return "", fmt.Errorf("find migrations in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("find migrations: no *.sql files in %s", dir)
	}
	h := sha256.New()
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hash migrations: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(body))
		h.Write(body)
	}
	return templatePrefix + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate builds the template name unless it is ready. go test runs
// packages in parallel processes; a Postgres advisory lock makes one of them
// build it while the others wait and then find it ready.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, base, name string) error {
	if ready, err := isTemplate(ctx, admin, name); err != nil || ready {
		return err
	}
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", name); err != nil {
		return fmt.Errorf("lock template %s: %w", name, err)
	}
	// A closed session drops its locks too, so a failed unlock cannot wedge
	// other processes for longer than this test's connection lives.
	defer func() { _, _ = admin.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext($1))", name) }()
	if ready, err := isTemplate(ctx, admin, name); err != nil || ready {
		return err
	}
	return buildTemplate(ctx, admin, base, name)
}

// isTemplate reports whether database name exists and is marked a template,
// which happens only once its migrations have all been applied.
func isTemplate(ctx context.Context, admin *pgx.Conn, name string) (bool, error) {
	var ready bool
	err := admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&ready)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up template %s: %w", name, err)
	}
	return ready, nil
}

// buildTemplate creates database name, migrates it and marks it a template.
func buildTemplate(ctx context.Context, admin *pgx.Conn, base, name string) error {
	// A database of this name that is not a template is what a run stopped
	// while migrating left behind.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop unfinished template %s: %w", name, err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template %s: %w", name, err)
	}
	dbURL, err := databaseURL(base, name)
	if err != nil {
		return err
	}
	if err := migrate(ctx, dbURL); err != nil {
		return fmt.Errorf("migrate template %s: %w", name, err)
	}
	// CREATE DATABASE ... TEMPLATE fails while any session is connected to
	// the template; refusing connections keeps it copyable.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark %s a template: %w", name, err)
	}
	return nil
}

// migrate applies every migration to the database at dbURL and closes its
// connections before returning.
func migrate(ctx context.Context, dbURL string) error {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	_, err = schema.Up(ctx, pool)
	return err
}
