package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/devstack/temporalserver"
)

// The banner's suggested `easel generate` targets the API that `easel dev`
// serves, also on a --http-addr other than the default (and whatever
// $EASEL_API_URL says in the shell).
func TestDevBannerGenerateTargetsTheAPI(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printBanner(devOptions{httpAddr: "127.0.0.1:28080", s3Addr: "127.0.0.1:27070"}, config.Config{}, &temporalserver.Server{}, "tok")
	os.Stdout = stdout
	w.Close()
	banner, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(string(banner)) {
		if strings.Contains(l, "./cmd/easel generate") {
			line = l
		}
	}
	fields := strings.Fields(line)
	i := strings.Index(line, "--prompt")
	if len(fields) < 4 || i < 0 {
		t.Fatalf("no generate line in the banner:\n%s", banner)
	}
	cmd := generateCommand()
	if err := cmd.ParseFlags(strings.Fields(line[:i])[4:]); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if api, _ := cmd.Flags().GetString("api"); api != "http://127.0.0.1:28080" {
		t.Fatalf("the banner's generate line %q targets %q", strings.TrimSpace(line), api)
	}
}
