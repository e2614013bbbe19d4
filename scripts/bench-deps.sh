#!/usr/bin/env bash
# Installs what the benchmarks start for real, from Debian, when it is missing: nginx (the
# check target of `cargo bench --bench compare`), Prometheus blackbox exporter and Monit (the
# tools it compares CloudRoutes with) and redis-server (the cluster benchmark). Run it once
# before `cargo bench`; a bench that finds a tool missing names this script and skips the tool.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/debian.sh
. scripts/debian.sh

# Each program a benchmark starts, as a program to look for and the Debian package that
# provides it. nginx-light is the smallest nginx with the stub_status module.
needed=(
    "/usr/sbin/nginx:nginx-light"
    "prometheus-blackbox-exporter:prometheus-blackbox-exporter"
    "/usr/bin/monit:monit"
    "redis-server:redis-server"
)
mapfile -t missing < <(missing_packages "${needed[@]}")
if [ "${#missing[@]}" -eq 0 ]; then
    echo "scripts/bench-deps.sh: everything the benchmarks need is installed" >&2
    exit 0
fi
install_packages scripts/bench-deps.sh "${missing[@]}"
