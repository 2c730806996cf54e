package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/easel/easel/internal/apiclient"
	"github.com/easel/easel/internal/catalog"
)

// Generate does what `easel generate` does: it submits the request, shows
// the job's progress, waits for it to end and saves its images.
func ExampleClient_Generate() {
	api := fakeAPI() // an Easel API server, such as https://api.easel.dev
	defer api.Close()
	c := apiclient.New(api.URL, "my-token")

	dir, err := os.MkdirTemp("", "easel-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	req := apiclient.GenerateRequest{Prompt: "a lighthouse at dusk", Model: catalog.ModelSDXL,
		Width: 1024, Height: 1024, CFGScale: 7}
	gen, paths, err := c.Generate(context.Background(), req, dir, os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d credits, saved %s\n", gen.Status, *gen.CreditsSettled, filepath.Base(paths[0]))
	// Output:
	//  33% image 1/1 step 10/30
	//  67% image 1/1 step 20/30
	// 100% image 1/1 step 30/30
	// 100% completed
	// completed: 2 credits, saved 0c6e5a52-8d1f-4c3b-9a7e-000000000001_0.png
}

// The calls Generate is made of: submit, follow the event stream, then read
// the finished job, whose images carry presigned download URLs.
func ExampleClient_Events() {
	api := fakeAPI()
	defer api.Close()
	c := apiclient.New(api.URL, "my-token")
	ctx := context.Background()

	req := apiclient.GenerateRequest{Prompt: "a lighthouse at dusk", Model: catalog.ModelSDXL,
		Width: 1024, Height: 1024, Steps: 30, CFGScale: 7, BatchSize: 2}
	// An empty idempotency key gets a random one; pass your own to make
	// resubmitting after a lost answer safe.
	gen, err := c.CreateGeneration(ctx, req, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d credits held\n", gen.Status, gen.CreditsHeld)

	err = c.Events(ctx, gen.ID, func(p apiclient.Progress) {
		fmt.Printf("%s step %d/%d\n", p.State, p.Step, p.TotalSteps)
	})
	if err != nil && !errors.Is(err, apiclient.ErrStreamEnded) {
		log.Fatal(err)
	}
	// After ErrStreamEnded the job goes on without the stream: poll
	// GetGeneration until gen.Terminal(), as Generate does.

	gen, err = c.GetGeneration(ctx, gen.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, img := range gen.Images {
		png, err := c.Download(ctx, img.URL)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%dx%d image, seed %d, %d bytes\n", img.Width, img.Height, img.Seed, len(png))
	}
	// Output:
	// queued, 4 credits held
	// running step 10/30
	// running step 20/30
	// running step 30/30
	// completed step 30/30
	// 1024x1024 image, seed 1234, 71 bytes
	// 1024x1024 image, seed 1235, 71 bytes
}

func ExampleClient_Credits() {
	api := fakeAPI()
	defer api.Close()
	c := apiclient.New(api.URL, "my-token")

	cr, err := c.Credits(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d available, %d held, %d granted\n", cr.Available, cr.Held, cr.Granted)
	// Output: 100 available, 0 held, 100 granted
}

// API errors are *Problem values: their slug tells what went wrong, and
// Extensions carries the details the API adds.
func ExampleProblem() {
	api := fakeAPI()
	defer api.Close()
	c := apiclient.New(api.URL, "my-token")

	req := apiclient.GenerateRequest{Prompt: "a lighthouse at dusk", Model: catalog.ModelFlux,
		Width: 2048, Height: 2048, Steps: 50, CFGScale: 3.5, BatchSize: 4}
	_, err := c.CreateGeneration(context.Background(), req, "")
	var p *apiclient.Problem
	if errors.As(err, &p) && p.Slug() == "insufficient-credits" {
		fmt.Println(p.Status, p.Detail)
		fmt.Println("needed:", string(p.Extensions["credits_needed"]))
	}
	// Output:
	// 402 this generation needs 160 credits and 100 are available
	// needed: 160
}
