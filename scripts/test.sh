#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then gofmt,
# go vet, the CGO_ENABLED=0 build, go test -race, a short run of each fuzz
# target, and a 2-minute soak.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
echo "== go vet" >&2
go vet ./...
echo "== CGO_ENABLED=0 build (hub and watch without OpenCV), for Linux, macOS and FreeBSD" >&2
CGO_ENABLED=0 go build -o /dev/null ./cmd/framehub
for os in darwin freebsd; do # the static binary builds for other Unix systems too
	GOOS=$os CGO_ENABLED=0 go build -o /dev/null ./cmd/framehub
done
echo "== go test -race" >&2
go test -race -count=1 -timeout 20m ./...
echo "== gocv Mat leaks (-tags matprofile)" >&2
go test -count=1 -tags matprofile ./publisher ./subscriber ./process
# Bounded by a count, not a duration: with a duration, Go 1.26's fuzzing
# coordinator can fail a target with a bare "context deadline exceeded" when
# its deadline finds a worker busy (go.dev/issue/75804), as one minimizing a
# new input is, for up to a minute by default: so minimizing is bounded by a
# count too.
echo "== fuzz (${FUZZTIME:=100000x} per target, minimizing ${FUZZMINIMIZE:=200x}; FUZZTIME=10m for a longer run)" >&2
for target in ./protocol:FuzzParseMessage ./protocol:FuzzReader ./protocol:FuzzJPEGSize ./protocol:FuzzMJPEGReader \
    ./protocol:FuzzParseBoxes ./protocol:FuzzParseEvents ./protocol:FuzzParseAck ./hub:FuzzPublisherMessage ./process:FuzzInputMetadata; do
  go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZE" "${target%%:*}"
done
echo "== soak (${SOAK_MINUTES:=2} minutes; SOAK_MINUTES=0 skips it; docs/SOAK.md)" >&2
if [ "$SOAK_MINUTES" != 0 ]; then
  bash scripts/soak.sh --minutes "$SOAK_MINUTES"
fi
