//go:build !(cgo && matprofile)

// Package matleak tells a test binary whether gocv Mats were left open.
// gocv records every Mat it creates only when built with -tags matprofile
// (scripts/test.sh runs the cgo packages that way too); without that tag,
// or without cgo, Check sees nothing and returns nil. Tests call it from
// TestMain, through testutil.Check.
package matleak

// Check returns nil: this build does not record Mats.
func Check() error { return nil }
