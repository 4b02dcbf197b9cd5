#!/usr/bin/env bash
# auth-validator consuming one unit a request, strict mode against lease mode, side by
# side RUNS times (alternating, so the machine's noise falls on both), on the same seeded
# Enterprise key as compare.sh. A benchmark, never a test. Usage: RUNS=3 benchmarks/quota-modes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --scratch-path .build-release-static --product auth-validator >&2
swift build -c release --scratch-path .build-release --product tollgate >&2
[[ -x benchmarks/.venv/bin/python ]] || { echo "run benchmarks/compare.sh once first (it makes benchmarks/.venv)" >&2; exit 1; }
RUNS=${RUNS:-3} exec benchmarks/.venv/bin/python - <<'PY'
import os, re, subprocess, sys, tempfile, time
sys.path.insert(0, "benchmarks")
import compare
work = tempfile.mkdtemp(prefix="tollgate-modes-")
figures = {"strict": [], "lease": []}
for run in range(int(os.environ["RUNS"])):
    for mode in ("strict", "lease"):
        state = os.path.join(work, f"{mode}-{run}.db")
        key = compare.seed_key("tollgate", state)
        os.environ["TOLLGATE_QUOTA_MODE"] = mode
        server = compare.Server("tollgate", "auth-validator", state)
        try:
            server.wait_healthy()
            out = subprocess.run(["wrk", "-t2", "-c32", "-d5s", "--latency", "-H", f"X-API-Key: {key}", "-H", "X-Tollgate-Cost: 1",
                                  server.url + "/"], capture_output=True, text=True, check=True).stdout
        finally:
            server.stop()
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p99 = re.search(r"99%\s+(\S+)", out).group(1)
        assert "Non-2xx" not in out, out
        figures[mode].append(rps)
        print(f"run {run + 1} {mode}: {rps:.0f} requests/s, p99 {p99}", flush=True)
ratios = sorted(lease / strict for strict, lease in zip(figures["strict"], figures["lease"]))
print(f"lease / strict requests/s: min {ratios[0]:.2f}, median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f}")
PY
