#!/usr/bin/env bash
# Installs the Debian packages framehub needs, only those missing, so a fresh
# Debian 12 machine with Go needs nothing else. Safe to run again.
set -euo pipefail

# One package a line, so that branches adding packages merge cleanly.
pkgs=(
  libopencv-dev      # gocv (cgo) for publish, view, record, demo, process
  pkg-config         # finds OpenCV for cgo
  g++                # cgo's C++ (gocv, process/detect_cgo.cpp)
  libavutil-dev      # publisher/avlog_cgo.c: FFmpeg's log lines from OpenCV's backend, as structured logs
  ffmpeg             # test clips and the MJPEG client the tests use
  curl               # the README's upload lines and their tests
  chromium           # the browser tests
  xvfb               # native-window tests with a display
  xauth              # for xvfb-run
  fonts-dejavu-core  # text in screenshots
  python3-numpy      # the Python client (clients/python), for Debian's own /usr/bin/python3
  python3-opencv     #   "
  python3-websockets #   "
  opencv-data        # Haar cascades: process's faces and blur-faces steps, the Python face example
  opencv-doc         # sample pictures and videos (faces, pedestrians) the process and Python tests use
  python3-gi                   # the test IP camera (internal/testcam/rtspcam.py): GStreamer from Python
  gir1.2-gst-rtsp-server-1.0   #   its RTSP server
  gstreamer1.0-plugins-base    #   videotestsrc, videoconvert
  gstreamer1.0-plugins-good    #   rtph264pay
  gstreamer1.0-plugins-ugly    #   x264enc (H.264)
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "setup: Go 1.26 or newer is required (https://go.dev/doc/install); Debian 12's golang package is too old" >&2
  exit 1
fi
