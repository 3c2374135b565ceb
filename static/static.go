// Package static holds framehub's web page: plain HTML, CSS and JavaScript,
// embedded in the binary. No build step, nothing fetched from elsewhere, so
// it works on an offline network.
package static

import "embed"

// Files are the page's files at the root of the FS: index.html (the grid
// of channels), view.html (one channel), and the scripts, stylesheet and
// icon they load from /static/. The hub serves them when the command
// hands them to it (hub.Config.Page).
//
//go:embed *.html *.js *.css *.svg
var Files embed.FS
