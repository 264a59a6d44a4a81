#!/usr/bin/env bash
# Installs the real components that tests/redis_chat.rs and
# benches/fanout.rs start: Debian's `redis-server` and `nginx`. Idempotent
# and cheap when everything is there; concurrent installs serialize on a lock.
#
#   .ci/redis.sh            # install what is missing; exit 1 if it cannot
#   .ci/redis.sh test       # install, then run tests/redis_chat.rs with the
#                           # redis feature (CI's step)
#
# The tests run it themselves when a component is missing and skip, saying
# why, when it fails (no root, no apt-get, no network).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == test ]]; then
    # A failed install is not the end: the tests then skip, saying why.
    bash .ci/redis.sh || echo "redis.sh: install failed; the Redis/nginx tests will skip" >&2
    exec cargo test --features redis --test redis_chat
fi

need=()
command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] || need+=(redis-server)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || need+=(nginx)

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
