package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/devstack/temporalserver"
)

// temporalDBFlag is --temporal-db, which overrides TEMPORAL_DB.
func temporalDBFlag(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "temporal-db", "", "where the embedded Temporal server keeps its state: sqlite (a file in --state-dir) or "+
		"postgres (databases temporal and temporal_visibility on DATABASE_URL's server, or TEMPORAL_DATABASE_URL); default TEMPORAL_DB, else sqlite")
}

// embeddedTemporal is the embedded server's persistence for cfg.TemporalDB
// (validated), with the namespace and Easel's search attributes; where says
// where its state lives, for the logs.
func embeddedTemporal(cfg config.Config, stateDir string) (opts temporalserver.Options, where string, err error) {
	opts = temporalserver.Options{Namespace: cfg.TemporalNamespace, SearchAttributes: api.SearchAttributes}
	if cfg.TemporalDB == config.TemporalDBPostgres {
		u, err := cfg.TemporalPostgresURL()
		if err != nil {
			return opts, "", err
		}
		opts.Postgres = &temporalserver.Postgres{URL: u}
		return opts, "postgres " + redact(u), nil
	}
	if opts.DatabaseFile, err = filepath.Abs(filepath.Join(stateDir, "temporal.db")); err != nil {
		return opts, "", err
	}
	return opts, opts.DatabaseFile, nil
}

// temporalCommand runs the embedded Temporal server alone, for a stack of
// separate processes (API, workers) on one machine: the scale-out benchmark,
// or a development setup closer to production's than easel dev.
func temporalCommand() *cobra.Command {
	var (
		stateDir, temporalDB string
		port, uiPort, shards int
	)
	cmd := &cobra.Command{
		Use:   "temporal",
		Short: "Run the embedded Temporal server (and its Web UI) alone, on SQLite or Postgres",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			cfg.TemporalDB = cmp.Or(temporalDB, cfg.TemporalDB)
			if err := cfg.Validate(config.Needs{EmbeddedTemporal: true}); err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			log := processLogger(cfg)
			if err := os.MkdirAll(stateDir, 0o755); err != nil {
				return fmt.Errorf("create state dir: %w", err)
			}
			opts, where, err := embeddedTemporal(cfg, stateDir)
			if err != nil {
				return err
			}
			opts.Port, opts.UIPort, opts.HistoryShards = port, uiPort, shards
			opts.Logger = log.With("component", "temporal")
			return runTemporal(cmd.Context(), opts, where, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state-dir", ".state", "folder for the SQLite database (with --temporal-db sqlite)")
	f.IntVar(&port, "port", 7233, "frontend gRPC port")
	f.IntVar(&uiPort, "ui-port", 8233, "Web UI port (0: no UI)")
	f.IntVar(&shards, "history-shards", 1, "history shards; fixed when the database is created")
	temporalDBFlag(f, &temporalDB)
	return cmd
}

func runTemporal(ctx context.Context, opts temporalserver.Options, where string, log *slog.Logger) error {
	log.Info("starting embedded Temporal", "db", where, "history_shards", opts.HistoryShards)
	srv, err := temporalserver.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("start embedded temporal: %w", err)
	}
	log.Info("temporal ready", "address", srv.HostPort(), "namespace", srv.Namespace(), "ui", srv.UIAddress())
	<-ctx.Done()
	return srv.Stop()
}
