package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// VersityGWHint tells an operator how to get the versitygw binary.
var VersityGWHint = "install it with `make tools` (go install github.com/versity/versitygw/cmd/versitygw@" +
	VersityGWVersion + " into .bin), set EASEL_VERSITYGW, or put versitygw on PATH"

// FindVersityGW looks for versitygw in $EASEL_VERSITYGW, <root>/.bin or PATH.
func FindVersityGW(root string) (string, error) {
	if bin := FindBinary("EASEL_VERSITYGW", root, "versitygw"); bin != "" {
		return bin, nil
	}
	return "", errors.New("versitygw binary not found: " + VersityGWHint)
}

// S3Options configures a local S3 server. A bucket is a folder under Dir.
type S3Options struct {
	Binary    string // path to versitygw
	Dir       string // data root; each bucket is a folder
	Addr      string // host:port to listen on; "" picks a free loopback port
	AccessKey string
	SecretKey string
	LogPath   string // server output; "" discards it
}

// S3Server is a running versitygw.
type S3Server struct{ *Process }

// StartS3 runs versitygw and returns once it answers HTTP.
func StartS3(ctx context.Context, opts S3Options) (*S3Server, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create s3 data dir: %w", err)
	}
	l := Launch{Name: "versitygw", Binary: opts.Binary, Free: 1, LogPath: opts.LogPath,
		Args: func(host string, ports []int) []string {
			return []string{"--port", net.JoinHostPort(host, strconv.Itoa(ports[0])), "posix", opts.Dir}
		},
		Env: []string{"ROOT_ACCESS_KEY=" + opts.AccessKey, "ROOT_SECRET_KEY=" + opts.SecretKey}}
	if opts.Addr != "" {
		host, port, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("s3 address %q: %w", opts.Addr, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("s3 address %q: %w", opts.Addr, err)
		}
		l.Host, l.Ports = host, []int{n}
	}
	p, err := l.Start(ctx)
	if err != nil {
		return nil, err
	}
	return &S3Server{p}, nil
}

// Endpoint is the server's base URL.
func (s *S3Server) Endpoint() string { return s.URL() }
