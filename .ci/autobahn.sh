#!/usr/bin/env bash
# Autobahn TestSuite conformance gate, driven by kosoku (pinned in .ci/venv.sh).
#
#   .ci/autobahn.sh server   # kosoku fuzzingclient  -> target/release/wsecho
#   .ci/autobahn.sh client   # kosoku fuzzingserver <- examples/autobahn_client
#   .ci/autobahn.sh server-deflate   # the same with permessage-deflate (RFC 7692):
#   .ci/autobahn.sh client-deflate   # built with --features deflate, run with
#                                    # --deflate, all 517 cases (12.* 13.* too)
#   .ci/autobahn.sh server-poll           # wsecho --engine poll (--features mio)
#   .ci/autobahn.sh server-poll-deflate   # ... with --deflate, all 517 cases
#
# Passes only if every case is OK or INFORMATIONAL, in both behavior and
# behaviorClose (see .ci/autobahn_gate.py), and the report holds all cases.
# Needs no stdin; installs kosoku into the CI venv if missing.
#
# Environment (all optional):
#   AUTOBAHN_OUT         report root; reports go to $AUTOBAHN_OUT/{server,client}
#                        (default: reports/autobahn; wiped before each run)
#   AUTOBAHN_EXPECT      cases the report must hold (default: 301, i.e. all but 12.* 13.*;
#                        517 in the -deflate modes)
#   AUTOBAHN_ARGS        kosoku case selection (default: "-x 12.* -x 13.*"; no globbing;
#                        none in the -deflate modes)
#   AUTOBAHN_TIMEOUT     seconds allowed for the kosoku run / the client (default: 600;
#                        1500 in the -deflate modes)
#   AUTOBAHN_PORT        port for the server under test / the fuzzing server
#                        (default: a free port)
#   AUTOBAHN_BUILD=0     do not run cargo build first
#   AUTOBAHN_SERVER_CMD  server under test, run by bash with $ADDR (127.0.0.1:PORT)
#                        and $PORT set (default: target/release/wsecho --listen $ADDR --quiet)
#   AUTOBAHN_CLIENT_CMD  client under test, run by bash with $URL (ws://127.0.0.1:PORT)
#                        set (default: cargo run --release --example autobahn_client -- $URL)
#   CI_VENV              venv holding kosoku (default: target/ci-venv, see .ci/venv.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[[ $# -eq 1 ]] || usage
MODE="$1"
[[ "$MODE" =~ ^(server(-poll)?|client)(-deflate)?$ ]] || usage
# --- permessage-deflate modes: same gate, all cases, compression on. ---
FEATURES=()
FEATURE_LIST=()
SUT_FLAGS=()
DEFAULT_EXPECT=301
DEFAULT_ARGS="-x 12.* -x 13.*"
DEFAULT_TIMEOUT=600
if [[ "$MODE" == *-deflate ]]; then
    # 216 more cases, of 1000 compressed messages each: about 5 minutes
    # alone on this machine, more when it is shared.
    DEFAULT_TIMEOUT=1500
    FEATURE_LIST+=(deflate)
    SUT_FLAGS=(--deflate)
    DEFAULT_EXPECT=517
    DEFAULT_ARGS=""
fi
# --- the poll engine (wsecho --engine poll): the same gates. ---
if [[ "$MODE" == server-poll* ]]; then
    FEATURE_LIST+=(mio)
    SUT_FLAGS+=(--engine poll)
