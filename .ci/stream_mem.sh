#!/usr/bin/env bash
# Peak memory of streaming a large message: wsecho echoes a message of SIZE
# bytes (default 1 GiB) that wsclient sends with --send-file and saves with
# --save, both streamed. Prints the peak RSS (VmHWM) of wsecho and of
# wsclient. Informational; needs `cargo build --release --bins`.
#
#   .ci/stream_mem.sh                 # 1 GiB, wsecho --stream-above 1 MiB
#   .ci/stream_mem.sh 4G 16777216     # size for head -c, then --stream-above
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/wsecho_proc.sh
. .ci/wsecho_proc.sh

size="${1:-1G}"
above="${2:-1048576}"
work="$(mktemp -d "${TMPDIR:-/tmp}/rfc6455-stream-mem.XXXXXX")"
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

head -c "$size" /dev/urandom >"$work/message.bin"
mkdir "$work/saved"
start_wsecho stream_mem "$work/wsecho.log" --listen 127.0.0.1:0 --stream-above "$above"

start=$(date +%s%N)
target/release/wsclient --send-file "$work/message.bin" --save "$work/saved" \
    --linger 5 "ws://$ADDR/" </dev/null 2>"$work/client.log" &
client=$!
# Its peak, read while it runs (the figure is gone once it exits).
client_kb=0
while kill -0 "$client" 2>/dev/null; do
    kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$client/status" 2>/dev/null || true)
    [ -n "$kb" ] && client_kb=$kb
    sleep 0.05
done
wait "$client"
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
server_kb=$(status VmHWM)
cmp -s "$work/message.bin" "$work/saved/message-1.bin" || {
    echo "stream_mem: the echo differs from the message" >&2
    cat "$work/client.log" >&2
    exit 1
}
bytes=$(stat -c %s "$work/message.bin")
echo "stream_mem: $bytes bytes echoed through wsecho --stream-above $above in ${took_ms} ms"
echo "stream_mem: peak RSS: wsecho ${server_kb} kB, wsclient ${client_kb} kB"
