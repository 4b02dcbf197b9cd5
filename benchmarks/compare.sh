#!/usr/bin/env bash
# Tollgate against the peer a team would otherwise pick (benchmarks/peers: the same
# functions on Google's Python functions-framework), side by side, RUNS times; writes
# BENCHMARKS.md and benchmarks/*.png. A benchmark, never a test.
#   RUNS=3 DURATION=5 CONNECTIONS=32 benchmarks/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in wrk sqlite3; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done
if ! benchmarks/.venv/bin/python -c "import functions_framework, stripe, matplotlib" 2>/dev/null; then
    python3 -m venv benchmarks/.venv
    benchmarks/.venv/bin/pip install -q --disable-pip-version-check -r benchmarks/peers/requirements.txt
fi
# The functions as the Dockerfile ships them (static Swift standard library); the
# tollgate command, which only seeds keys here, as a plain release build.
for product in stripe-webhook auth-validator; do
    swift build -c release --static-swift-stdlib --scratch-path .build-release-static --product "$product" >&2
done
swift build -c release --scratch-path .build-release --product tollgate >&2
exec benchmarks/.venv/bin/python benchmarks/compare.py --runs "${RUNS:-3}" --duration "${DURATION:-5}" \
    --connections "${CONNECTIONS:-32}" "$@"
