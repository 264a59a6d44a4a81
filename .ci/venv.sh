#!/usr/bin/env bash
# Python venv for the CI tools: kosoku (Autobahn TestSuite driver) and
# websockets (reference/interop peer). Idempotent: installs only when the venv
# is missing or its package list changed (a stamp file records what is there).
#
#   . .ci/venv.sh          # from the repo root; exports CI_VENV (absolute)
#   .ci/venv.sh            # same, as a command; prints the venv path
#
# Environment:
#   CI_VENV           venv directory            (default: <repo>/target/ci-venv)
#   CI_VENV_PACKAGES  pip requirement specifiers (default: pinned list below)
#   PYTHON            interpreter to build from (default: python3; needs >= 3.10)

_ci_venv_main() {
    local venv="${CI_VENV:-$(dirname "${BASH_SOURCE[0]}")/../target/ci-venv}"
    local packages="${CI_VENV_PACKAGES:-kosoku==0.1.0 websockets==17.4}"
    local python="${PYTHON:-python3}"
    local stamp

    mkdir -p "$venv"
    venv="$(cd "$venv" && pwd)"
    stamp="$venv/.ci-packages"

    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$packages" ]] \
        && "$venv/bin/python" -c 'import kosoku' 2>/dev/null; then
        CI_VENV="$venv"
        export CI_VENV
        return 0
    fi

    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        echo "venv.sh: creating $venv with $("$python" --version 2>&1)" >&2
        if ! "$python" -m venv --clear "$venv" >&2; then
            # Debian ships ensurepip separately (python3-venv / python3.X-venv).
            if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
                echo "venv.sh: installing python3-venv" >&2
                DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
                "$python" -m venv --clear "$venv" >&2
            else
                echo "venv.sh: '$python -m venv' failed; install python3-venv" >&2
                return 1
            fi
        fi
    fi

    echo "venv.sh: pip install $packages" >&2
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q $packages >&2
    "$venv/bin/python" -c 'import kosoku' >&2
    printf '%s' "$packages" >"$stamp"
    CI_VENV="$venv"
    export CI_VENV
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: keep the caller's shell options and do not exit it.
    _ci_venv_main
else
    set -euo pipefail
    _ci_venv_main
    echo "$CI_VENV"
fi
