package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/easel/easel/internal/apiclient"
	"github.com/easel/easel/internal/catalog"
)

func generateCommand() *cobra.Command {
	var (
		req         apiclient.GenerateRequest
		seed        int64
		apiURL, tok string
		outDir      string
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Submit a generation, follow its progress and save the images",
		Example: `  easel generate --prompt "a lighthouse at dusk"
  easel generate --prompt "a red fox" --model sdxl --width 1024 --height 1024 --batch 2 --out ./images`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Prompt == "" {
				return errors.New("--prompt is required")
			}
			if seed >= 0 {
				s := uint32(seed)
				req.Seed = &s
			}
			if tok == "" {
				// No token: sign in as the development user through the
				// development issuer that `easel dev` serves.
				var err error
				if tok, err = apiclient.DevLogin(cmd.Context(), apiURL, devEmail); err != nil {
					return fmt.Errorf("no --token or EASEL_TOKEN, and %w", err)
				}
			}
			c := apiclient.New(apiURL, tok)
			g, files, err := c.Generate(cmd.Context(), req, outDir, cmd.ErrOrStderr())
			if err != nil {
				var p *apiclient.Problem
				if errors.As(err, &p) {
					return fmt.Errorf("%s: %s", p.Title, p.Detail)
				}
				return err
			}
			out := cmd.OutOrStdout()
			settled := 0
			if g.CreditsSettled != nil {
				settled = *g.CreditsSettled
			}
			fmt.Fprintf(out, "generation %s %s: %d credits\n", g.ID, g.Status, settled)
			for _, f := range files {
				fmt.Fprintln(out, f)
			}
			if credits, err := c.Credits(cmd.Context()); err == nil {
				fmt.Fprintf(out, "balance: %d credits available\n", credits.Available)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Prompt, "prompt", "", "what to draw (required)")
	f.StringVar(&req.NegativePrompt, "negative-prompt", "", "what to avoid")
	f.StringVar(&req.Model, "model", catalog.ModelSD15, "model family: "+strings.Join(catalog.ModelFamilies(), ", "))
	f.IntVar(&req.Width, "width", 512, "width in pixels (multiple of 8)")
	f.IntVar(&req.Height, "height", 512, "height in pixels (multiple of 8)")
	f.IntVar(&req.Steps, "steps", 30, "diffusion steps")
	f.Float64Var(&req.CFGScale, "cfg-scale", 7, "classifier-free guidance scale")
	f.IntVar(&req.BatchSize, "batch", 1, "images to generate")
	f.Int64Var(&seed, "seed", -1, "seed (default: random)")
	f.StringVar(&apiURL, "api", envOr("EASEL_API_URL", "http://127.0.0.1:8080"), "API base URL ($EASEL_API_URL)")
	f.StringVar(&tok, "token", os.Getenv("EASEL_TOKEN"), "bearer token: an ID token or API key ($EASEL_TOKEN; default: sign in to `easel dev` as the development user)")
	f.StringVar(&outDir, "out", ".", "folder to save the PNG files in")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
