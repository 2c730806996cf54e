// Command easel is the one binary of Easel: the API, the workers, migrations,
// the all-in-one development stack and a command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd, err := rootCommand().ExecuteContextC(ctx); err != nil {
		reportExit(os.Stderr, cmd, err)
		os.Exit(1)
	}
}

// reportExit says why the command failed. The services (api, worker) log
// in JSON unless LOG_FORMAT=text, so their last line is JSON too: a log
// pipeline then parses the line that says why the task stopped. Everything
// else is a command a person runs, which gets a plain line.
func reportExit(w io.Writer, cmd *cobra.Command, err error) {
	service := cmd != nil && (cmd.Name() == "api" || cmd.Name() == "worker")
	if service && os.Getenv("LOG_FORMAT") != "text" {
		slog.New(slog.NewJSONHandler(w, nil)).Error("easel "+cmd.Name()+" stopped", "err", err.Error())
		return
	}
	fmt.Fprintln(w, "easel:", err)
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "easel",
		Short:         "Easel runs image generation as a multi-tenant service on Temporal",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCommand(), apiCommand(), workerCommand(), migrateCommand(), generateCommand(), adminCommand(), billingCommand(), autoscaleCommand(), costCommand(), temporalCommand())
	requireSubcommands(root)
	return root
}

// requireSubcommands makes every command below root that only groups
// others (easel migrate, easel admin, ...) fail on an unknown or missing
// subcommand. Cobra checks that only for the root, and a group command
// would print its help and exit 0: `easel migrate upp` in a deploy script
// would pass without migrating.
func requireSubcommands(root *cobra.Command) {
	for _, cmd := range root.Commands() {
		requireSubcommands(cmd)
		if !cmd.HasSubCommands() || cmd.Runnable() {
			continue
		}
		cmd.SuggestionsMinimumDistance = 2 // as cobra's root suggests
		cmd.Args = cobra.ArbitraryArgs     // the arguments are checked below
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%s needs a subcommand; see %s --help", cmd.CommandPath(), cmd.CommandPath())
			}
			err := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				err += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return errors.New(err)
		}
	}
}
