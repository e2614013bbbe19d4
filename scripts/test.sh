#!/usr/bin/env bash
# Runs the whole test suite: the README's test command, which CI runs too. First installs what
# the tests need when it is missing: `redis-server`, from Debian, since the Redis store and
# end-to-end tests start real redis-server processes. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1; then
        "$@"
    else
        sudo "$@"
    fi
}

if ! command -v redis-server >/dev/null 2>&1; then
    echo "scripts/test.sh: redis-server not found, installing the Debian package redis-server" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        redis-server
fi

cargo test --workspace "$@"
