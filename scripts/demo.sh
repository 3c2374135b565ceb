#!/usr/bin/env bash
# Installs what is missing, builds framehub and runs the demo: a hub on
# 127.0.0.1:8080 and a publisher (camera 0 if there is one, else the test
# pattern) in one process. It prints the URL to open. Arguments go to
# `framehub demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bin
echo "demo: building bin/framehub (the first build compiles the OpenCV bindings: about 2 minutes; later ones take seconds)..." >&2
go build -o bin/framehub ./cmd/framehub
echo "demo: starting; Ctrl-C stops it" >&2
exec bin/framehub demo "$@"
