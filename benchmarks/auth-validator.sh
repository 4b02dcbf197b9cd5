#!/usr/bin/env bash
# Measures one release auth-validator instance on this machine with wrk (Debian's):
#   1. a cached key checked without consuming (X-Tollgate-Cost: 0)
#   2. one unit consumed per request, through the SQLite store
# Prints requests/s and latency percentiles per run, repeated RUNS times (default 3).
# A benchmark, never a test: nothing here passes or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18090}"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
swift build -c release --scratch-path .build-release --product auth-validator >&2
swift build -c release --scratch-path .build-release --product tollgate >&2
bin=.build-release/release

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
export TOLLGATE_STORE="sqlite://$work/state.db"
export TOLLGATE_KEY_PEPPER="benchmark-pepper-not-a-secret-0123456789"
key=$($bin/tollgate keys create --account acct_bench --name bench 2>/dev/null)
# Enterprise with a limit no run can exhaust, so every request is admitted.
sqlite3 "$work/state.db" "INSERT INTO documents VALUES ('accounts', 'acct_bench',
  '{\"id\":{\"stringValue\":\"acct_bench\"},\"tier\":{\"stringValue\":\"enterprise\"},\"entitlements\":{\"mapValue\":{\"fields\":{\"enabled\":{\"booleanValue\":true},\"features\":{\"arrayValue\":{}},\"monthlyQuotaUnits\":{\"integerValue\":\"9000000000\"},\"maxNodes\":{\"integerValue\":\"1\"},\"maxDimensions\":{\"integerValue\":\"1\"}}}}}',
  0, 0)"

PORT=$PORT TOLLGATE_LOG_LEVEL=warning $bin/auth-validator > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.05; done

measure() { # label, then wrk's arguments
    local label=$1; shift
    local out rps p50 p99 errors
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    echo "$label requests/s=$rps p50=$p50 p99=$p99 non-2xx=${errors:-0}" >&2
    echo "$rps"
}

echo "# auth-validator, release, one instance; wrk -t2 -c$CONNECTIONS -d$DURATION on $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "# each run measures /healthz (the HTTP server's own ceiling here) beside the two checks, as ratios"
for run in $(seq "$RUNS"); do
    base=$(measure "run=$run healthz       " "http://127.0.0.1:$PORT/healthz")
    check=$(measure "run=$run check (cost=0)" -H "X-API-Key: $key" -H "X-Tollgate-Cost: 0" "http://127.0.0.1:$PORT/")
    consume=$(measure "run=$run consume (cost=1)" -H "X-API-Key: $key" -H "X-Tollgate-Cost: 1" "http://127.0.0.1:$PORT/")
    awk -v r="$run" -v b="$base" -v c="$check" -v u="$consume" 'BEGIN { printf "run=%s check/healthz=%.2f consume/healthz=%.2f\n", r, c / b, u / b }'
done 2>&1
used=$(sqlite3 "$work/state.db" "select json_extract(fields, '$.used.integerValue') from documents where collection = 'quotas'")
echo "units consumed in the store: $used (every admitted consuming request, none lost)"
