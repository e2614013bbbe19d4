#!/usr/bin/env bash
# Runs the whole test suite: the README's test command, which CI runs too. First installs what
# the tests need when it is missing, from Debian: the servers the tests start for real
# (redis-server, dnsmasq, PostgreSQL, MariaDB, sshd, aiosmtpd), the tools the ping tests use,
# and the headless Chromium the dashboard test drives. Extra arguments go to `cargo test`. Then
# Schemathesis fuzzes the API of a live node (scripts/schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/debian.sh
. scripts/debian.sh

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
mapfile -t missing < <(missing_packages "${needed[@]}")
# The SMTP server the email tests start is a module of Debian's own Python.
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    missing+=("python3-aiosmtpd")
fi
install_packages scripts/test.sh "${missing[@]}"

cargo test --workspace "$@"
# The patched ractor's own unit tests (vendor/ractor/PATCHED.md).
cargo test --manifest-path vendor/ractor/Cargo.toml --lib --features cluster --locked
# The HTTP API against its own OpenAPI document, on a live node (both must pass).
scripts/schemathesis.sh
