package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// TestHTTPServerTimeouts: the API's server cuts a client that stalls in its
// headers, and its read timeout, which bounds reading the request, does not
// end a response that streams for longer (the event stream).
func TestHTTPServerTimeouts(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	ticks := func(c *gin.Context) {
		c.Status(http.StatusOK)
		for i := range 8 {
			select {
			case <-c.Request.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			_, _ = fmt.Fprintf(c.Writer, "tick %d\n", i)
			c.Writer.Flush()
		}
		_, _ = io.WriteString(c.Writer, "end\n")
	}
	r.GET("/stream", ticks)

	srv := NewHTTPServer("127.0.0.1:0", r)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("timeouts unset: %+v", srv)
	}
	srv.ReadHeaderTimeout, srv.ReadTimeout = 200*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + ln.Addr().String()

	read := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := read("/stream"); !strings.HasSuffix(body, "end\n") {
		t.Fatalf("the stream was cut by the read timeout: %q", body)
	}

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = bufio.NewReader(conn).ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client stalled in its headers was not cut off")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stalled client cut after %s", d)
	}
}
