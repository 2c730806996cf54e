// Command easel is the one binary of Easel: the API, the workers, migrations,
// the all-in-one development stack and a command-line client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "easel:", err)
		os.Exit(1)
	}
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
	return root
}
