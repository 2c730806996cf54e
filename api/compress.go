package api

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

// compressMinSize is the smallest body worth compressing: under a kilobyte
// the saving is less than a packet and the CPU is spent for nothing.
const compressMinSize = 1024

// compressedTypes are the API's own text answers and its documentation
// page. The web app's files come compressed already (App.encode sets their
// Content-Encoding, which the wrapper leaves alone), images are compressed
// formats, and the event stream is left as it is: it must reach the
// browser event by event.
var compressedTypes = []string{"application/json", "application/problem+json", "text/csv", "application/yaml", "text/html"}

// Handler is Router with its JSON and CSV answers of a kilobyte or more
// compressed (zstd or gzip, as the client accepts): the Gallery's list of
// twelve pictures is 21.2 kB as JSON and 2.6 kB gzipped, which a phone on
// a slow network feels on every load. HEAD is answered wherever GET is
// (headAsGet).
func (s *Server) Handler() (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(compressMinSize), gzhttp.ContentTypes(compressedTypes))
	if err != nil {
		return nil, fmt.Errorf("response compression: %w", err)
	}
	return headAsGet(wrap(s.Router())), nil
}
