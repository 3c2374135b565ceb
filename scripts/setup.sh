#!/usr/bin/env bash
# Installs the Debian packages framehub needs, only those missing, so a fresh
# Debian 12 machine with Go needs nothing else. Safe to run again.
set -euo pipefail

# libopencv-dev + pkg-config + g++: gocv (cgo) for publish, view, record, demo
# ffmpeg: test clips and the MJPEG client the tests use; curl: the README's upload lines and their tests
# chromium: the browser tests; xvfb/xauth: native-window tests with a display
# fonts-dejavu-core: text in screenshots
# python3-numpy, python3-opencv, python3-websockets: the Python client (clients/python), for
#   Debian's own /usr/bin/python3; opencv-data: the Haar cascades its face example uses;
#   opencv-doc: examples/data/messi5.jpg, the face that example's test detects
pkgs=(libopencv-dev pkg-config g++ ffmpeg curl chromium xvfb xauth fonts-dejavu-core
  python3-numpy python3-opencv python3-websockets opencv-data opencv-doc)

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
