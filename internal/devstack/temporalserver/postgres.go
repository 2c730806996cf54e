package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	v12 "go.temporal.io/server/schema/postgresql/v12"
	"go.temporal.io/server/schema/sqlite"
	toolschema "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// Postgres keeps the server's state in two databases on a Postgres server,
// as a production cluster does: one for persistence (histories, mutable
// state, task queues) and one for visibility (listing and search).
type Postgres struct {
	// URL names the server and the persistence database, e.g.
	// postgres://postgres@127.0.0.1:5432/temporal?sslmode=disable. Query
	// parameters (sslmode, ...) are passed to the driver.
	URL string
	// VisibilityDatabase is the visibility database on the same server;
	// default: the persistence database's name + "_visibility".
	VisibilityDatabase string
	// MaxConns bounds each store's connection pool (default 20, as in
	// Temporal's sample configurations).
	MaxConns int
}

// Embedded schema directories of the server module (go.temporal.io/server/schema).
const (
	postgresSchema           = "postgresql/v12/temporal"
	postgresVisibilitySchema = "postgresql/v12/visibility"

	// The database the admin connection uses to create the others.
	postgresAdminDatabase = "postgres"
	defaultPostgresConns  = 20

	postgresStore           = "postgres"
	postgresVisibilityStore = "postgres-visibility"
)

// postgresStores is the parsed form of Postgres: a config per database.
type postgresStores struct {
	persistence, visibility *config.SQL
	adminURL                string // same server, the postgres database
}

// ParsePostgresURL checks a Postgres URL for use as Postgres.URL and
// returns the persistence database it names.
func ParsePostgresURL(raw string) (database string, err error) {
	s, err := postgresConfigs(Postgres{URL: raw})
	if err != nil {
		return "", err
	}
	return s.persistence.DatabaseName, nil
}

func postgresConfigs(p Postgres) (postgresStores, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return postgresStores{}, errorf("postgres URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return postgresStores{}, errorf("postgres URL %q: want postgres://user@host:port/database", u.Redacted())
	}
	database := strings.TrimPrefix(u.Path, "/")
	if database == "" || strings.Contains(database, "/") {
		return postgresStores{}, errorf("postgres URL %q names no database (e.g. /temporal)", u.Redacted())
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return postgresStores{}, errorf("postgres URL %q names no host", u.Redacted())
	}
	if port == "" {
		port = "5432"
	}
	attrs := map[string]string{}
	for k, v := range u.Query() {
		if len(v) != 1 {
			return postgresStores{}, errorf("postgres URL parameter %s given %d times", k, len(v))
		}
		attrs[k] = v[0]
	}
	password, _ := u.User.Password()
	conns := p.MaxConns
	if conns <= 0 {
		conns = defaultPostgresConns
	}
	store := func(db string) *config.SQL {
		return &config.SQL{
			PluginName:        pgplugin.PluginNamePGX,
			ConnectProtocol:   "tcp",
			ConnectAddr:       net.JoinHostPort(host, port),
			User:              u.User.Username(),
			Password:          password,
			DatabaseName:      db,
			ConnectAttributes: attrs,
			MaxConns:          conns,
			MaxIdleConns:      conns,
		}
	}
	visibility := p.VisibilityDatabase
	if visibility == "" {
		visibility = database + "_visibility"
	}
	admin := *u
	admin.Path = "/" + postgresAdminDatabase
	return postgresStores{persistence: store(database), visibility: store(visibility), adminURL: admin.String()}, nil
}

// preparePostgres creates the two databases when missing, sets up their
// schema on first use and upgrades it to the version this server module
// ships on every start, then registers the namespace.
func preparePostgres(ctx context.Context, s postgresStores, opts Options, stopping *atomic.Bool) error {
	logger := newTemporalLogger(opts.Logger, stopping)
	for _, db := range []struct {
		cfg             *config.SQL
		schema, version string
	}{
		{s.persistence, postgresSchema, v12.Version},
		{s.visibility, postgresVisibilitySchema, v12.VisibilityVersion},
	} {
		if err := ensurePostgresDatabase(ctx, s.adminURL, db.cfg.DatabaseName); err != nil {
			return err
		}
		if err := ensurePostgresSchema(db.cfg, db.schema, db.version, logger); err != nil {
			return err
		}
	}
	ns, err := sqlite.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return fmt.Errorf("namespace config: %w", err)
	}
	// Despite its package, CreateNamespaces works on any SQL store: it
	// writes the namespace row through the configured plugin.
	if err := sqlite.CreateNamespaces(s.persistence, ns); err != nil {
		return fmt.Errorf("create namespace %q: %w", opts.Namespace, err)
	}
	return nil
}

// ensurePostgresDatabase creates the database unless it exists.
func ensurePostgresDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to postgres for temporal's databases: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var exists bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil || exists {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another process won the race
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// ensurePostgresSchema runs Temporal's own schema tool (the code behind
// temporal-sql-tool setup-schema and update-schema) on the schema files
// embedded in the server module: a database without a recorded version gets
// the current schema.sql at once, and every start applies the versioned
// upgrades newer than the recorded version (none when it is current).
func ensurePostgresSchema(cfg *config.SQL, schemaName, version string, logger log.Logger) error {
	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return fmt.Errorf("connect to database %s: %w", cfg.DatabaseName, err)
	}
	defer conn.Close()
	if current, err := conn.ReadSchemaVersion(); err != nil || current == "" {
		setup := toolschema.NewSetupSchemaTask(conn, &toolschema.SetupConfig{SchemaName: schemaName, InitialVersion: version}, logger)
		if err := setup.Run(); err != nil {
			return fmt.Errorf("set up schema %s in database %s (drop the database if a setup was interrupted): %w",
				schemaName, cfg.DatabaseName, err)
		}
	}
	update := toolschema.NewUpdateSchemaTask(conn, &toolschema.UpdateConfig{DBName: cfg.DatabaseName, SchemaName: schemaName}, logger)
	if err := update.Run(); err != nil {
		return fmt.Errorf("upgrade schema %s in database %s: %w", schemaName, cfg.DatabaseName, err)
	}
	return nil
}