fi
if [[ ${#FEATURE_LIST[@]} -gt 0 ]]; then
    FEATURES=(--features "$(IFS=,; echo "${FEATURE_LIST[*]}")")
fi
ROLE="${MODE%-deflate}"
ROLE="${ROLE%-poll}"

log() { echo "autobahn.sh $MODE: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# shellcheck source=.ci/venv.sh
. .ci/venv.sh
KOSOKU="$CI_VENV/bin/kosoku"
PY="$CI_VENV/bin/python"

OUT="${AUTOBAHN_OUT:-reports/autobahn}/$MODE"
EXPECT="${AUTOBAHN_EXPECT:-$DEFAULT_EXPECT}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-$DEFAULT_TIMEOUT}"
read -r -a CASE_ARGS <<<"${AUTOBAHN_ARGS-$DEFAULT_ARGS}"
rm -rf "$OUT"
mkdir -p "$OUT"
LOGDIR="$(cd "$OUT/.." && pwd)"   # logs beside the report; kosoku owns $OUT

# Background processes each get their own process group (setsid), so cleanup
# reaches their children too (cargo run -> example, timeout -> kosoku).
BG_PIDS=()
stop_group() { # pid: TERM the group, then KILL after 5 s
    local pid="$1" i
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
forget() { # pid: drop it from BG_PIDS once it has been reaped
    local p keep=()
    for p in "${BG_PIDS[@]}"; do
        if [[ "$p" != "$1" ]]; then keep+=("$p"); fi
    done
    BG_PIDS=("${keep[@]}")
}
cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do stop_group "$pid"; done
    BG_PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run "$@" under `timeout`, in its own process group, and wait for it; `wait`
# (unlike a foreground child) lets the INT/TERM traps run at once. Sets RC.
run_timed() {
    local pid log="$1"
    shift
    setsid -w timeout -k 10 "$TIMEOUT" "$@" </dev/null >"$log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    RC=0
    wait "$pid" || RC=$?
    forget "$pid"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until 127.0.0.1:$1 accepts, while pid $2 is alive; at most 30 s.
wait_for_port() {
    local port="$1" pid="$2" i
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

START=$(date +%s)
FAILED=0

if [[ "$ROLE" == server ]]; then
    PORT="${AUTOBAHN_PORT:-$(free_port)}"
    ADDR="127.0.0.1:$PORT"
    export PORT ADDR
    if [[ -n "${AUTOBAHN_SERVER_CMD:-}" ]]; then
        SERVER=(bash -c "$AUTOBAHN_SERVER_CMD")
    else
        if [[ "${AUTOBAHN_BUILD:-1}" != 0 ]]; then
            cargo build --release --quiet "${FEATURES[@]}" --bin wsecho
        fi
        SERVER=(target/release/wsecho --listen "$ADDR" --quiet "${SUT_FLAGS[@]}")
    fi
    log "starting server under test on $ADDR: ${SERVER[*]}"
    setsid -w "${SERVER[@]}" </dev/null >"$LOGDIR/$MODE-sut.log" 2>&1 &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    if ! wait_for_port "$PORT" "$SERVER_PID"; then
        tail -n 20 "$LOGDIR/$MODE-sut.log" >&2 || true
        die "server under test did not accept on $ADDR"
    fi

    log "kosoku -m fuzzingclient $ADDR ${CASE_ARGS[*]} -o $OUT (timeout ${TIMEOUT}s)"
    run_timed "$LOGDIR/$MODE-kosoku.log" \
        "$KOSOKU" -m fuzzingclient "$ADDR" "${CASE_ARGS[@]}" -o "$OUT"
    # kosoku exits 1 when a case fails (and still writes the report); the gate
    # judges those. Anything else means it did not finish.
    case "$RC" in
        0 | 1) ;;
        124 | 137) log "kosoku timed out after ${TIMEOUT}s"; FAILED=1 ;;
        *) tail -n 20 "$LOGDIR/$MODE-kosoku.log" >&2; log "kosoku exited with $RC"; FAILED=1 ;;
    esac
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" && src=0 || src=$?
        tail -n 20 "$LOGDIR/$MODE-sut.log" >&2 || true
        log "server under test died during the run (exit status $src)"
        FAILED=1
    fi
    cleanup
else
    # Port 0 lets kosoku pick a free port without a race; it prints the real
    # one ("fuzzingserver listening on ws://127.0.0.1:PORT") on stderr.
    log "kosoku -m fuzzingserver 127.0.0.1:${AUTOBAHN_PORT:-0} ${CASE_ARGS[*]} -o $OUT (timeout ${TIMEOUT}s)"
    KLOG="$LOGDIR/$MODE-kosoku.log"
    # Created before kosoku starts: the port is read from it below, and a
    # sed on a file the background job has not opened yet ends the script.
    : >"$KLOG"
    setsid -w timeout -k 10 "$TIMEOUT" "$KOSOKU" -m fuzzingserver "127.0.0.1:${AUTOBAHN_PORT:-0}" \
        "${CASE_ARGS[@]}" -o "$OUT" </dev/null >"$KLOG" 2>&1 &
    KOSOKU_PID=$!
    BG_PIDS+=("$KOSOKU_PID")
    PORT=""
    for _ in $(seq 300); do
        PORT="$(sed -n 's|^fuzzingserver listening on ws://[^ ]*:\([0-9][0-9]*\)$|\1|p' "$KLOG")"
        [[ -n "$PORT" ]] && break
        kill -0 "$KOSOKU_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$PORT" ]] || ! wait_for_port "$PORT" "$KOSOKU_PID"; then
        tail -n 20 "$KLOG" >&2 || true
        die "kosoku fuzzingserver did not start"
    fi
    URL="ws://127.0.0.1:$PORT"
    export URL PORT
    if [[ -n "${AUTOBAHN_CLIENT_CMD:-}" ]]; then
        CLIENT=(bash -c "$AUTOBAHN_CLIENT_CMD")
    else
        if [[ "${AUTOBAHN_BUILD:-1}" != 0 ]]; then
            cargo build --release --quiet "${FEATURES[@]}" --example autobahn_client
        fi
        CLIENT=(cargo run --release --quiet "${FEATURES[@]}" --example autobahn_client -- \
            "${SUT_FLAGS[@]}" "$URL")
    fi
    log "client under test: ${CLIENT[*]}"
    run_timed "$LOGDIR/$MODE-sut.log" "${CLIENT[@]}"
    if [[ "$RC" != 0 ]]; then
        tail -n 20 "$LOGDIR/$MODE-sut.log" >&2 || true
        if [[ "$RC" == 124 || "$RC" == 137 ]]; then
            log "client under test timed out after ${TIMEOUT}s"
        else
            log "client under test exited with $RC"
        fi
        FAILED=1
    fi
    # kosoku writes the report and exits only after /updateReports (it stops
    # accepting, drains in-flight cases, writes, exits). Killed, it writes nothing.
    for _ in $(seq 300); do
        kill -0 "$KOSOKU_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$KOSOKU_PID" 2>/dev/null; then
        log "kosoku still running 30 s after the client ended: no /updateReports?"
        FAILED=1
        cleanup
    else
        krc=0
        wait "$KOSOKU_PID" || krc=$?
        forget "$KOSOKU_PID"
        case "$krc" in
            0 | 1) ;;
            *) tail -n 20 "$KLOG" >&2; log "kosoku exited with $krc"; FAILED=1 ;;
        esac
    fi
fi

log "kosoku run took $(( $(date +%s) - START ))s; logs in $LOGDIR/$MODE-*.log"
"$PY" .ci/autobahn_gate.py "$OUT" --expect "$EXPECT" --label "$MODE" || FAILED=2
case "$FAILED" in
    0) log "PASS" ;;
    1) log "FAIL: the report passed, but the run did not (see the messages above)" ;;
    *) log "FAIL" ;;
esac
[[ "$FAILED" == 0 ]]
