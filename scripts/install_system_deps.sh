#!/usr/bin/env bash
# Install the OS packages the test suite needs (Debian/Ubuntu).
#   scripts/install_system_deps.sh [extra-package ...]
# Always ensures the PostgreSQL server binaries (tests start private clusters,
# see tests/support/pg_cluster.py); extra packages are installed if missing.
# Idempotent and silent when there is nothing to do.
set -euo pipefail

log() { echo "install_system_deps: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_pg_server() {
    local d
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
        return 0
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && return 0
    done
    return 1
}

# dpkg -s alone also succeeds for removed-but-not-purged packages.
pkg_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run '$*' but not root and sudo is not available; install these packages manually: ${missing[*]}"
    fi
}

missing=()
have_pg_server || missing+=(postgresql)
for pkg in "$@"; do
    pkg_installed "$pkg" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

command -v apt-get >/dev/null || die "apt-get not found; install manually: ${missing[*]}"

log "installing: ${missing[*]}"
as_root apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    have_pg_server || die "postgresql installed but initdb/pg_ctl/postgres still not found"
    # The package creates and (where services can start) launches a default
    # cluster on :5432. Tests use private clusters, so stop it to free the
    # port and memory; stopping is harmless if it never started.
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
            if [[ $status == online* ]]; then
                log "stopping default cluster $ver/$name (not used by tests)"
                as_root pg_ctlcluster "$ver" "$name" stop || log "warning: could not stop cluster $ver/$name"
            fi
        done
    fi
fi
