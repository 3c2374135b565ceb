#!/usr/bin/env bash
# The soak: framehub run as an unattended site would, for M minutes, with
# cameras dropping and a hub and the NATS server killed mid-run; it exits 1
# on a leak, a crash, a stale frame or a recording directory over its size.
# See tools/soak and docs/SOAK.md.
#
#   scripts/soak.sh --minutes 30 [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./tools/soak "$@"
