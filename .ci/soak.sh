#!/usr/bin/env bash
# Soak: many clients echo random text and binary messages (0..1 MiB) through
# wsecho, every echo checked (examples/soak.rs), while wsecho's RSS and
# thread count are sampled every second. At the end the connections are
# gone and the threads are back to baseline.
#
#   .ci/soak.sh [CLIENTS] [MESSAGES_PER_CLIENT] [MAX_BYTES]
#   defaults: 200 clients, 2000 messages each, 1 MiB
#   ENGINE=poll: against `wsecho --engine poll` (built with --features mio)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-200}
MESSAGES=${2:-2000}
MAX=${3:-1048576}
FEATURES=()
ENGINE_ARGS=()
if [ "${ENGINE:-threads}" = poll ]; then
    FEATURES=(--features mio)
    ENGINE_ARGS=(--engine poll)
fi

cargo build --release --quiet "${FEATURES[@]}" --bin wsecho --example soak

LOG=$(mktemp)
cleanup() {
    [ -n "${LOAD:-}" ] && kill "$LOAD" 2>/dev/null || true
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT

# shellcheck source=.ci/wsecho_proc.sh
. .ci/wsecho_proc.sh
start_wsecho soak "$LOG" --listen 127.0.0.1:0 "${ENGINE_ARGS[@]}"
THREADS0=$(status Threads)
echo "wsecho at $ADDR: baseline RSS $(status VmRSS) KiB, $THREADS0 threads"
echo "soak: $CLIENTS clients x $MESSAGES messages, sizes 0..$MAX bytes"

target/release/examples/soak "ws://$ADDR/" "$CLIENTS" "$MESSAGES" "$MAX" &
LOAD=$!
T0=$SECONDS
PEAK=0
while kill -0 "$LOAD" 2>/dev/null; do
    RSS=$(status VmRSS)
    [ "$RSS" -gt "$PEAK" ] && PEAK=$RSS
    echo "t=$((SECONDS - T0))s wsecho RSS ${RSS} KiB, threads $(status Threads)"
    sleep 1

done
STATUS=0
wait "$LOAD" || STATUS=$?
LOAD=
for _ in $(seq 50); do
    [ "$(status Threads)" -le "$THREADS0" ] && break
    sleep 0.1
done
echo "after: wsecho RSS $(status VmRSS) KiB (peak ${PEAK} KiB), threads $(status Threads) (baseline $THREADS0)"
[ "$(status Threads)" -le "$THREADS0" ] || { echo "soak: threads did not return to baseline" >&2; STATUS=1; }
kill -INT "$SERVER"; wait "$SERVER" || true; SERVER=
exit "$STATUS"
