package api

import (
	"bytes"
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// The reference page at GET /v1/docs is rendered here, on the server, from
// the parsed contract: one self-contained HTML page with no scripts and
// nothing fetched from elsewhere, so it reads the same offline.

// docPage is what the page template reads.
type docPage struct {
	Title, Version, Summary string
	Description             template.HTML
	Tags                    []docTag
	// Webhooks are the requests Easel sends to customers' servers, one
	// per event type (the document's webhooks section).
	Webhooks  []docOperation
	Security  []docSecurity
	Responses []docResponse
	Schemas   []docSchema
}

type docTag struct {
	Name        string
	Description template.HTML
	Operations  []docOperation
}

type docSecurity struct {
	Name, Format string
	Description  template.HTML
}

type docOperation struct {
	ID, Method, Path, Summary string
	Description               template.HTML
	Auth                      string
	Parameters                []docParam
	Body                      []docContent
	BodyRequired              bool
	Responses                 []docResponse
}

type docParam struct {
	Name, In, Type string
	Required       bool
	Description    template.HTML
}

type docContent struct {
	MediaType string
	Type      template.HTML
}

type docResponse struct {
	Status      string
	Ref         string // a shared response (components/responses), shown once
	Description template.HTML
	Content     []docContent
	Headers     []string
}

type docSchema struct {
	Name, Type  string
	Description template.HTML
	Properties  []docProperty
	Enum        []string
}

type docProperty struct {
	Name        string
	Type        template.HTML
	Required    bool
	Description template.HTML
}

var methodOrder = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// renderDocs renders the page of doc.
func renderDocs(doc *openapi3.T) ([]byte, error) {
	p := docPage{Title: doc.Info.Title, Version: doc.Info.Version, Summary: doc.Info.Summary,
		Description: markdown(doc.Info.Description)}
	byTag := map[string]*docTag{}
	for _, t := range doc.Tags {
		p.Tags = append(p.Tags, docTag{Name: t.Name, Description: markdown(t.Description)})
	}
	for i := range p.Tags {
		byTag[p.Tags[i].Name] = &p.Tags[i]
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for _, method := range methodOrder {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			tag := "Other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			if byTag[tag] == nil {
				p.Tags = append(p.Tags, docTag{Name: tag})
				byTag = reindex(p.Tags)
			}
			byTag[tag].Operations = append(byTag[tag].Operations, docOperationOf(doc, path, method, item, op))
		}
	}
	for _, t := range p.Tags {
		slices.SortStableFunc(t.Operations, func(a, b docOperation) int { return strings.Compare(a.Path, b.Path) })
	}
	for _, event := range sortedKeys(doc.Webhooks) {
		item := doc.Webhooks[event]
		if item.Post == nil {
			continue
		}
		o := docOperationOf(doc, event, "POST", item, item.Post)
		o.Auth = "signed with webhook-signature"
		p.Webhooks = append(p.Webhooks, o)
	}
	for _, name := range sortedKeys(doc.Components.SecuritySchemes) {
		s := doc.Components.SecuritySchemes[name].Value
		p.Security = append(p.Security, docSecurity{Name: name, Format: s.Scheme + " " + s.BearerFormat,
			Description: markdown(s.Description)})
	}
	for _, name := range sortedKeys(doc.Components.Responses) {
		p.Responses = append(p.Responses, docResponseOf(name, doc.Components.Responses[name].Value))
	}
	for _, name := range sortedKeys(doc.Components.Schemas) {
		p.Schemas = append(p.Schemas, docSchemaOf(name, doc.Components.Schemas[name].Value))
	}
	var b bytes.Buffer
	if err := docTemplate.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("render the API reference page: %w", err)
	}
	return b.Bytes(), nil
}

