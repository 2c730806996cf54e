package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/store"
)

// problemBase prefixes every problem type, giving each a stable URI.
const problemBase = "https://easel.dev/problems/"

// FieldError names one invalid request field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// problem writes a problem+json response and stops the handler chain.
func problem(c *gin.Context, status int, slug, title, detail string, extra map[string]any) {
	body := gin.H{"type": problemBase + slug, "title": title, "status": status}
	if detail != "" {
		body["detail"] = detail
	}
	if id := c.GetString(ctxRequestID); id != "" {
		body["request_id"] = id
	}
	for k, v := range extra {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(`{"type":"` + problemBase + `internal","title":"Internal error","status":500}`)
		status = http.StatusInternalServerError
	}
	c.Abort()
	c.Data(status, "application/problem+json", b)
}

func invalid(c *gin.Context, detail string, fields ...FieldError) {
	var extra map[string]any
	if len(fields) > 0 {
		extra = map[string]any{"errors": fields}
	}
	problem(c, http.StatusBadRequest, "invalid-request", "Invalid request", detail, extra)
}

// notFound answers the same way for a missing id and another user's id, so
// nobody learns which ids exist.
func notFound(c *gin.Context, what string) {
	problem(c, http.StatusNotFound, "not-found", "Not found", what+" not found", nil)
}

func internalError(c *gin.Context, err error) {
	if refusedValue(c, err) {
		return
	}
	_ = c.Error(err)
	problem(c, http.StatusInternalServerError, "internal", "Internal error",
		"the request could not be completed; it is safe to retry with the same Idempotency-Key", nil)
}

func unavailable(c *gin.Context, err error) {
	if refusedValue(c, err) {
		return
	}
	_ = c.Error(err)
	c.Header("Retry-After", "2")
	detail := "a backing service did not answer; retry shortly"
	switch {
	case c.GetHeader("Idempotency-Key") != "":
		detail = "a backing service did not answer; retry with the same Idempotency-Key"
	case c.Request.Method == http.MethodPost:
		detail += " (with an Idempotency-Key a retry never runs a request twice)"
	}
	problem(c, http.StatusServiceUnavailable, "unavailable", "Service unavailable", detail, nil)
}

// refusedValue answers a value Postgres refused (store.IsDataError) as the
// client's error, 400, never as a 5xx that invites a retry. The handlers
// check their fields first and name them; this is the backstop for what
// they miss.
func refusedValue(c *gin.Context, err error) bool {
	if !store.IsDataError(err) {
		return false
	}
	_ = c.Error(err)
	invalid(c, "the request holds a value that cannot be stored (invalid text or out of range)")
	return true
}
