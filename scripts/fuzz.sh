#!/usr/bin/env bash
# Runs every fuzz target for a bounded time with a large case count, and reports per target.
#
#   scripts/fuzz.sh            # 30 s per target
#   scripts/fuzz.sh 300        # 5 min per target
#   FUZZ_CASES=5000000 scripts/fuzz.sh 60
#
# The targets are property-based tests (proptest, stable toolchain) that the normal test
# suite runs with a few cases: the webhook payload parsers (checks/tests/fuzz_intake.rs),
# check and reaction configs and URL validation (checks/tests/fuzz_config.rs,
# reactions/tests/fuzz_config.rs), and the node configuration from TOML and environment
# (engine/src/config/fuzz.rs). The harness is engine/src/fuzzing.rs: each target stops at
# FUZZ_CASES cases (PROPTEST_CASES) or SECONDS_PER_TARGET seconds, whichever comes first.
# A failure prints the shrunk input; the script then exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
    exit 2
fi
export FUZZ_SECONDS="$seconds"
export PROPTEST_CASES="${FUZZ_CASES:-100000000}"

# package, cargo test selection, name filter
suites=(
    "cloudroutes-checks|--test fuzz_intake|fuzz_"
    "cloudroutes-checks|--test fuzz_config|fuzz_"
    "cloudroutes-reactions|--test fuzz_config|fuzz_"
    "cloudroutes-engine|--lib|config::fuzz::"
)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
for suite in "${suites[@]}"; do
    IFS='|' read -r package selection filter <<<"$suite"
    echo "== $package $selection ($seconds s per target)"
    # shellcheck disable=SC2086
    if ! cargo test --quiet -p "$package" $selection -- "$filter" --nocapture --test-threads=1 \
        >"$log" 2>&1; then
        failed=1
        cat "$log"
    fi
    grep -E '^fuzz [a-z_]+: ' "$log" || true
done

if [ "$failed" -ne 0 ]; then
    echo "scripts/fuzz.sh: FAILED" >&2
    exit 1
fi
echo "scripts/fuzz.sh: every target passed"
