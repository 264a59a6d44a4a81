#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 20) on a copy
# of its seed corpus, so a run never writes into the repository. Exits
# non-zero if any target crashes, leaks past the RSS limit or times out; the
# reproducer is left in the temporary directory and its path is printed.
#
#   fuzz/smoke.sh        # 20 s per target
#   fuzz/smoke.sh 120    # 2 min per target
#   TARGETS="frame_header protocol_server" fuzz/smoke.sh 60
set -euo pipefail

seconds="${1:-20}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
targets="${TARGETS:-frame_header protocol_server protocol_client protocol_in_place protocol_deflate websocket_driver handshake_request handshake_response lifecycle}"
work="$(mktemp -d "${TMPDIR:-/tmp}/rfc6455-fuzz-smoke.XXXXXX")"

cd "$root"
echo "building fuzz targets (cargo +nightly fuzz build)"
cargo +nightly fuzz build

failed=()
for target in $targets; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"
    cp "$here/corpus/$target"/seed-* "$corpus/" 2>/dev/null || true
    log="$work/$target.log"
    status=0
    # -max_len 4096: the seeds are small; longer inputs only slow the search.
    cargo +nightly fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -max_len=4096 -timeout=10 \
        -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')"
    if [ "$status" -ne 0 ]; then
        echo "FAIL $target (exit $status, $execs execs): see $log"
        grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -5 || true
        failed+=("$target")
    else
        echo "ok   $target: $execs execs in ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs"
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "crashed: ${failed[*]} (logs and artifacts in $work)"
    exit 1
fi
rm -rf "$work"
echo "all targets ran ${seconds}s without a crash"
