#!/usr/bin/env bash
# Where the CPU of a check goes: CloudRoutes against the bare tokio + reqwest client, at the
# same paced rate against the same local nginx (the side-by-side bench's two Rust roles).
#
#   scripts/profile-compare.sh [RATE] [RECORD_SECS]      (defaults: 10000 checks/s, 12 s)
#
# Runs `cargo bench --bench compare` for the two tools, attaches `perf record` (DWARF call
# graphs) to each role process once it has warmed up, and sorts every sample into one part of
# the check path by the frames on its stack: the HTTP exchange (reqwest, hyper), the monitor
# actor around it, ractor's messaging, the ticker, the router, the store, metrics, and the
# runtime parking and waking its threads. Prints microseconds of CPU per check for each part.
# Needs `perf` (Debian package `linux-perf`) and what the bench needs (nginx).
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-10000}"
record_secs="${2:-12}"
if ! command -v perf >/dev/null; then
    echo "perf is not installed: apt-get install linux-perf" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo bench --bench compare --no-run >/dev/null 2>&1
cargo bench --bench compare -- --rate "$rate" --seconds $((record_secs + 40)) \
    --tools cloudroutes,bare --rounds 1 >"$work/bench.log" 2>&1 &
bench=$!

# Descendants of the bench whose command line names a role.
role_pid() {
    local role="$1" pids
    pids="$(ps -eo pid=,ppid= | awk -v root="$bench" '
        { parent[$1] = $2 }
        END { for (p in parent) { q = p; while (q in parent && q != root) q = parent[q];
              if (q == root) print p } }')"
    for pid in $pids; do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--role $role"; then
            echo "$pid"
            return
        fi
    done
}

for role in cloudroutes bare; do
    pid=""
    until [ -n "$pid" ]; do
        kill -0 "$bench" 2>/dev/null || { cat "$work/bench.log" >&2; exit 1; }
        sleep 1
        pid="$(role_pid "$role")"
    done
    sleep 20 # seeding, spawning and one interval of warm-up
    perf record -q -F 997 --call-graph dwarf,16384 -p "$pid" -o "$work/$role.data" \
        -- sleep "$record_secs" 2>/dev/null
    perf script -i "$work/$role.data" >"$work/$role.txt" 2>/dev/null
done
wait "$bench" || true
grep -E "CloudRoutes|bare client" "$work/bench.log" | head -3

python3 - "$work" "$rate" "$record_secs" <<'EOF'
import collections, sys
work, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# The first pattern found anywhere on a sample's stack decides its part.
parts = [("store (state persistence)", "EmbeddedStore"), ("router", "RouterActor"),
         ("router", "router::"), ("HTTP exchange", "reqwest"), ("HTTP exchange", "hyper"),
         ("metrics", "prometheus"), ("metrics", "record_lateness"),
         ("ticker", "Ticker::start"), ("monitor actor, around the HTTP", "monitor::"),
         ("ractor messaging", "ractor::"), ("bare client's task", "roles::bare"),
         ("runtime: park and wake", "park")]
per_check = 1e6 / 997 / (rate * secs)
tables = {}
for role in ("cloudroutes", "bare"):
    counts = collections.Counter()
    for sample in open(f"{work}/{role}.txt").read().split("\n\n"):
        if sample.strip():
            counts[next((part for part, pattern in parts if pattern in sample), "other")] += 1
    tables[role] = counts
names = [p for p, _ in parts] + ["other"]
print(f"\nCPU µs per check by part, {rate} checks/s, {secs} s of samples each")
print(f"{'part':34} {'CloudRoutes':>12} {'bare':>8}")
seen = []
for name in names:
    if name in seen:
        continue
    seen.append(name)
    cr, bare = tables["cloudroutes"][name] * per_check, tables["bare"][name] * per_check
    if cr or bare:
        print(f"{name:34} {cr:12.1f} {bare:8.1f}")
total = {role: sum(c.values()) * per_check for role, c in tables.items()}
print(f"{'total':34} {total['cloudroutes']:12.1f} {total['bare']:8.1f}")
EOF
