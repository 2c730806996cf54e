package main

import (
	"github.com/spf13/cobra"
)

func generateCommand() *cobra.Command {
	return &cobra.Command{Use: "generate", Short: "Submit a generation and save the images"}
}
