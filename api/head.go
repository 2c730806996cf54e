package api

import "net/http"

// headAsGet answers HEAD wherever GET is served, as RFC 9110 (section
// 9.3.2) expects: the handler sees a GET, and net/http, which still holds
// the original HEAD request, sends the status and headers and drops the
// body.
func headAsGet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		get := r.Clone(r.Context())
		get.Method = http.MethodGet
		h.ServeHTTP(w, get)
	})
}
