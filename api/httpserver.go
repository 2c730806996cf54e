package api

import (
	"net/http"
	"time"
)

// Timeouts of the API's HTTP server. A client gets ReadHeaderTimeout to send
// its request line and headers and ReadTimeout for the whole request, body
// included (bodies are at most 512 KiB), so a slow or stalled client cannot
// hold a connection and a goroutine open; an idle keep-alive connection is
// closed after IdleTimeout. The read deadline is lifted once the request
// is read (net/http does so when it starts watching the connection), so
// the event stream (GET /v1/generations/{id}/events) is not cut by it; for
// the same stream's sake there is no write timeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// NewHTTPServer is the http.Server the API listens with.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: maxHeaderBytes}
}
