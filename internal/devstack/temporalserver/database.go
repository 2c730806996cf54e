package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/schema/sqlite"
)

// preparePersistence makes the configured store ready (databases, schema,
// namespace) and returns the server's persistence configuration for it.
func preparePersistence(ctx context.Context, opts Options, stopping *atomic.Bool) (config.Persistence, error) {
	shards := int32(opts.HistoryShards)
	if opts.Postgres == nil {
		sqlCfg := sqlConfig(opts.DatabaseFile)
		if err := prepareDatabase(sqlCfg, opts); err != nil {
			return config.Persistence{}, err
		}
		return sqlitePersistence(sqlCfg, shards), nil
	}
	stores, err := postgresConfigs(*opts.Postgres)
	if err != nil {
		return config.Persistence{}, err
	}
	if err := preparePostgres(ctx, stores, opts, stopping); err != nil {
		return config.Persistence{}, errorf("%w", err)
	}
	return postgresPersistence(stores, shards), nil
}

// prepareDatabase makes the SQLite store ready before the server opens it:
// schema for a new file, and the namespace with its search attributes.
// In-memory databases get their schema from the SQLite plugin itself.
func prepareDatabase(sqlCfg *config.SQL, cfg Options) error {
	if cfg.DatabaseFile != "" {
		if err := ensureSchema(sqlCfg, cfg.DatabaseFile); err != nil {
			return err
		}
	}
	return ensureNamespace(sqlCfg, cfg)
}

// ensureSchema creates the tables only for a new file, so restarting
// `easel dev` on the same file keeps its workflows.
func ensureSchema(sqlCfg *config.SQL, file string) error {
	_, err := os.Stat(file)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat database file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	if err := sqlite.SetupSchema(sqlCfg); err != nil {
		return fmt.Errorf("set up sqlite schema: %w", err)
	}
	return nil
}

// ensureNamespace registers the namespace directly in the database, which is
// much faster than registering through a running server. It is a no-op for
// an existing namespace; attributes missing from one are added through the
// operator API once the server runs.
func ensureNamespace(sqlCfg *config.SQL, cfg Options) error {
	ns, err := sqlite.NewNamespaceConfig(clusterName, cfg.Namespace, false, cfg.SearchAttributes)
	if err != nil {
		return fmt.Errorf("namespace config: %w", err)
	}
	if err := sqlite.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("create namespace %q: %w", cfg.Namespace, err)
	}
	return nil
}
