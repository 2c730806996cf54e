package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/easel/easel/api"
)

// Every response the API tests receive is checked against api/openapi.yaml
// (checkContract, called by s.do and the event-stream reader): its status
// must be one the operation declares, and its Content-Type, declared
// headers and body must match. A response that does not fails the test that
// received it. Requests are not checked: tests of invalid input send
// invalid requests on purpose.

func init() {
	// Bodies kin-openapi has no decoder for: checked as text.
	for _, ct := range []string{"text/html", "text/event-stream", "application/openmetrics-text"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

type contractChecker struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	checkerOnce sync.Once
	checker     contractChecker
	checkerErr  error
)

// loadChecker loads the contract once for every test, with a router that
// matches any host (the tests' servers listen on random ports).
func loadChecker() (contractChecker, error) {
	checkerOnce.Do(func() {
		raw, err := api.OpenAPIDocument(true)
		if err != nil {
			checkerErr = err
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			checkerErr = err
			return
		}
		doc.Servers = nil
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			checkerErr = err
			return
		}
		checker = contractChecker{doc: doc, router: router}
	})
	return checker, checkerErr
}

// checkContract fails t when the response to req does not match the
// contract. withBody false checks the status and headers only (a stream
// whose body the caller reads itself).
func checkContract(t testing.TB, req *http.Request, status int, header http.Header, body []byte, withBody bool) {
	t.Helper()
	if err := contractError(req, status, header, body, withBody); err != nil {
		t.Errorf("the response to %s %s (%d %s) does not match api/openapi.yaml: %v\nbody: %.600s",
			req.Method, req.URL.RequestURI(), status, header.Get("Content-Type"), err, body)
	}
}

func contractError(req *http.Request, status int, header http.Header, body []byte, withBody bool) error {
	c, err := loadChecker()
	if err != nil {
		return err
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// No documented operation: the router's own answers (unknown route
		// 404, wrong method 405) and refused paths are problems.
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed && status != http.StatusBadRequest {
			return errors.New("no operation in the contract matches the request, yet it was answered " + http.StatusText(status))
		}
		return c.checkSchema("Problem", header, body, "application/problem+json")
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: !withBody}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: opts},
		Status: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// checkSchema checks a body against a component schema and its media type.
func (c contractChecker) checkSchema(name string, header http.Header, body []byte, mediaType string) error {
	if ct := header.Get("Content-Type"); mediaType != "" && !strings.HasPrefix(ct, mediaType) {
		return errors.New("Content-Type " + ct + ", want " + mediaType)
	}
	ref := c.doc.Components.Schemas[name]
	if ref == nil {
		return errors.New("the contract has no schema " + name)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())
}

// checkEventData fails t when one event of a generation's stream does not
// match the contract's GenerationEvent.
func checkEventData(t testing.TB, data []byte) {
	t.Helper()
	c, err := loadChecker()
	if err == nil {
		err = c.checkSchema("GenerationEvent", http.Header{}, data, "")
	}
	if err != nil {
		t.Errorf("an event does not match api/openapi.yaml's GenerationEvent: %v\ndata: %.600s", err, data)
	}
}

// checkWebhook fails t when a webhook Easel sent does not match what the
// contract says of its event type (under webhooks): the Standard Webhooks
// headers and the body.
func checkWebhook(t testing.TB, header http.Header, body []byte) {
	t.Helper()
	if err := webhookContractError(header, body); err != nil {
		t.Errorf("a webhook does not match api/openapi.yaml: %v\nbody: %.600s", err, body)
	}
}

func webhookContractError(header http.Header, body []byte) error {
	c, err := loadChecker()
	if err != nil {
		return err
	}
	var event struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &event); err != nil {
		return fmt.Errorf("the body is not a JSON object: %w", err)
	}
	item := c.doc.Webhooks[event.Type]
	if item == nil || item.Post == nil {
		return fmt.Errorf("the contract describes no webhook %q", event.Type)
	}
	req, err := http.NewRequest(http.MethodPost, "https://receiver.example/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header.Clone()
	route := &routers.Route{Spec: c.doc, Path: event.Type, PathItem: item, Method: http.MethodPost, Operation: item.Post}
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, Route: route, Options: &openapi3filter.Options{MultiError: true}})
}

// TestContractCheckerCatchesDrift: the check that every test's responses
// go through refuses what drifts from the contract, so a pass means
// something.
func TestContractCheckerCatchesDrift(t *testing.T) {
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"r1"}}
	problemHeader := http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"r1"}}
	problem := []byte(`{"type":"https://easel.dev/problems/not-found","title":"Not found","status":404,"detail":"generation not found","request_id":"r1"}`)
	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1"+path, nil)
		return r
	}
	cases := []struct {
		name    string
		req     *http.Request
		status  int
		header  http.Header
		body    string
		matches bool
	}{
		{"a declared problem", get("/v1/generations/7d3c0a4e-0000-4000-8000-000000000000"), 404, problemHeader, string(problem), true},
		{"an undeclared status", get("/v1/generations/7d3c0a4e-0000-4000-8000-000000000000"), 418, problemHeader, string(problem), false},
		{"a problem as plain JSON", get("/v1/credits"), 404, jsonHeader, string(problem), false},
		{"a body missing required fields", get("/v1/credits"), 200, jsonHeader, `{"available":1}`, false},
		{"a field the contract does not know", get("/v1/credits"), 200, jsonHeader,
			`{"available":1,"held":0,"granted":1,"grants":[],"pricing":"p","bonus":3}`, false},
		{"a valid balance", get("/v1/credits"), 200, jsonHeader,
			`{"available":1,"held":0,"granted":1,"grants":[],"pricing":"p"}`, true},
		{"no X-Request-Id", get("/v1/credits"), 200, http.Header{"Content-Type": {"application/json"}},
			`{"available":1,"held":0,"granted":1,"grants":[],"pricing":"p"}`, false},
		{"an unknown route's problem", get("/v1/nothing"), 404, problemHeader, string(problem), true},
		{"an unknown route answered 200", get("/v1/nothing"), 200, jsonHeader, `{}`, false},
	}
	for _, c := range cases {
		err := contractError(c.req, c.status, c.header, []byte(c.body), true)
		if (err == nil) != c.matches {
			t.Errorf("%s: matches=%v, want %v (%v)", c.name, err == nil, c.matches, err)
		}
	}

	hookHeader := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Easel-Webhooks/1"},
		"Webhook-Id": {"5b0e3c1e-8a4f-5d6b-9c2e-1f7a3b4c5d6e"}, "Webhook-Timestamp": {"1796115603"},
		"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}}
	low := `{"id":"5b0e3c1e-8a4f-5d6b-9c2e-1f7a3b4c5d6e","type":"credits.low","timestamp":"2026-12-01T09:00:03Z",` +
		`"data":{"available":8,"threshold":10,"links":{"credits":"/v1/credits","plans":"/v1/plans"}}}`
	unsigned := hookHeader.Clone()
	unsigned.Del("Webhook-Signature")
	for _, c := range []struct {
		name    string
		header  http.Header
		body    string
		matches bool
	}{
		{"a valid webhook", hookHeader, low, true},
		{"a webhook without its signature", unsigned, low, false},
		{"a webhook missing data", hookHeader, strings.Replace(low, `"threshold":10,`, "", 1), false},
		{"an undocumented event type", hookHeader, strings.Replace(low, "credits.low", "credits.high", 1), false},
	} {
		err := webhookContractError(c.header, []byte(c.body))
		if (err == nil) != c.matches {
			t.Errorf("%s: matches=%v, want %v (%v)", c.name, err == nil, c.matches, err)
		}
	}
}
