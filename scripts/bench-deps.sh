#!/usr/bin/env bash
# Installs what the benchmarks start for real, from Debian, when it is missing: nginx (the
# check target of `cargo bench --bench compare`), Prometheus blackbox exporter and Monit (the
# tools it compares CloudRoutes with) and redis-server (the cluster benchmark). Run it once
# before `cargo bench`; a bench that finds a tool missing names this script and skips the tool.
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

# Each program a benchmark starts, as a program to look for and the Debian package that
# provides it. nginx-light is the smallest nginx with the stub_status module.
needed=(
    "/usr/sbin/nginx:nginx-light"
    "prometheus-blackbox-exporter:prometheus-blackbox-exporter"
    "/usr/bin/monit:monit"
    "redis-server:redis-server"
)
missing=()
for entry in "${needed[@]}"; do
    program="${entry%%:*}"
    package="${entry##*:}"
    if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "$program" ]; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "scripts/bench-deps.sh: everything the benchmarks need is installed" >&2
    exit 0
fi
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "scripts/bench-deps.sh: installing the Debian packages $packages" >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
