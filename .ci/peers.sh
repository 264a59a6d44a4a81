#!/usr/bin/env bash
# Installs the real peers that tests/interop_peers.rs and tests/browser.rs
# talk to. Idempotent and cheap when everything is already there:
#
#   - a Python venv with websocket-client and tornado (pinned);
#   - Node `ws` and `playwright-core` (pinned, lockfile) in .ci/peers/;
#   - Debian's chromium, when /usr/bin/chromium is missing and we are root
#     (playwright-core drives it; it cannot download a browser of its own).
#
#   .ci/peers.sh           # as a command; prints the variables to export
#   . .ci/peers.sh         # sourced from the repo root; exports them
#
# Exports / prints:
#   RFC6455_PEERS_PYTHON    the venv's python
#   RFC6455_PEERS_NODE_DIR  the directory holding node_modules/
#   RFC6455_CHROMIUM        the browser binary
#
# Environment:
#   RFC6455_PEERS_VENV      venv directory (default: <repo>/target/peers-venv)
#   RFC6455_PEERS_NO_BROWSER=1   do not install chromium
#   PYTHON                  interpreter to build the venv from (default: python3)
#
# Concurrent runs (two test binaries, two checkouts sharing a target dir)
# serialize on a lock file, so nobody sees a half-built venv.

_peers_main() {
    local here repo venv python pip_packages chromium
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    repo="$(cd "$here/.." && pwd)"
    venv="${RFC6455_PEERS_VENV:-$repo/target/peers-venv}"
    python="${PYTHON:-python3}"
    pip_packages="websocket-client==1.9.2 tornado==6.6.1"
    chromium=/usr/bin/chromium

    mkdir -p "$venv"
    venv="$(cd "$venv" && pwd)"

    # One installer at a time per venv. The lock is released on every way
    # out, so a failure in a sourcing shell cannot leave it held.
    exec 9>"$venv.lock"
    flock 9
    local rc=0
    _peers_install "$here" "$venv" "$python" "$pip_packages" "$chromium" || rc=$?
    exec 9>&-
    [[ $rc == 0 ]] || return "$rc"

    RFC6455_PEERS_PYTHON="$venv/bin/python"
    RFC6455_PEERS_NODE_DIR="$here/peers"
    RFC6455_CHROMIUM="$chromium"
    export RFC6455_PEERS_PYTHON RFC6455_PEERS_NODE_DIR RFC6455_CHROMIUM
}

_peers_install() {
    local here="$1" venv="$2" python="$3" pip_packages="$4" chromium="$5"
    local stamp lock_hash
    local apt_updated=0
    _peers_apt() {
        if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
            echo "peers.sh: need root and apt-get to install: $*" >&2
            return 1
        fi
        if [[ $apt_updated == 0 ]]; then
            echo "peers.sh: apt-get update" >&2
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
            apt_updated=1
        fi
        echo "peers.sh: apt-get install -y $*" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
    }

    # --- Python: websocket-client, tornado --------------------------------
    stamp="$venv/.peers-packages"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$pip_packages" ]] \
        && "$venv/bin/python" -c 'import websocket, tornado.websocket' 2>/dev/null; then
        :
    else
        if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
            echo "peers.sh: creating $venv with $("$python" --version 2>&1)" >&2
            if ! "$python" -m venv --clear "$venv" >&2; then
                # Debian ships ensurepip separately.
                _peers_apt python3-venv || return 1
                "$python" -m venv --clear "$venv" >&2 || return 1
            fi
        fi
        echo "peers.sh: pip install $pip_packages" >&2
        # shellcheck disable=SC2086  # the package list is meant to split
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
            $pip_packages >&2 || return 1
        "$venv/bin/python" -c 'import websocket, tornado.websocket' >&2 || return 1
        printf '%s' "$pip_packages" >"$stamp"
    fi

    # --- Node: ws, playwright-core ----------------------------------------
    if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
        _peers_apt nodejs npm || return 1
    fi
    # The stamp is the lockfile's hash: a changed lockfile reinstalls.
    lock_hash="$(sha256sum "$here/peers/package-lock.json" | cut -d' ' -f1)"
    stamp="$here/peers/node_modules/.peers-lock-hash"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
        :
    else
        echo "peers.sh: npm ci in $here/peers" >&2
        (cd "$here/peers" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
        printf '%s' "$lock_hash" >"$stamp"
    fi

    # --- Browser: Debian's chromium ---------------------------------------
    if [[ ! -x "$chromium" && "${RFC6455_PEERS_NO_BROWSER:-}" != 1 ]]; then
        if [[ "$(id -u)" == 0 ]]; then
            _peers_apt chromium || return 1
        else
            echo "peers.sh: $chromium is missing and we are not root: the browser test will fail" >&2
        fi
    fi
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: keep the caller's shell options and do not exit it.
    _peers_main
else
    set -euo pipefail
    _peers_main
    echo "RFC6455_PEERS_PYTHON=$RFC6455_PEERS_PYTHON"
    echo "RFC6455_PEERS_NODE_DIR=$RFC6455_PEERS_NODE_DIR"
    echo "RFC6455_CHROMIUM=$RFC6455_CHROMIUM"
fi
