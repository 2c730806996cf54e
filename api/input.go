package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Text that Postgres cannot store (NUL, invalid UTF-8) is refused at the
// door with a 400 naming where it was, so it never becomes a database error
// answered as a 5xx, retried, or left to hang a workflow. Three guards do
// it: guardInput for path parameters and query values, readJSONBody for
// every JSON body, and the field checks of each handler for the rest.

// textProblem says what is wrong with s as stored text, or "" when nothing.
func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.ContainsRune(s, 0):
		return "must not contain NUL characters"
	}
	return ""
}

// printableToken reports whether s is printable ASCII without spaces, as
// ids and keys from other systems are.
func printableToken(s string) bool {
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

// guardInput refuses a request whose path parameters or query values are not
// text (invalid UTF-8 or NUL), naming the parameter. It runs before
// authentication: such a request is malformed whoever sends it.
func (s *Server) guardInput(c *gin.Context) {
	for _, p := range c.Params {
		if msg := textProblem(p.Value); msg != "" {
			invalid(c, "the path parameter "+p.Key+" "+msg, FieldError{Field: p.Key, Message: msg})
			return
		}
	}
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		invalid(c, "the query string is malformed: "+err.Error())
		return
	}
	for k, vs := range q {
		if msg := textProblem(k); msg != "" {
			invalid(c, "a query parameter name "+msg, FieldError{Field: strings.ToValidUTF8(k, "\uFFFD"), Message: msg})
			return
		}
		for _, v := range vs {
			if msg := textProblem(v); msg != "" {
				invalid(c, "the query parameter "+k+" "+msg, FieldError{Field: k, Message: msg})
				return
			}
		}
	}
	c.Next()
}

// jsonContentType reports whether a Content-Type names JSON in UTF-8:
// application/json or any application/*+json, with no charset or utf-8.
func jsonContentType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// readJSONBody reads a JSON request body (at most limit bytes, already
// enforced by the caller's MaxBytesReader) and checks what encoding/json
// lets through: a Content-Type that is not JSON or a compressed body (415),
// invalid UTF-8 and NUL in any string (encoding/json turns the first into
// U+FFFD and keeps the second; Postgres refuses both), top-level keys that
// only match a field of dst case-insensitively or repeat one (encoding/json
// matches names case-insensitively and keeps the last), and an explicit 0
// in a field whose absence means a default. It writes the problem itself and reports
// false; a body that is not valid JSON passes here, for the decoder to
// describe.
func readJSONBody(c *gin.Context, dst any, limit int64) ([]byte, bool) {
	if ct := c.GetHeader("Content-Type"); !jsonContentType(ct) {
		problem(c, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("send the body as application/json (UTF-8), not %q", ct), nil)
		return nil, false
	}
	if ce := c.GetHeader("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		problem(c, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("send the body uncompressed; Content-Encoding %q is not accepted", ce), nil)
		return nil, false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		describeJSONError(c, err, limit)
		return nil, false
	}
	var defaults map[string]string
	if d, ok := dst.(defaultedFields); ok {
		defaults = d.defaultedFields()
	}
	errs, zeros := checkJSONText(body, jsonFieldNames(dst), defaults)
	if len(errs) > 0 {
		errs = append(errs, zeros...)
		invalid(c, fmt.Sprintf("%d field(s) are invalid", len(errs)), errs...)
		return nil, false
	}
	if len(zeros) > 0 {
		// Reported with the request's other invalid fields (explicitZeros).
		c.Set(ctxExplicitZeros, zeros)
	}
	return body, true
}

// ctxExplicitZeros holds the defaulted fields a request sent as 0.
const ctxExplicitZeros = "explicit_zeros"

// explicitZeros are the errors of the defaulted fields the request sent as
// 0, for the handler to report with every other invalid field.
func explicitZeros(c *gin.Context) []FieldError {
	errs, _ := c.Value(ctxExplicitZeros).([]FieldError)
	return errs
}

// defaultedFields is a request with fields that take a default when absent,
// so that an explicit 0 is a mistake rather than "the default": field name
// to the message that says so. The body is still decoded; the handler
// reports these with its own checks (explicitZeros), as prepareGeneration
// does.
type defaultedFields interface {
	defaultedFields() map[string]string
}