func reindex(tags []docTag) map[string]*docTag {
	m := make(map[string]*docTag, len(tags))
	for i := range tags {
		m[tags[i].Name] = &tags[i]
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func docOperationOf(doc *openapi3.T, path, method string, item *openapi3.PathItem, op *openapi3.Operation) docOperation {
	o := docOperation{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary,
		Description: markdown(op.Description), Auth: authOf(doc, op)}
	for _, ps := range [][]*openapi3.ParameterRef{item.Parameters, op.Parameters} {
		for _, pr := range ps {
			prm := pr.Value
			o.Parameters = append(o.Parameters, docParam{Name: prm.Name, In: prm.In, Type: plainType(prm.Schema),
				Required: prm.Required, Description: markdown(prm.Description)})
		}
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		o.BodyRequired = op.RequestBody.Value.Required
		o.Body = contentOf(op.RequestBody.Value.Content)
	}
	for _, st := range sortedKeys(op.Responses.Map()) {
		ref := op.Responses.Value(st)
		dr := docResponseOf(st, ref.Value)
		dr.Ref, _ = strings.CutPrefix(ref.Ref, "#/components/responses/")
		o.Responses = append(o.Responses, dr)
	}
	return o
}

func docResponseOf(status string, r *openapi3.Response) docResponse {
	dr := docResponse{Status: status, Content: contentOf(r.Content), Headers: sortedKeys(r.Headers)}
	if r.Description != nil {
		dr.Description = markdown(*r.Description)
	}
	return dr
}

// authOf says who may call the operation.
func authOf(doc *openapi3.T, op *openapi3.Operation) string {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	if len(reqs) == 0 {
		return "none (public)"
	}
	var names []string
	for _, r := range reqs {
		names = append(names, sortedKeys(r)...)
	}
	return strings.Join(names, " or ")
}

func contentOf(c openapi3.Content) []docContent {
	var out []docContent
	for _, mt := range sortedKeys(c) {
		out = append(out, docContent{MediaType: mt, Type: linkedType(c[mt].Schema)})
	}
	return out
}

func docSchemaOf(name string, s *openapi3.Schema) docSchema {
	d := docSchema{Name: name, Type: strings.Join(s.Type.Slice(), " | "), Description: markdown(s.Description)}
	for _, e := range s.Enum {
		d.Enum = append(d.Enum, fmt.Sprint(e))
	}
	for _, prop := range sortedKeys(s.Properties) {
		ps := s.Properties[prop]
		desc := ""
		if ps.Value != nil {
			desc = ps.Value.Description
		}
		d.Properties = append(d.Properties, docProperty{Name: prop, Type: linkedType(ps),
			Required: slices.Contains(s.Required, prop), Description: markdown(desc)})
	}
	return d
}

// linkedType names a schema's type, linking to the component it refers to.
func linkedType(ref *openapi3.SchemaRef) template.HTML {
	if ref == nil {
		return ""
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		return template.HTML(fmt.Sprintf(`<a href="#schema-%s">%s</a>`, template.HTMLEscapeString(name),
			template.HTMLEscapeString(name)))
	}
	s := ref.Value
	if s == nil {
		return ""
	}
	switch {
	case len(s.OneOf) > 0:
		return joinTypes(s.OneOf, " or ")
	case len(s.AnyOf) > 0:
		return joinTypes(s.AnyOf, " or ")
	case s.Type.Includes("array") && s.Items != nil:
		t := "array of " + linkedType(s.Items)
		if s.Type.Includes("null") {
			t += " | null"
		}
		return t
	}
	return template.HTML(template.HTMLEscapeString(plainType(ref)))
}

func joinTypes(refs openapi3.SchemaRefs, sep string) template.HTML {
	parts := make([]string, 0, len(refs))
	for _, r := range refs {
		parts = append(parts, string(linkedType(r)))
	}
	return template.HTML(strings.Join(parts, sep))
}

// plainType is a schema's type in words: "string (date-time) | null",
// "one of: a, b".
func plainType(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return ""
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		return name
	}
	s := ref.Value
	types := s.Type.Slice()
	t := strings.Join(types, " | ")
	if s.Format != "" && len(types) > 0 {
		t = strings.Replace(t, types[0], types[0]+" ("+s.Format+")", 1)
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = fmt.Sprint(e)
		}
		t += ", one of: " + strings.Join(vals, ", ")
	}
	return t
}

var (
	codeSpan   = regexp.MustCompile("`([^`]+)`")
	strongSpan = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// markdown renders the little Markdown the contract's descriptions use:
// paragraphs, `code` and **strong**. The text is escaped first.
func markdown(s string) template.HTML {
	var b strings.Builder
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if para == "" {
			continue
		}
		html := template.HTMLEscapeString(strings.Join(strings.Fields(para), " "))
		html = codeSpan.ReplaceAllString(html, "<code>$1</code>")
		html = strongSpan.ReplaceAllString(html, "<strong>$1</strong>")
		b.WriteString("<p>" + html + "</p>")
	}
	return template.HTML(b.String())
}

var docTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
h1,h2,h3{line-height:1.2}h2{margin-top:3rem;border-bottom:1px solid #ddd}
code{font:13px ui-monospace,monospace;background:#f3f3f5;padding:0 .2em;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f7f7f9}td p{margin:0}.op{border:1px solid #ddd;border-radius:6px;padding:0 1rem;margin:1.5rem 0}
.m{display:inline-block;min-width:4.5em;font:bold 13px ui-monospace,monospace;color:#fff;border-radius:3px;padding:.1em .4em;text-align:center}
.GET{background:#2f7d32}.POST{background:#1f5fa8}.PATCH{background:#8a5a00}.DELETE{background:#b3261e}.PUT{background:#6a3fa0}
nav ul{columns:2}a{color:#1f5fa8}
</style></head><body>
<h1>{{.Title}} <small>{{.Version}}</small></h1>
<p>{{.Summary}} The machine-readable document: <a href="openapi.json">openapi.json</a>.</p>
{{.Description}}
<h2 id="auth">Authentication</h2>
<table><tr><th>scheme</th><th>format</th><th></th></tr>
{{range .Security}}<tr><td><code>{{.Name}}</code></td><td>{{.Format}}</td><td>{{.Description}}</td></tr>{{end}}
</table>
<nav><h2>Operations</h2><ul>
{{range .Tags}}{{if .Operations}}<li><a href="#tag-{{.Name}}">{{.Name}}</a><ul>
{{range .Operations}}<li><a href="#op-{{.ID}}"><code>{{.Method}} {{.Path}}</code></a> {{.Summary}}</li>{{end}}
</ul></li>{{end}}{{end}}
{{if .Webhooks}}<li><a href="#webhooks">Webhooks Easel sends</a><ul>
{{range .Webhooks}}<li><a href="#op-{{.ID}}"><code>{{.Path}}</code></a> {{.Summary}}</li>{{end}}
</ul></li>{{end}}
<li><a href="#responses">Shared responses</a></li><li><a href="#schemas">Schemas</a></li></ul></nav>
{{range .Tags}}{{if .Operations}}
<h2 id="tag-{{.Name}}">{{.Name}}</h2>{{.Description}}
{{range .Operations}}{{template "op" .}}{{end}}{{end}}{{end}}
{{if .Webhooks}}<h2 id="webhooks">Webhooks Easel sends</h2>
<p>Requests Easel makes to the URLs of <code>/v1/webhook-endpoints</code> and of generation requests' <code>webhook_url</code>, one per event type; the <code>Webhooks</code> operations above manage them.</p>
{{range .Webhooks}}{{template "op" .}}{{end}}{{end}}
<h2 id="responses">Shared responses</h2>
<table><tr><th>response</th><th>answer</th><th>body</th><th>headers</th></tr>
{{range .Responses}}<tr id="response-{{.Status}}"><td>{{.Status}}</td><td>{{.Description}}</td><td>{{range .Content}}<code>{{.MediaType}}</code> {{.Type}}<br>{{end}}</td><td>{{range .Headers}}<code>{{.}}</code> {{end}}</td></tr>{{end}}
</table>
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}<section id="schema-{{.Name}}"><h3>{{.Name}} <small>{{.Type}}</small></h3>{{.Description}}
{{if .Enum}}<p>One of: {{range .Enum}}<code>{{.}}</code> {{end}}</p>{{end}}
{{if .Properties}}<table><tr><th>field</th><th>type</th><th></th></tr>
{{range .Properties}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}
</table>{{end}}</section>{{end}}
</body></html>
{{define "op"}}<section class="op" id="op-{{.ID}}">
<h3><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code></h3>
<p><strong>{{.Summary}}</strong> <small>({{.ID}}; authentication: {{.Auth}})</small></p>
{{.Description}}
{{if .Parameters}}<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>
{{range .Parameters}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}
</table>{{end}}
{{if .Body}}<p>Request body{{if .BodyRequired}} (required){{end}}: {{range .Body}}<code>{{.MediaType}}</code> {{.Type}} {{end}}</p>{{end}}
<table><tr><th>status</th><th>answer</th><th>body</th><th>headers</th></tr>
{{range .Responses}}<tr><td>{{.Status}}</td>{{if .Ref}}<td colspan="3"><a href="#response-{{.Ref}}">{{.Ref}}</a></td>{{else}}<td>{{.Description}}</td><td>{{range .Content}}<code>{{.MediaType}}</code> {{.Type}}<br>{{end}}</td><td>{{range .Headers}}<code>{{.}}</code> {{end}}</td>{{end}}</tr>{{end}}
</table></section>{{end}}`))
