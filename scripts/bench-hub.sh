#!/usr/bin/env bash
# Runs the hub scenarios of docs/BENCHMARKS.md with `framehub bench --pin`
# and prints their table: each figure the median [min-max] of --runs runs
# (default 5), in which the hub and the baselines (or, for credit mode, the
# hub with credit mode off) alternate; each ratio is taken within a run.
#
#   scripts/bench-hub.sh                           # the table, 5 runs each (about 40 minutes)
#   scripts/bench-hub.sh --only fanout-300,credit  # some rows
#   scripts/bench-hub.sh --all                     # also churn, 100 channels, metrics on/off
#   scripts/bench-hub.sh --before main             # each row also for main's hub, alternated
#
# Both hubs are CGO_ENABLED=0 builds (as a lean hub is deployed; the cgo
# binary maps ~70 MB of OpenCV's libraries, which RSS would count). The
# baselines and the load generator are this tree's: the same servers to
# compare with and the same client for every hub. JSON
# reports go to $OUT (default a temporary directory), one file per row and
# hub; the machine's load (uptime) is printed before each row and is in
# every run's report (load_avg_1m).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 before="" only="" all=""
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs="$2"; shift 2 ;;
	--before) before="$2"; shift 2 ;;
	--only) only="$2"; shift 2 ;;
	--all) all=1; shift ;;
	*) echo "usage: $0 [--runs N] [--before GIT-REV] [--only name,name] [--all]" >&2; exit 2 ;;
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
echo "building this tree's framehub (static: load generator, hub and baselines)" >&2
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
	"fanout-1000|--subscribers 1000 --baseline"
	"connect-3000|--subscribers 3000 --width 640 --height 360 --fps 15 --duration 5s --baseline"
	"stalled|--subscribers 20 --stalled 1000 --baseline"
	"credit|--subscribers 100 --slow 10 --slow-fps 10 --credit 1 --compare-default --baseline"
	"idle-2000|--subscribers 1 --idle 2000 --duration 5s"
)
if [ -n "$all" ]; then
	scenarios+=(
		"channels-100|--channels 100 --subscribers 1000"
		"churn-200|--subscribers 10 --churn 200 --duration 60s"
		"metrics-off|--subscribers 300"
		"metrics-on|--subscribers 300 --hub-flags=--metrics-listen=127.0.0.1:0"
	)
fi

start=$(date +%s)
for s in "${scenarios[@]}"; do
	name="${s%%|*}" args="${s#*|}"
	if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
	for t in "${targets[@]}"; do
		f="$OUT/$name.$t.json"
		echo "bench $name ($t hub, $runs runs); load: $(uptime)" >&2
		# The load generator and the baselines are always this tree's.
		# shellcheck disable=SC2086 # args are words on purpose
		if ! "$bins/hub-now" --log-level warn bench --pin --json --runs "$runs" --server-binary "$bins/hub-$t" \
			--baseline-binary "$bins/hub-now" $args >"$f"; then
			echo "bench $name ($t) failed" >&2
			exit 1
		fi
	done
done
echo "all rows took $(( ($(date +%s) - start) / 60 )) minutes" >&2

"$PY" - "$OUT" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]

def fmt(v, d=3):
    if v is None:
        return ""
    if d == 0:
        return str(round(v))
    return f"{v:.{d}f}"

def spread(med, lo, hi, d=3):
    if med is None:
        return ""
    if lo == hi:
        return fmt(med, d)
    return f"{fmt(med, d)} [{fmt(lo, d)}–{fmt(hi, d)}]"

def fig(rep, target, *path, d=3):
    vals = []
    for part in ("median", "min", "max"):
        v = rep.get(part, {}).get(target)
        for p in path:
            v = None if v is None else v.get(p)
        vals.append(v)
    return spread(*vals, d=d)

def ratio(rep, pair, key):
    r = (rep.get("ratios") or {}).get(pair, {}).get(key)
    return "" if r is None else spread(r["median"], r["min"], r["max"])

rows = [("row", "hub", "runs", "hub CPU s/GB", "÷ write", "÷ sendfile", "credit ÷ default (hub)", "credit ÷ default (sendfile)",
         "fast delivered min (hub / write / sendfile)", "fast age p99 ms (hub / write / sendfile)",
         "slow age p50 ms", "connect s (hub / write)", "RSS / private MB", "KB per idle sub",
         "client-bound runs", "load avg")]
for f in sorted(glob.glob(os.path.join(out, "*.json")), key=os.path.getmtime):
    name, target, _ = os.path.basename(f).rsplit(".", 2)
    rep = json.load(open(f))
    ts = rep["targets"]
    both = lambda *path, d=3: " / ".join(fig(rep, t, *path, d=d) for t in ts if t in ("hub", "write", "sendfile"))
    loads = [r["results"][t]["load_avg_1m"] for r in rep["runs"] for t in r["results"]]
    slow = fig(rep, "hub", "slow_age_ms", "p50", d=1) if rep["slow"] else ""
    rows.append((name, target, str(len(rep["runs"])), fig(rep, "hub", "server_cpu_s_per_gb"),
                 ratio(rep, "hub/write", "server_cpu_per_gb"), ratio(rep, "hub/sendfile", "server_cpu_per_gb"),
                 ratio(rep, "hub/hub-default", "server_cpu_per_gb"), ratio(rep, "sendfile/sendfile-default", "server_cpu_per_gb"),
                 both("fast_delivered_fraction", "min"), both("fast_age_ms", "p99", d=1), slow,
                 " / ".join(fig(rep, t, "connect_s") for t in ts if t in ("hub", "write")),
                 f'{fig(rep, "hub", "server_rss_mb", d=1)} / {fig(rep, "hub", "server_private_mb", d=1)}',
                 fig(rep, "hub", "idle_kb_per_subscriber", d=1) if rep["idle"] else "",
                 f'{rep["client_bound_runs"]} of {len(rep["runs"])}',
                 f"{min(loads):.1f}–{max(loads):.1f}"))
for r in rows:
    print("| " + " | ".join(r) + " |")
    if r is rows[0]:
        print("|" + "---|" * len(r))
print(f"\nreports: {out}", file=sys.stderr)
EOF
