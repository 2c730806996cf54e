package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"
)

// The Go types of the contract's schemas are generated from it; see
// apitypes/oapi-codegen.yaml. A test fails when they are out of date.
//go:generate go tool oapi-codegen -config apitypes/oapi-codegen.yaml -o apitypes/types.gen.go openapi.yaml

// OpenAPIYAML is the API's contract (OpenAPI 3.1): every route the router
// serves, with its requests, responses, errors and headers. The tests check
// the router against it and every response they receive against its schemas.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// devOnly marks the path items served only with a development issuer.
const devOnly = "x-easel-dev-only"

// contract is the document as this server serves it: the JSON, the page
// rendered from it, and their validators for conditional GETs.
type contract struct {
	json, html         []byte
	jsonETag, htmlETag string
	doc                *openapi3.T
	loadErr            error
}

var (
	contractOnce sync.Once
	contracts    map[bool]*contract // by "serves the development issuer"
)

// loadContract parses the embedded document once per variant: with dev
// false, the development issuer's paths are left out, so the document a
// production server serves lists only what it serves.
func loadContract(dev bool) *contract {
	contractOnce.Do(func() {
		contracts = map[bool]*contract{}
		for _, d := range []bool{false, true} {
			c := &contract{}
			c.loadErr = c.build(d)
			contracts[d] = c
		}
	})
	return contracts[dev]
}

func (c *contract) build(dev bool) error {
	raw, err := OpenAPIDocument(dev)
	if err != nil {
		return err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return fmt.Errorf("validate the OpenAPI document: %w", err)
	}
	page, err := renderDocs(doc)
	if err != nil {
		return err
	}
	c.json, c.html, c.doc = raw, page, doc
	c.jsonETag, c.htmlETag = etag(raw), etag(page)
	return nil
}

// OpenAPIDocument is the contract as JSON; without dev, the paths marked
// x-easel-dev-only are left out.
func OpenAPIDocument(dev bool) ([]byte, error) {
	raw, err := yaml.YAMLToJSON(OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("convert the OpenAPI document to JSON: %w", err)
	}
	if dev {
		return raw, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		if m, ok := item.(map[string]any); ok && m[devOnly] == true {
			delete(paths, p)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("write the OpenAPI document: %w", err)
	}
	return out, nil
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// contractCache lets clients and proxies keep the document for five
// minutes, then revalidate it by its ETag (a deploy changes it).
const contractCache = "public, max-age=300"

// serveContract answers GET /v1/openapi.json and GET /v1/docs.
func (s *Server) serveContract(page bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ct := loadContract(s.DevIssuer != nil)
		if ct.loadErr != nil {
			internalError(c, ct.loadErr)
			return
		}
		body, tag, typ := ct.json, ct.jsonETag, "application/json"
		if page {
			body, tag, typ = ct.html, ct.htmlETag, "text/html; charset=utf-8"
		}
		c.Header("Content-Type", typ)
		c.Header("ETag", tag)
		c.Header("Cache-Control", contractCache)
		// ServeContent answers If-None-Match with 304 and HEAD without a body.
		http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(body))
	}
}
