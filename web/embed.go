// Package web holds the web app's build (a TypeScript single-page app in
// this folder, built by `make web` into dist/app) for the API to serve.
package web

import (
	"embed"
	"io/fs"
)

// dist always holds a committed README, so a clean clone without the build
// still compiles; the build adds dist/app.
//
//go:embed all:dist
var dist embed.FS

// App is the built app's files (index.html, static/...), and whether the
// app has been built at all.
func App() (fs.FS, bool) {
	app, err := fs.Sub(dist, "dist/app")
	if err != nil {
		return nil, false
	}
	if _, err := fs.Stat(app, "index.html"); err != nil {
		return nil, false
	}
	return app, true
}

// Placeholder is the page served in place of an app that was not built.
const Placeholder = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Easel: the web app is not built</title>
<style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}</style></head>
<body><h1>The web app is not built</h1>
<p>This easel binary was compiled without the web app. Build it with <code>make web</code>
(Node 20.19 or newer: <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>), then rebuild
or rerun easel. The API answers under <a href="/v1/docs">/v1</a> meanwhile.</p></body></html>
`
