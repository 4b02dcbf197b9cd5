#!/usr/bin/env bash
# Cold start of one function's release executable, linked two ways, side by side in one
# run: process start to the first 200 on /healthz, RUNS times each, alternating, so the
# machine's noise falls on both. Prints each build's median and the ratio. A benchmark,
# never a test. Usage: benchmarks/cold-start.sh [FUNCTION] (default auth-validator)
set -euo pipefail
cd "$(dirname "$0")/.."
function=${1:-auth-validator}
runs=${RUNS:-30}
swift build -c release --scratch-path .build-release --product "$function" >/dev/null
swift build -c release --static-swift-stdlib --scratch-path .build-release-static --product "$function" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TOLLGATE_STORE="sqlite://$work/state.db" TOLLGATE_KEY_PEPPER=benchmark-pepper-at-least-32-bytes-long
export STRIPE_WEBHOOK_SECRET=whsec_benchmark TOLLGATE_PRICE_TIERS=price_1=pro TOLLGATE_LOG_LEVEL=warning
measure() {  # binary port -> milliseconds to the first /healthz 200
    local start end pid
    start=$(date +%s%N)
    PORT=$2 "$1" >/dev/null 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$2/healthz"; do sleep 0.0005; done
    end=$(date +%s%N)
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    echo $(( (end - start) / 1000 ))
}
dynamic=() static=()
# One discarded start of each: the page cache warm for both.
measure "./.build-release/release/$function" 19998 >/dev/null
measure "./.build-release-static/release/$function" 19999 >/dev/null
for run in $(seq "$runs"); do
    port=$((20000 + RANDOM % 20000))
    dynamic+=("$(measure "./.build-release/release/$function" "$port")")
    static+=("$(measure "./.build-release-static/release/$function" "$((port + 1))")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
d=$(median "${dynamic[@]}") s=$(median "${static[@]}")
echo "$function cold start to /healthz, median of $runs (µs): dynamic stdlib $d, static stdlib $s, dynamic/static $(echo "scale=2; $d / $s" | bc)"
for build in release release-static; do
    echo "$build: $(stat -c %s ".build-$build/release/$function") bytes"
done
