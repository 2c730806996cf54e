package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/store"
)

// routeScopes names the scope an API key needs for each route that changes
// something; every GET not listed here needs store.ScopeRead. A route missing from this
// table needs store.ScopeBilling, so a new route is closed to keys until
// someone decides otherwise. The empty scope marks routes whose handlers
// refuse every API key themselves (minting keys, administration).
var routeScopes = map[string]string{
	"POST /v1/generations":        store.ScopeGenerate,
	"DELETE /v1/generations/:id":  store.ScopeGenerate,
	"PATCH /v1/images/:name":      store.ScopeGenerate,
	"DELETE /v1/images/:name":     store.ScopeGenerate,
	"POST /v1/images/bulk-delete": store.ScopeGenerate,
	"POST /v1/uploads":            store.ScopeGenerate,
	"DELETE /v1/uploads/:id":      store.ScopeGenerate,
	"POST /v1/api-keys":           "",
	// A quote prices a body and changes nothing: any key that may read.
	"POST /v1/quote": store.ScopeRead,
	// So is the preview of a plan change: it changes nothing.
	"POST /v1/subscription/change/preview": store.ScopeRead,
	// The account's webhook secret can forge Easel's webhooks to the
	// user's own receivers: not for every key that may read.
	"GET /v1/webhook-secret": store.ScopeBilling,
}

// requiredScope is the scope a request to the route needs from an API key.
func requiredScope(method, route string) string {
	if scope, ok := routeScopes[method+" "+route]; ok {
		return scope
	}
	switch {
	case strings.HasPrefix(route, "/v1/admin/"):
		return "" // requireAdmin refuses every key
	case method == http.MethodGet || method == http.MethodHead:
		return store.ScopeRead
	}
	return store.ScopeBilling
}

// requireScope refuses (403) a request made with an API key that lacks the
// route's scope. Sessions (ID tokens) carry no scopes and may do everything.
func (s *Server) requireScope(c *gin.Context) {
	u := user(c)
	need := requiredScope(c.Request.Method, c.FullPath())
	if u.Scopes == nil || need == "" || slices.Contains(u.Scopes, need) {
		c.Next()
		return
	}
	problem(c, http.StatusForbidden, "insufficient-scope", "API key lacks a scope",
		fmt.Sprintf("this API key does not have the %q scope this route needs; create a key with it, or sign in", need),
		map[string]any{"required_scope": need, "key_scopes": u.Scopes})
}

// validScopes checks the scopes a new key asks for; nil means the default.
func validScopes(scopes *[]string) ([]string, *FieldError) {
	if scopes == nil {
		return store.DefaultAPIKeyScopes, nil
	}
	if len(*scopes) == 0 {
		return nil, &FieldError{Field: "scopes", Message: "must name at least one of " + strings.Join(store.APIKeyScopes, ", ")}
	}
	var out []string
	for _, sc := range *scopes {
		if !slices.Contains(store.APIKeyScopes, sc) {
			return nil, &FieldError{Field: "scopes", Message: fmt.Sprintf("unknown scope %q; scopes are %s",
				sc, strings.Join(store.APIKeyScopes, ", "))}
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}
