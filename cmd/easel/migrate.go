package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/schema"
)

func migrateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply or inspect database migrations (DATABASE_URL)"}
	run := func(name, short string, fn func(cmd *cobra.Command, d *deps) error) *cobra.Command {
		return &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(config.Needs{})
			if err != nil {
				return err
			}
			d, err := connect(cmd.Context(), cfg, config.Needs{Database: true}, log)
			if err != nil {
				return err
			}
			defer d.close()
			return fn(cmd, d)
		}}
	}
	cmd.AddCommand(
		run("up", "Apply every pending migration", func(cmd *cobra.Command, d *deps) error {
			applied, err := schema.Up(cmd.Context(), d.store.Pool())
			if err != nil {
				return err
			}
			for _, name := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", name)
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to apply: the database is up to date")
			}
			return nil
		}),
		run("down", "Roll back the latest migration", func(cmd *cobra.Command, d *deps) error {
			name, err := schema.Down(cmd.Context(), d.store.Pool())
			if err != nil {
				return err
			}
			if name == "" {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to roll back: no migration is applied")
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), "rolled back", name)
			return nil
		}),
		run("status", "List migrations and whether each is applied", func(cmd *cobra.Command, d *deps) error {
			st, err := schema.Status(cmd.Context(), d.store.Pool())
			if err != nil {
				return err
			}
			for _, s := range st {
				fmt.Fprintf(cmd.OutOrStdout(), "%-8s %s\n", s.State, s.Source.Path)
			}
			return nil
		}),
	)
	return cmd
}
