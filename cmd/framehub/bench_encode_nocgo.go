//go:build !cgo

package main

// benchPublisherBuild says this binary cannot run framehub bench
// --publisher: the bare loop (bench-encode) and publishing from a video
// file both need OpenCV.
const benchPublisherBuild = false
