#!/usr/bin/env bash
# Cross-hub benchmark: builds framehub and nats-server (from the Go module
# that go.mod pins) into a temporary directory, then runs
#   framehub bench --cluster 3 --nats-server DIR/nats-server ARGS...
# which starts the server and three hubs on loopback, publishes on the
# first hub and reads on all three. Extra arguments go to framehub bench,
# e.g. --duration 30s --subscribers 20 --json.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -o "$dir/framehub" ./cmd/framehub
CGO_ENABLED=0 go build -o "$dir/nats-server" github.com/nats-io/nats-server/v2
"$dir/framehub" --log-level warn bench --cluster 3 --nats-server "$dir/nats-server" "$@"
