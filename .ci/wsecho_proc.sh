# Sourced by .ci/mem10k.sh and .ci/soak.sh: start target/release/wsecho in
# the background and read its /proc status.
#
#   start_wsecho NAME LOG [wsecho flags...]   # sets SERVER (pid) and ADDR (host:port)
#   status FIELD                              # e.g. status VmRSS, status Threads

start_wsecho() {
    local name="$1" log="$2"
    shift 2
    target/release/wsecho --quiet "$@" 2>"$log" &
    SERVER=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && break
        sleep 0.05
    done
    ADDR=$(sed -n 's|.*listening on ws://\([^/]*\)/.*|\1|p' "$log")
    [ -n "$ADDR" ] || { echo "$name: wsecho did not start" >&2; cat "$log" >&2; exit 1; }
}

status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER/status"; }
