#!/usr/bin/env bash
# What an idle connection costs wsecho: start it, open N idle WebSocket
# connections from a separate process (examples/hold_connections.rs, so the
# client's descriptors and memory are not counted), and compare wsecho's RSS
# and thread count before, while holding them, and after closing them.
#
#   .ci/mem10k.sh [N]        default N=10000; target <= 16 KiB RSS each
#   .ci/mem10k.sh N --deflate   the same with permessage-deflate negotiated and
#                               one compressed message each way (built with
#                               --features deflate; target <= 64 KiB, either
#                               engine).
#                               DEFLATE_OFFER sets the client's offer (default
#                               "permessage-deflate; client_max_window_bits").
#   .ci/mem10k.sh N --deflate-table
#                               the --deflate run for each of the offers a
#                               server meets (the defaults, 9-bit windows, no
#                               context takeover, both), then a Markdown table
#                               of RSS per idle connection (the README's).
#
# Environment: ENGINE=poll measures `wsecho --engine poll --workers 2`
# (built with --features mio; target <= 4 KiB), HOLD=SECS holds the
# connections that long before measuring (keepalive pings every 5 s are
# answered meanwhile; every connection must still be open at the end),
# TARGET_KIB overrides the target.
#
# Needs `ulimit -n` above N + a few (each side holds N descriptors).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}

if [ "${2:-}" = --deflate-table ]; then
    # Each offer in a fresh wsecho, so that no run inherits another's heap.
    # The server's config is wsecho --deflate's (12-bit windows, context
    # takeover unless the client asks it away): the client's offer chooses.
    # Like a browser's, each offer says client_max_window_bits (without it
    # the server would have to read 15-bit windows from the client).
    OFFERS=(
        "defaults: 12-bit windows, context takeover|permessage-deflate; client_max_window_bits"
        "9-bit windows, context takeover|permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"
        "no context takeover, 12-bit windows|permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
        "no context takeover, 9-bit windows|permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9"
    )
    ROWS=()
    for entry in "${OFFERS[@]}"; do
        label=${entry%%|*}
        echo "=== $label: ${entry#*|}"
        out=$(DEFLATE_OFFER=${entry#*|} "$0" "$N" --deflate) || { echo "$out"; exit 1; }
        echo "$out"
        bytes=$(sed -n 's/^RSS per idle connection: \([0-9]*\) bytes.*/\1/p' <<<"$out")
        ROWS+=("| permessage-deflate, $label | $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1024 }') KiB |")
    done
    echo
    echo "RSS per idle connection (${ENGINE:-threads}), $N connections, each with one compressed message each way:"
    echo "| negotiated | RSS per idle connection |"
    echo "| --- | --- |"
    printf '%s\n' "${ROWS[@]}"
    exit 0
fi
DEFLATE=()
FEATURES=()
HOLD_ARGS=()
if [ "${2:-}" = --deflate ]; then
    DEFLATE=(--deflate)
    FEATURES=(--features deflate)
    HOLD_ARGS=("${DEFLATE_OFFER:-permessage-deflate; client_max_window_bits}")
    # Issue 23: at most 64 KiB per idle compressed connection, either
    # engine (the live compression contexts are a process-wide budget of
    # about 9.5 MiB, see src/protocol/deflate/pool.rs, shared by all N).
    TARGET_KIB=${TARGET_KIB:-64}
fi
ENGINE_ARGS=()
if [ "${ENGINE:-threads}" = poll ]; then
    FEATURES=(--features "mio${DEFLATE[0]:+,deflate}")
    ENGINE_ARGS=(--engine poll --workers 2)
    TARGET_KIB=${TARGET_KIB:-4}
fi
HOLD=${HOLD:-1}
[ "$HOLD" -gt 1 ] && ENGINE_ARGS+=(--ping-interval 5 --ping-timeout 10)
PORT=${PORT:-0}
TARGET_KIB=${TARGET_KIB:-16}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 100)) ]; then
    echo "mem10k: ulimit -n is $(ulimit -n), need more than $N" >&2
    exit 2
fi

cargo build --release --quiet "${FEATURES[@]}" --bin wsecho --example hold_connections

LOG=$(mktemp)
FIFO=$(mktemp -u)
mkfifo "$FIFO"
cleanup() {
    [ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null || true
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    rm -f "$LOG" "$FIFO"
}
trap cleanup EXIT

# shellcheck source=.ci/wsecho_proc.sh
. .ci/wsecho_proc.sh
start_wsecho mem10k "$LOG" --listen "127.0.0.1:$PORT" --max-connections $((N + 100)) \
    "${DEFLATE[@]}" "${ENGINE_ARGS[@]}"
sample() { echo "$(status VmRSS) $(status Threads)"; }

sleep 0.3
read -r RSS0 THREADS0 < <(sample)
FDS0=$(ls "/proc/$SERVER/fd" | wc -l)
echo "wsecho at $ADDR: baseline RSS ${RSS0} KiB, ${THREADS0} threads"

# The holder prints "ready ..." once all N are open and echoed, then holds
# them until its stdin (the FIFO) is closed.
exec 3<>"$FIFO"
target/release/examples/hold_connections "$ADDR" "$N" "${HOLD_ARGS[@]}" <"$FIFO" >"$LOG.holder" 3>&- &
HOLDER=$!
for _ in $(seq 1200); do
    grep -q "^ready" "$LOG.holder" 2>/dev/null && break
    kill -0 "$HOLDER" 2>/dev/null || { echo "mem10k: holder failed" >&2; exit 1; }
    sleep 0.1
done
cat "$LOG.holder"
sleep "$HOLD"
read -r RSS1 THREADS1 < <(sample)
OPEN=$(( $(ls "/proc/$SERVER/fd" | wc -l) - FDS0 ))
PER=$(( (RSS1 - RSS0) * 1024 / N ))
echo "holding $N for ${HOLD}s: RSS ${RSS1} KiB, ${THREADS1} threads, ${OPEN} connections still open"
echo "RSS per idle connection: ${PER} bytes ($(( PER / 1024 )) KiB; target <= ${TARGET_KIB} KiB)"

exec 3>&-   # end of the holder's stdin: it closes every connection
wait "$HOLDER" || true
HOLDER=
cat "$LOG.holder"; rm -f "$LOG.holder"
for _ in $(seq 100); do
    [ "$(status Threads)" -le "$THREADS0" ] && break
    sleep 0.1
done
read -r RSS2 THREADS2 < <(sample)
echo "after closing: RSS ${RSS2} KiB, ${THREADS2} threads (baseline ${THREADS0})"

kill -INT "$SERVER"
wait "$SERVER" || true
SERVER=

FAIL=0
[ "$OPEN" -ge "$N" ] || { echo "mem10k: only $OPEN of $N connections survived the hold" >&2; FAIL=1; }
[ "$THREADS2" -le "$THREADS0" ] || { echo "mem10k: threads did not return to baseline" >&2; FAIL=1; }
[ "$PER" -le $((TARGET_KIB * 1024)) ] || { echo "mem10k: over ${TARGET_KIB} KiB per connection" >&2; FAIL=1; }
exit $FAIL
