#!/usr/bin/env bash
# What does the one binary deployed, tollgate-functions (it serves whichever function
# K_SERVICE names; Cloud Run sets it to the service's name), cost a function against a
# binary of its own? Builds both static release binaries (as deploy/Dockerfile builds the
# one), then compares stripped and gzipped sizes, cold start to /healthz and idle memory,
# alternating starts in one run. A benchmark, never a test.
# Usage: benchmarks/one-binary.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for product in tollgate-functions auth-validator; do
    swift build -c release --static-swift-stdlib --scratch-path .build-one-binary --product "$product" >&2
    cp ".build-one-binary/release/$product" "$work/$product"
    strip "$work/$product"
done
printf '| binary | stripped (MB) | gzipped (MB) |\n|---|---|---|\n'
for product in auth-validator tollgate-functions; do
    printf '| %s | %s | %s |\n' "$product" "$(echo "scale=2; $(stat -c %s "$work/$product") / 1000000" | bc)" \
        "$(echo "scale=2; $(gzip -6 -c "$work/$product" | wc -c) / 1000000" | bc)"
done
echo
python3 benchmarks/one_binary_start.py "$work/auth-validator" "$work/tollgate-functions" "${1:-15}"
