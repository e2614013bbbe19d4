#!/usr/bin/env bash
# Fuzzes the HTTP API of a live node with Schemathesis, driven by the node's own OpenAPI
# document (`GET /api/v1/openapi.json`): every operation gets generated valid and invalid
# requests, and every response must be no server error (5xx), conform to the documented
# status codes, content types, headers and schemas, reject invalid input, refuse requests
# without the token, and keep deleted resources deleted.
#
#   scripts/schemathesis.sh                 # bounded run: a few minutes on 2 cores
#   SCHEMATHESIS_MAX_EXAMPLES=500 SCHEMATHESIS_TIME_BUDGET=1800 scripts/schemathesis.sh
#   scripts/schemathesis.sh --include-path-regex monitors   # extra arguments go to `run`
#
# The node runs on 127.0.0.1 on a free port, with a fresh embedded store in a temporary
# directory, and is stopped by its pid when the script exits. It has no real targets: the
# check and reaction objects of the document are left open (`type` is any string), so fuzzed
# definitions are refused with 400 instead of probing addresses; webhook keys are random, so
# intake answers 404 (or 403 for a bad Slack token), as the document says.
#
# Schemathesis lives in a Python venv under target/schemathesis-venv, made once and reused;
# Debian's python3-venv is installed when the venv module is missing. Exits non-zero on any
# failure or when the time budget runs out.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.3.5
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-30}"
time_budget="${SCHEMATHESIS_TIME_BUDGET:-600}"
seed="${SCHEMATHESIS_SEED:-}"
target_dir="${CARGO_TARGET_DIR:-target}"
venv="target/schemathesis-venv"

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1; then
        "$@"
    else
        sudo "$@"
    fi
}

if ! /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "scripts/schemathesis.sh: installing the Debian package python3-venv" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
fi
# Hypothesis is pinned too: newer releases break hypothesis-jsonschema, which Schemathesis uses.
requirements="schemathesis==$SCHEMATHESIS_VERSION hypothesis==6.142.5"
if [ "$(cat "$venv/requirements.txt" 2>/dev/null || true)" != "$requirements" ]; then
    echo "scripts/schemathesis.sh: installing $requirements into $venv" >&2
    mkdir -p target
    /usr/bin/python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
    echo "$requirements" >"$venv/requirements.txt"
fi

cargo build --quiet --bin cloudroutes
binary="$target_dir/debug/cloudroutes"

work=$(mktemp -d)
node_pid=""
# Stops the node by its pid and removes its files, however the script ends.
cleanup() {
    if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$node_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$node_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
base="http://127.0.0.1:$port"
CLOUDROUTES_ADMIN_TOKEN="$token" CLOUDROUTES_LOG="${CLOUDROUTES_LOG:-warn}" \
    "$binary" node --http "127.0.0.1:$port" --data-dir "$work/data" >"$work/node.log" 2>&1 &
node_pid=$!

ready=""
for _ in $(seq 1 300); do
    if ! kill -0 "$node_pid" 2>/dev/null; then
        echo "scripts/schemathesis.sh: the node exited before it was ready:" >&2
        cat "$work/node.log" >&2
        exit 1
    fi
    if /usr/bin/python3 -c "import sys, urllib.request; urllib.request.urlopen('$base/readyz', timeout=1); sys.exit(0)" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "scripts/schemathesis.sh: the node at $base was not ready within 30 s:" >&2
    cat "$work/node.log" >&2
    exit 1
fi

# Every check but `positive_data_acceptance`: the document leaves check and reaction configs
# open on purpose (see above), so schema-valid bodies may still be refused with a documented
# 400.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance,negative_data_rejection
checks+=,missing_required_header,unsupported_method,use_after_free
checks+=,ensure_resource_availability,ignored_auth

args=(
    run "$base/api/v1/openapi.json"
    --url "$base"
    --header "Authorization: Bearer $token"
    --checks "$checks"
    --max-examples "$max_examples"
    --workers 2
    --request-timeout 30
    --generation-database none
    --suppress-health-check too_slow,filter_too_much
    --no-color
)
if [ -n "$seed" ]; then
    args+=(--seed "$seed")
fi

status=0
SCHEMATHESIS_TELEMETRY=false timeout --signal=INT --kill-after=30 "$time_budget" \
    "$venv/bin/schemathesis" "${args[@]}" "$@" || status=$?
if [ "$status" -eq 124 ]; then
    echo "scripts/schemathesis.sh: the run did not finish within $time_budget s" >&2
fi
if [ "$status" -ne 0 ]; then
    echo "scripts/schemathesis.sh: FAILED (exit $status); the node's log:" >&2
    tail -n 50 "$work/node.log" >&2
    exit "$status"
fi
if ! kill -0 "$node_pid" 2>/dev/null; then
    echo "scripts/schemathesis.sh: the node died during the run:" >&2
    cat "$work/node.log" >&2
    exit 1
fi
echo "scripts/schemathesis.sh: passed"
