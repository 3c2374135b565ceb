#!/usr/bin/env bash
# Runs every hub scenario of docs/BENCHMARKS.md with `framehub bench --pin`,
# for this tree's hub and optionally an earlier one, alternating binaries
# run by run, and prints a table of medians.
#
#   scripts/bench-hub.sh                       # this tree, 3 runs each
#   scripts/bench-hub.sh --before main         # and main's hub, alternated
#   scripts/bench-hub.sh --runs 5 --only fanout-300,slow-credit
#
# Both hubs are CGO_ENABLED=0 builds (as a lean hub is deployed; the cgo
# binary maps ~70 MB of OpenCV's libraries, which RSS would count). The
# load generator is this tree's: the same client for both. JSON reports go
# to $OUT (default a temporary directory), one file per run.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 before="" only=""
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs="$2"; shift 2 ;;
	--before) before="$2"; shift 2 ;;
	--only) only="$2"; shift 2 ;;
	*) echo "usage: $0 [--runs N] [--before GIT-REV] [--only name,name]" >&2; exit 2 ;;
	esac
done
case "$runs" in ''|*[!0-9]*|0) echo "--runs: want a positive number, got '$runs'" >&2; exit 2 ;; esac
[ "$(nproc)" -ge 2 ] || { echo "the pinned benchmark needs at least 2 CPUs" >&2; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "needs Debian's python3 (scripts/setup.sh installs it)" >&2; exit 1; }

OUT="${OUT:-$(mktemp -d -t framehub-bench.XXXXXX)}"
mkdir -p "$OUT"
bins="$OUT/bin"
mkdir -p "$bins"
echo "building this tree's framehub (cgo, for the load generator) and hub (static)" >&2
go build -o "$bins/framehub" ./cmd/framehub
CGO_ENABLED=0 go build -o "$bins/hub-now" ./cmd/framehub
targets=(now)
if [ -n "$before" ]; then
	echo "building the hub of $before (static)" >&2
	tree="$OUT/before-src"
	git worktree add -q --detach "$tree" "$before"
	trap 'git worktree remove --force "$tree"' EXIT
	(cd "$tree" && CGO_ENABLED=0 go build -o "$bins/hub-before" ./cmd/framehub)
	targets=(before now)
fi

# name | arguments
scenarios=(
	"fanout-1|--subscribers 1 --baseline"
	"fanout-10|--subscribers 10 --baseline"
	"fanout-100|--subscribers 100 --baseline"
	"fanout-300|--subscribers 300 --baseline"
	"fanout-450|--subscribers 450 --baseline"
	"fanout-1000|--subscribers 1000 --baseline"
	"fast-credit|--subscribers 90 --credit 1"
	"slow-credit|--subscribers 100 --slow 10 --slow-fps 10 --credit 1"
	"stalled|--subscribers 20 --stalled 1000 --baseline"
	"channels-100|--channels 100 --subscribers 1000"
	"connect-3000|--subscribers 3000 --width 640 --height 360 --fps 15 --duration 5s --baseline"
	"idle-10000|--subscribers 1 --idle 10000 --duration 5s"
	"churn-200|--subscribers 10 --churn 200 --duration 60s"
	"metrics-off|--subscribers 300"
	"metrics-on|--subscribers 300 --hub-flags=--metrics-listen=127.0.0.1:0"
)

for s in "${scenarios[@]}"; do
	name="${s%%|*}" args="${s#*|}"
	if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
	for r in $(seq 1 "$runs"); do
		for t in "${targets[@]}"; do
			f="$OUT/$name.$t.$r.json"
			echo "bench $name ($t, run $r of $runs)" >&2
			# shellcheck disable=SC2086 # args are words on purpose
			if ! "$bins/framehub" --log-level warn bench --pin --json --server-binary "$bins/hub-$t" $args >"$f"; then
				echo "bench $name ($t) failed" >&2
				exit 1
			fi
		done
	done
done

"$PY" - "$OUT" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
runs = {}
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    name, target, _, _ = os.path.basename(f).rsplit(".", 3)
    runs.setdefault((name, target), []).append(json.load(open(f)))

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def fmt(v, d=3):
    return "" if v is None else f"{v:.{d}f}".rstrip("0").rstrip(".") if d else str(round(v))

rows = [("scenario", "hub", "runs", "hub CPU s/GB", "÷ raw-TCP", "fast delivered min (hub / raw)",
         "fast age p99 ms (hub / raw)", "slow age p50 ms", "connect s (hub / raw)", "RSS / private MB",
         "KB per idle sub", "churn goroutines / heap MB before→after", "client-bound runs")]
for (name, target), reps in runs.items():
    h = lambda k: med([r["hub"].get(k) for r in reps])
    b = lambda k: med([(r.get("baseline") or {}).get(k) for r in reps])
    sub = lambda part, k: med([r["hub"][part][k] for r in reps])
    bsub = lambda part, k: med([(r.get("baseline") or {}).get(part, {}).get(k) for r in reps])
    ratio = med([r.get("ratio_to_baseline", {}).get("server_cpu_per_gb") for r in reps])
    churn = [r["hub"].get("churn") for r in reps if r["hub"].get("churn")]
    ch = ""
    if churn:
        c = churn[0]
        ch = f'{c["goroutines_before"]}→{c["goroutines_after"]} / {c["heap_mb_before"]:.1f}→{c["heap_mb_after"]:.1f}'
    slow = sub("slow_age_ms", "p50") if reps[0]["slow"] else None
    rows.append((name, target, str(len(reps)), fmt(h("server_cpu_s_per_gb")), fmt(ratio),
                 f'{fmt(sub("fast_delivered_fraction", "min"))} / {fmt(bsub("fast_delivered_fraction", "min"))}',
                 f'{fmt(sub("fast_age_ms", "p99"), 1)} / {fmt(bsub("fast_age_ms", "p99"), 1)}',
                 fmt(slow, 1), f'{fmt(h("connect_s"))} / {fmt(b("connect_s"))}',
                 f'{fmt(h("server_rss_mb"), 1)} / {fmt(h("server_private_mb"), 1)}',
                 fmt(h("idle_kb_per_subscriber"), 1), ch,
                 str(sum(1 for r in reps if r.get("client_bound")))))
for r in rows:
    print("| " + " | ".join(r) + " |")
    if r is rows[0]:
        print("|" + "---|" * len(r))
print(f"\nreports: {out}", file=sys.stderr)
EOF
