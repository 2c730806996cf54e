// Command healthcheck is the container health probe of the distroless API
// image, which has no shell or curl: it GETs a URL and exits 0 when the
// answer is 2xx, 1 otherwise.
//
//	healthcheck http://127.0.0.1:8080/api/v1/app/version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:], 4*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// run probes the one URL in args within timeout.
func run(args []string, timeout time.Duration) error {
	if len(args) != 1 {
		return errors.New("usage: healthcheck URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", args[0], resp.Status)
	}
	return nil
}
