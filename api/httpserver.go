package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Timeouts of the API's HTTP server. A client gets ReadHeaderTimeout to send
// its request line and headers and ReadTimeout for the whole request, body
// included (bodies are at most 512 KiB), so a slow or stalled client cannot
// hold a connection and a goroutine open; an idle keep-alive connection is
// closed after IdleTimeout. There is no write timeout: the event stream
// (GET /v1/generations/{id}/events) writes for as long as its job runs.
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

// streaming lifts the read deadline off a long-lived response: the server's
// ReadTimeout would otherwise end an event stream (net/http cancels a
// request whose connection read times out) once it has run that long.
func streaming(c *gin.Context) {
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	c.Next()
}
