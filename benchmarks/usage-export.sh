#!/usr/bin/env bash
# Export throughput and peak memory of a release `tollgate export` (the usage-export
# code) at 100 thousand and 1 million ledger records on the SQLite store and blob fake.
# Side by side in the same run, the floor a streaming export cannot beat on this
# machine: `gzip -6 | sha256sum` over the same NDJSON bytes. Prints records/s, peak
# resident memory (GNU time) and the ratio to the floor, RUNS times (default 3).
# A benchmark, never a test: nothing here passes or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
SIZES="${SIZES:-100000 1000000}"
DAY=2026-01-01

swift build -c release --scratch-path .build-release --product tollgate >&2
bin=.build-release/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for size in $SIZES; do
    for _ in $(seq "$RUNS"); do
        rm -f "$work"/state.db*
        export TOLLGATE_STORE="sqlite://$work/state.db"
        $bin/tollgate export run >/dev/null 2>&1 || true   # creates the schema
        python3 benchmarks/seed_ledger.py "$work/state.db" "$size" "$DAY" "$work/plain.ndjson"
        start=$(date +%s.%N)
        /usr/bin/time -f "%M" -o "$work/rss" $bin/tollgate export run --date "$DAY" >/dev/null 2>&1
        end=$(date +%s.%N)
        base_start=$(date +%s.%N)
        gzip -6 -c "$work/plain.ndjson" | sha256sum >/dev/null
        base_end=$(date +%s.%N)
        python3 - "$size" "$start" "$end" "$base_start" "$base_end" "$(cat "$work/rss")" <<'PY'
import sys
size, s, e, bs, be, rss = int(sys.argv[1]), *map(float, sys.argv[2:6]), int(sys.argv[6])
ours, floor = size / (e - s), size / (be - bs)
print(f"records={size:>8}  tollgate {ours:>9.0f} records/s  peak {rss / 1024:6.1f} MB   gzip|sha256 floor {floor:>9.0f} records/s   ratio {ours / floor:.2f}")
PY
    done
done