func (GenerationRequest) defaultedFields() map[string]string {
	return map[string]string{
		"steps":      fmt.Sprintf("must be between 1 and %d; leave it out for the default (%d)", maxSteps, defaultSteps),
		"batch_size": "must be at least 1; leave it out for the default (1)",
		"width":      "must be at least 64; leave it out for the model's native size",
		"height":     "must be at least 64; leave it out for the model's native size",
	}
}

// jsonFieldNames lists the JSON names of a struct's fields (nil for
// anything else), as encoding/json spells them.
func jsonFieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]bool{}
	addFieldNames(t, names)
	return names
}

func addFieldNames(t reflect.Type, names map[string]bool) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" && tag == "-":
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			addFieldNames(f.Type, names)
		case !f.IsExported():
		case name != "":
			names[name] = true
		default:
			names[f.Name] = true
		}
	}
}

// member is one top-level key of a JSON object and the byte span of its
// key and value in the body.
type member struct {
	name       string
	start, end int64
}

// checkJSONText walks a JSON object's top-level members and returns every
// problem with its text and keys (see readJSONBody). It returns nil for a
// body that is not a JSON object or not valid JSON.
func checkJSONText(body []byte, known map[string]bool, defaults map[string]string) (errs, zeros []FieldError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil
	}
	var (
		members []member
		seen    = map[string]bool{}
	)
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, nil
		}
		name := tok.(string)
		value, nul, err := scanValue(dec)
		if err != nil {
			return nil, nil
		}
		members = append(members, member{name: name, start: start, end: dec.InputOffset()})
		if msg := keyProblem(name, known, seen); msg != "" {
			errs = append(errs, FieldError{Field: name, Message: msg})
			continue
		}
		seen[name] = true
		switch {
		case nul || strings.ContainsRune(name, 0):
			errs = append(errs, FieldError{Field: name, Message: "must not contain NUL characters"})
		case defaults[name] != "" && isZero(value):
			zeros = append(zeros, FieldError{Field: name, Message: defaults[name]})
		}
	}
	// Outside a member it is trailing data, which the decoder reports.
	if field := memberAt(members, int64(invalidUTF8At(body))); field != "" {
		errs = append(errs, FieldError{Field: field, Message: "must be valid UTF-8"})
	}
	return errs, zeros
}

// keyProblem refuses a key that repeats one already seen or that names a
// field only when compared case-insensitively ({"Prompt": ...}); other
// unknown keys are left to the decoder's DisallowUnknownFields.
func keyProblem(name string, known, seen map[string]bool) string {
	if seen[name] {
		return "appears more than once"
	}
	if known == nil || known[name] {
		return ""
	}
	for k := range known {
		if strings.EqualFold(k, name) {
			return fmt.Sprintf("unknown field; field names are case-sensitive: did you mean %q?", k)
		}
	}
	return ""
}

// scanValue reads one JSON value from dec, returning its first token and
// whether any string in it (object keys included) holds a NUL.
func scanValue(dec *json.Decoder) (json.Token, bool, error) {
	first, err := dec.Token()
	if err != nil {
		return nil, false, err
	}
	tok, nul, depth := first, false, 0
	for {
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			nul = nul || strings.ContainsRune(v, 0)
		}
		if depth == 0 {
			return first, nul, nil
		}
		if tok, err = dec.Token(); err != nil {
			return nil, false, err
		}
	}
}

func isZero(tok json.Token) bool {
	n, ok := tok.(json.Number)
	if !ok {
		return false
	}
	f, err := n.Float64()
	return err == nil && f == 0
}

// invalidUTF8At is the offset of the first byte of body that is not valid
// UTF-8, or -1.
func invalidUTF8At(body []byte) int {
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// memberAt names the top-level member whose span holds offset ("" when
// none does).
func memberAt(members []member, offset int64) string {
	for _, m := range members {
		if offset >= m.start && offset < m.end {
			return strings.ToValidUTF8(m.name, "\uFFFD")
		}
	}
	return ""
}
