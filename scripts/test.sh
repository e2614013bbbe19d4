#!/usr/bin/env bash
# Runs the whole test suite: the README's test command, which CI runs too. First installs what
# the tests need when it is missing, from Debian: the servers the tests start for real
# (redis-server, dnsmasq, PostgreSQL, MariaDB, sshd, aiosmtpd), the tools the ping tests use,
# and the headless Chromium the dashboard test drives. Extra arguments go to `cargo test`. Then
# Schemathesis fuzzes the API of a live node (scripts/schemathesis.sh).
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

# Each test server the suite starts, as a program to look for and the Debian package that
# provides it.
needed=(
    "redis-server:redis-server"
    "/usr/sbin/dnsmasq:dnsmasq-base"
    "/usr/lib/postgresql/15/bin/postgres:postgresql"
    "/usr/sbin/mariadbd:mariadb-server"
    "setpriv:util-linux"
    "unshare:util-linux"
    "/usr/sbin/sshd:openssh-server"
    "ssh-keygen:openssh-client"
    "chromium:chromium"
)
missing=()
for entry in "${needed[@]}"; do
    program="${entry%%:*}"
    package="${entry##*:}"
    if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "$program" ]; then
        missing+=("$package")
    fi
done
# The SMTP server the email tests start is a module of Debian's own Python.
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    missing+=("python3-aiosmtpd")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
    echo "scripts/test.sh: installing the Debian packages $packages" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
fi

cargo test --workspace "$@"
# The HTTP API against its own OpenAPI document, on a live node (both must pass).
scripts/schemathesis.sh
