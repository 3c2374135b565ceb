#!/usr/bin/env bash
# Installs what is missing, builds framehub and runs the demo: a hub on
# 127.0.0.1:8080 and a publisher (camera 0 if there is one, else the test
# pattern) in one process. It prints the URL to open. Arguments go to
# `framehub demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bin
go build -o bin/framehub ./cmd/framehub
exec bin/framehub demo "$@"
