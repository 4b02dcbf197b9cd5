#!/usr/bin/env bash
# How long `tollgate serve --clock virtual` takes to run a month: 4,320 quota resets,
# 30 exports and cleanups, the report tasks of a day with usage. Release build; prints
# the seconds of three runs. Usage: benchmarks/local-cloud-month.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --scratch-path .build-release --product tollgate >/dev/null
tollgate=.build-release/release/tollgate
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for run in 1 2 3; do
    port=$((20000 + RANDOM % 20000))
    "$tollgate" serve --clock virtual --start 2026-01-01T00:00:00Z --port "$port" --quiet --state "$work/$run.db" >"$work/serve.log" 2>&1 &
    server=$!
    until grep -q "listening on" "$work/serve.log"; do sleep 0.1; done
    export TOLLGATE_SERVE_URL="http://127.0.0.1:$port"
    for i in 1 2 3; do
        printf '{"requestId": "req_%s", "accountId": "acct_1", "time": "2026-01-01T00:00:00Z", "endpoint": "/v1/graphs", "units": %s}' "$i" "$i" >"$work/u.json"
        "$tollgate" publish usage-events --data "$work/u.json" >/dev/null
    done
    start=$(date +%s.%N)
    "$tollgate" clock advance 30d >/dev/null
    end=$(date +%s.%N)
    echo "run $run: a month in $(echo "$end - $start" | bc) s"
    kill "$server"
    wait "$server" || true
done
