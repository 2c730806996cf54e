package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
		strength    float64
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Submit a generation, follow its progress and save the images",
		Example: `  easel generate --prompt "a lighthouse at dusk"
  easel generate --prompt "a red fox" --model sdxl --width 1024 --height 1024 --batch 2 --out ./images
  easel generate --prompt "the same street in winter" --init-image street.jpg --strength 0.6
  easel generate --prompt "a red door" --init-image street.jpg --mask door-mask.png`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Prompt == "" {
				return errors.New("--prompt is required")
			}
			if err := checkGenerateFlags(cmd, seed, req); err != nil {
				return err
			}
			// Before anything is submitted (and charged): the images
			// must have somewhere to go.
			if err := checkOutDir(outDir); err != nil {
				return err
			}
			if cmd.Flags().Changed("seed") {
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
			given := map[string]string{"init_image": req.InitImage, "mask": req.Mask}
			if err := sources(cmd, c, &req, strength); err != nil {
				return err
			}
			g, files, err := c.Generate(cmd.Context(), req, outDir, cmd.ErrOrStderr())
			if err != nil {
				var p *apiclient.Problem
				if errors.As(err, &p) {
					return problemError(p, given)
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
	f.IntVar(&req.Width, "width", 0, "width in pixels, a multiple of 8 (default: the model's native size, or the init image's)")
	f.IntVar(&req.Height, "height", 0, "height in pixels, a multiple of 8 (default: the model's native size, or the init image's aspect)")
	f.IntVar(&req.Steps, "steps", 0, "diffusion steps (default: the server's, 30)")
	f.Float64Var(&req.CFGScale, "cfg-scale", 7, "classifier-free guidance scale")
	f.IntVar(&req.BatchSize, "batch", 0, "images to generate (default 1)")
	f.Int64Var(&seed, "seed", 0, "seed, 0 to 4294967295 (default: random)")
	f.StringVar(&apiURL, "api", envOr("EASEL_API_URL", "http://127.0.0.1:8080"), "API base URL ($EASEL_API_URL)")
	f.StringVar(&tok, "token", os.Getenv("EASEL_TOKEN"), "bearer token: an ID token or API key ($EASEL_TOKEN; default: sign in to easel dev as the development user)")
	f.StringVar(&outDir, "out", ".", "folder to save the PNG files in")
	f.StringVar(&req.InitImage, "init-image", "", "start from this picture: a PNG, JPEG or WebP file (uploaded first), an upload's id or one of your images' name")
	f.Float64Var(&strength, "strength", 0.75, "with --init-image (refused without it): how much of it is redrawn, 0 to 1")
	f.StringVar(&req.Mask, "mask", "", "with --init-image (refused without it): repaint only the white pixels of this mask (a file or an upload's id)")
	return cmd
}

// checkGenerateFlags refuses, by flag, values the command would otherwise
// have to change or drop before sending: a seed outside 32 bits, 0 or less
// where the server takes a default only when the field is left out, and
// --strength or --mask without --init-image. What depends on the plan
// (largest size, batch, steps) is the server's to say.
func checkGenerateFlags(cmd *cobra.Command, seed int64, req apiclient.GenerateRequest) error {
	var errs []error
	if req.InitImage == "" {
		for _, flag := range []string{"strength", "mask"} {
			if cmd.Flags().Changed(flag) {
				errs = append(errs, fmt.Errorf("--%s needs --init-image", flag))
			}
		}
	}
	if cmd.Flags().Changed("seed") && (seed < 0 || seed > math.MaxUint32) {
		errs = append(errs, fmt.Errorf("--seed must be between 0 and %d; leave it out for a random one", uint32(math.MaxUint32)))
	}
	for _, f := range []struct {
		flag  string
		value int
	}{{"width", req.Width}, {"height", req.Height}, {"steps", req.Steps}, {"batch", req.BatchSize}} {
		if cmd.Flags().Changed(f.flag) && f.value < 1 {
			errs = append(errs, fmt.Errorf("--%s must be at least 1; leave it out for the default", f.flag))
		}
	}
	return errors.Join(errs...)
}

// checkOutDir makes sure the images can be saved in dir: it creates dir as
// saving would, and writes and removes a file in it.
func checkOutDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".easel-write-check-*")
	if err != nil {
		return fmt.Errorf("--out %s: cannot save images there: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	return nil
}

// sources uploads --init-image and --mask when they name files. The size
// is the server's to derive: the init image's unless --width or --height
// was given.
func sources(cmd *cobra.Command, c *apiclient.Client, req *apiclient.GenerateRequest, strength float64) error {
	if req.InitImage == "" {
		if req.Mask != "" {
			return errors.New("--mask needs --init-image")
		}
		return nil
	}
	req.Strength = &strength
	for _, ref := range []*string{&req.InitImage, &req.Mask} {
		if *ref == "" || !fileExists(*ref) {
			continue
		}
		f, err := os.Open(*ref)
		if err != nil {
			return err
		}
		up, err := c.Upload(cmd.Context(), filepath.Base(*ref), f)
		f.Close()
		if err != nil {
			var p *apiclient.Problem
			if errors.As(err, &p) {
				return fmt.Errorf("%s: %s: %s", *ref, p.Title, p.Detail)
			}
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "uploaded %s as %s (%dx%d)\n", *ref, up.ID, up.Width, up.Height)
		*ref = up.ID
	}
	return nil
}

// flagOf is the flag that sets each field of a generation request.
var flagOf = map[string]string{
	"prompt": "--prompt", "negative_prompt": "--negative-prompt", "model": "--model",
	"width": "--width", "height": "--height", "steps": "--steps", "cfg_scale": "--cfg-scale",
	"batch_size": "--batch", "seed": "--seed", "init_image": "--init-image", "strength": "--strength",
	"mask": "--mask",
}

// problemError reads the API's refusal with each field it names, by its
// flag. given holds what --init-image and --mask said: a value the server
// does not know that is not a file here either was most likely a file name
// with a typo, so the message says so.
func problemError(p *apiclient.Problem, given map[string]string) error {
	var b strings.Builder
	b.WriteString(p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, fe := range p.FieldErrors() {
		name := fe.Field
		if f, ok := flagOf[name]; ok {
			name = f
		}
		fmt.Fprintf(&b, "\n  %s: %s", name, fe.Message)
		if v := given[fe.Field]; v != "" && !fileExists(v) {
			fmt.Fprintf(&b, " (and there is no file %q here)", v)
		}
	}
	return errors.New(b.String())
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
