//go:build cgo

package main

import (
	"testing"

	"framehub/internal/testcam"
	"framehub/internal/testutil"
)

// TestPublishRTSPWithOpenCV: the OpenCV build reads the camera with either
// decoder; with OpenCV's FFmpeg backend, FFmpeg's own lines ("Connection
// refused") become structured log lines instead of stderr chatter.
func TestPublishRTSPWithOpenCV(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg")
	bin := cgoBinary(t)
	for _, decoder := range []string{"opencv", "ffmpeg"} {
		t.Run(decoder, func(t *testing.T) {
			cam := testutil.Camera(t, testcam.Options{Size: "320x180", FPS: 15, Timecode: true})
			p := dropAndReturn(t, bin, cam, "cam-"+decoder, "--decoder", decoder)
			structuredOnly(t, p)
		})
	}
}
