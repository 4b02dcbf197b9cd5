#!/usr/bin/env bash
# The quota simulator in full (a minute of each scenario at full load, both paths side
# by side, release build): writes benchmarks/quota-simulation.json (with per-second
# series) and .md (the table), then re-renders BENCHMARKS.md with its table and plot.
# Deterministic by SEED (default 1). Usage: benchmarks/quota-simulation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --scratch-path .build-release --product tollgate >&2
.build-release/release/tollgate simulate quota --seed "${SEED:-1}" --json benchmarks/quota-simulation.json > benchmarks/quota-simulation.md
cat benchmarks/quota-simulation.md
if [[ -x benchmarks/.venv/bin/python && -f benchmarks/results.json ]]; then
    benchmarks/.venv/bin/python benchmarks/compare.py --report-only benchmarks/results.json
fi
