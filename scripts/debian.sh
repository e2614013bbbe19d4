# Sourced by scripts/test.sh and scripts/bench-deps.sh: installs Debian packages when the
# programs they provide are missing.

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1; then
        "$@"
    else
        sudo "$@"
    fi
}

# Prints, one per line, the package of each `program:package` argument whose program is
# neither on the PATH nor an executable path.
missing_packages() {
    local entry program
    for entry in "$@"; do
        program="${entry%%:*}"
        if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "$program" ]; then
            echo "${entry##*:}"
        fi
    done
}

# Installs the packages given as arguments (duplicates are fine); `who` names the caller in
# the message.
install_packages() {
    local who="$1"
    shift
    [ "$#" -gt 0 ] || return 0
    local packages
    packages=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
    echo "$who: installing the Debian packages $packages" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
}
