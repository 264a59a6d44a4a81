#!/usr/bin/env bash
# Installs the real components that tests/redis_*.rs start: Debian's
# `redis-server` and `nginx` (and Python `websockets`, for the fan-out
# bench's peer, into the CI venv when one is given). Idempotent and cheap when
# everything is there; concurrent runs serialize on a lock.
#
#   .ci/redis.sh            # install what is missing; exit 1 if it cannot
#
# The tests run it themselves when a component is missing and skip, saying
# why, when it fails (no root, no apt-get, no network).
set -euo pipefail

need=()
command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] || need+=(redis-server)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || need+=(nginx-light)

if [[ ${#need[@]} -gt 0 ]]; then
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "redis.sh: need root and apt-get to install: ${need[*]}" >&2
        exit 1
    fi
    exec 9>/tmp/rfc6455-redis-install.lock
    flock 9
    echo "redis.sh: apt-get update" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    echo "redis.sh: apt-get install -y ${need[*]}" >&2
    # policy-rc.d keeps the packages' own services from starting: the tests
    # start their own instances on ephemeral ports.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.rfc6455
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        cp /usr/sbin/policy-rc.d.rfc6455 /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    rm -f /usr/sbin/policy-rc.d.rfc6455
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
redis-server --version
/usr/sbin/nginx -v 2>&1
