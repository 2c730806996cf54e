package api

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzBulkDelete feeds arbitrary bodies to the checks of POST
// /v1/images/bulk-delete: either 1 to 100 distinct, non-blank names come
// out, or a 400 problem+json; never a panic.
func FuzzBulkDelete(f *testing.F) {
	for _, seed := range []string{
		`{"names":["a.png","b.png"]}`, `{"names":["a","a"]}`, `{"names":[]}`, `{"names":[" "]}`,
		`{"names":"a"}`, `{"names":[1]}`, `{"names":null}`, `{}`, `{"names":["a"],"all":true}`,
		`{"names":["` + strings.Repeat(`a","`, 100) + `b"]}`, "{\"names\":[\"\xff\"]}", `{"names":["\u0000"]}`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer(8192)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req BulkDelete
		c, ok := fuzzDecode(t, s, "/v1/images/bulk-delete", body, &req)
		if !ok {
			return
		}
		names, ok := bulkNames(c, req.Names)
		if !ok {
			if c.Writer.Status() != http.StatusBadRequest {
				t.Fatalf("refused names with %d", c.Writer.Status())
			}
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if strings.TrimSpace(n) == "" || seen[n] || strings.ContainsRune(n, 0) {
				t.Fatalf("accepted names %q", names)
			}
			seen[n] = true
		}
		if len(names) == 0 || len(names) > maxBulkDelete {
			t.Fatalf("accepted %d names", len(names))
		}
	})
}
