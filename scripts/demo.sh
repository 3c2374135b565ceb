#!/usr/bin/env bash
# Installs what is missing, builds framehub and runs a hub on
# 127.0.0.1:8080, printing the URL to open. Arguments go to `framehub hub`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bin
go build -o bin/framehub ./cmd/framehub
exec bin/framehub hub "$@"
