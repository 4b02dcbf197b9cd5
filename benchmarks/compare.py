"""Tollgate against its peer (benchmarks/peers/main.py on Google's functions-framework),
side by side in one run, repeated; writes BENCHMARKS.md and two plots.

Run through benchmarks/compare.sh, which builds the release binaries and the peer's venv.
A benchmark, never a test: it reports, it does not pass or fail.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build-release-static", "release")  # the functions, linked as the Dockerfile links them
TOLLGATE = os.path.join(ROOT, ".build-release", "release", "tollgate")
PEER_VENV = os.path.join(ROOT, "benchmarks", ".venv")
SECRET = "whsec_benchmark_not_a_secret"
PEPPER = "benchmark-pepper-not-a-secret-0123456789"
COLD_STARTS = 7
TIERS = "price_free_monthly=free,price_pro_monthly=pro,price_enterprise_monthly=enterprise"
TEMPLATE = os.path.join(ROOT, "events", "stripe", "payloads", "subscription-created-pro.json")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None, data=None, timeout=2):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def tree_rss_kb(pid, field="VmRSS:"):
    """Resident memory of a process and its children (gunicorn forks a worker); `RssAnon:`
    counts only private memory, not the pages of shared libraries and the binary."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as status:
                for line in status:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    """One function server: Tollgate's executable or the peer under functions-framework."""

    def __init__(self, system, function, state):
        self.system, self.function, self.state = system, function, state
        self.port = free_port()
        env = dict(os.environ)
        if system == "tollgate":
            env.update({"PORT": str(self.port), "TOLLGATE_STORE": f"sqlite://{state}", "TOLLGATE_LOG_LEVEL": "warning",
                        "STRIPE_WEBHOOK_SECRET": SECRET, "TOLLGATE_CHECKOUT_SECRET": "benchmark-checkout-secret-local-only-000", "TOLLGATE_PRICE_TIERS": TIERS, "TOLLGATE_KEY_PEPPER": PEPPER})
            command = [os.path.join(BIN, function)]
        else:
            env.update({"PEER_DB": state, "PEER_WEBHOOK_SECRET": SECRET, "PEER_PRICE_TIERS": TIERS, "PEER_KEY_PEPPER": PEPPER})
            target = {"stripe-webhook": "stripe_webhook", "auth-validator": "validate_key"}[function]
            command = [os.path.join(PEER_VENV, "bin", "functions-framework"), "--source",
                       os.path.join(ROOT, "benchmarks", "peers", "main.py"), "--target", target, "--host", "127.0.0.1",
                       "--port", str(self.port)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, limit=30):
        while time.perf_counter() - self.started < limit:
            if get(self.url + "/healthz", timeout=0.5) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.001)
        raise RuntimeError(f"{self.system} {self.function} did not start")

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()


def signed_events(count, path, start=0):
    """Distinct subscription events (2,000 customers, alternating tiers), signed now."""
    template = json.load(open(TEMPLATE))
    now = int(time.time())
    with open(path, "w") as out:
        for i in range(start, start + count):
            event = json.loads(json.dumps(template))
            event["id"] = f"evt_bench_{i}"
            event["created"] = 1767225600 + i
            event["type"] = "customer.subscription.updated"
            subscription = event["data"]["object"]
            subscription["customer"] = f"cus_bench_{i % 2000}"
            subscription["id"] = f"sub_bench_{i % 2000}"
            subscription["items"]["data"][0]["price"]["id"] = "price_pro_monthly" if i % 2 else "price_enterprise_monthly"
            body = json.dumps(event, separators=(",", ":"))
            signature = hmac.new(SECRET.encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
            out.write(f"t={now},v1={signature}\t{body}\n")
    return path


def wrk(url, duration, connections, extra, pid, script_args=()):
    """Runs wrk while sampling the server's resident memory; returns rps, latencies (ms), peak RSS."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"] + extra + [url] + list(script_args)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_kb(pid))
        time.sleep(0.1)
    output = process.stdout.read()
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not found:
        raise RuntimeError(f"wrk said: {output}")
    rps = float(found.group(1))
    latency = {}
    for percentile, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        latency[int(percentile)] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {"rps": rps, "latency": latency, "peak_rss_mb": peak / 1024, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def seed_key(system, state):
    """An enterprise account with a quota no run exhausts, and one API key; returns the key."""
    if system == "tollgate":
        env = dict(os.environ, TOLLGATE_STORE=f"sqlite://{state}", TOLLGATE_KEY_PEPPER=PEPPER)
        key = subprocess.run([TOLLGATE, "keys", "create", "--account", "acct_bench", "--name", "bench"],
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
        fields = {"id": {"stringValue": "acct_bench"}, "tier": {"stringValue": "enterprise"}, "entitlements": {"mapValue": {"fields": {
            "enabled": {"booleanValue": True}, "features": {"arrayValue": {}},
            "monthlyQuotaUnits": {"integerValue": "9000000000"}, "maxNodes": {"integerValue": "1"},
            "maxDimensions": {"integerValue": "1"}}}}}
        with sqlite3.connect(state) as db:
            db.execute("INSERT INTO documents VALUES ('accounts', 'acct_bench', ?, 0, 0)", (json.dumps(fields),))
        return key
    key = "tg_test_" + "B" * 32
    with sqlite3.connect(state) as db:
        db.executescript(open(os.path.join(ROOT, "benchmarks", "peers", "main.py")).read().split('SCHEMA = """')[1].split('"""')[0])
        db.execute("INSERT INTO accounts VALUES ('acct_bench', 'enterprise', 'active', 1, 9000000000, 'cus_bench', 0, 0)")
        digest = hmac.new(PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()
        db.execute("INSERT INTO api_keys VALUES (?, 'acct_bench', NULL, NULL)", (digest,))
    return key


def measure_run(run, work, duration, connections):
    results = {}
    for system in ("tollgate", "peer"):
        for function in ("stripe-webhook", "auth-validator"):
            label = f"{system}/{function}"
            state = os.path.join(work, f"{run}-{system}-{function}.db")
            # Cold start: COLD_STARTS new processes on an existing state file (as a new Cloud Run
            # instance finds its database), to /healthz and to the first real request served.
            starts, firsts = [], []
            cold_state = os.path.join(work, f"cold-{run}-{system}-{function}.db")
            cold_key = seed_key(system, cold_state) if function == "auth-validator" else None
            warm = Server(system, function, cold_state)
            try:
                warm.wait_healthy()
                get(warm.url + "/", {"X-API-Key": "tg_test_" + "C" * 32})  # the peer creates its schema on first use
            finally:
                warm.stop()
            for attempt in range(COLD_STARTS):
                if function == "auth-validator":
                    key = cold_key
                    real = lambda url: get(url + "/", {"X-API-Key": key, "X-Tollgate-Cost": "1"})
                else:
                    line = open(signed_events(1, os.path.join(work, "one.txt"), start=10_000_000 + attempt)).readline().rstrip("\n")
                    header, body = line.split("\t", 1)
                    real = lambda url: get(url + "/", {"Stripe-Signature": header, "Content-Type": "application/json"}, body.encode())
                server = Server(system, function, cold_state)
                try:
                    starts.append(server.wait_healthy())
                    while real(server.url) != 200:
                        time.sleep(0.001)
                    firsts.append(time.perf_counter() - server.started)
                finally:
                    server.stop()
            if function == "auth-validator":
                key = seed_key(system, state)
            server = Server(system, function, state)
            try:
                server.wait_healthy()
                time.sleep(1)
                idle = tree_rss_kb(server.process.pid) / 1024
                idle_private = tree_rss_kb(server.process.pid, "RssAnon:") / 1024
                if function == "stripe-webhook":
                    events = signed_events(60_000, os.path.join(work, "events.txt"))
                    load = wrk(server.url, duration, connections, ["-s", os.path.join(ROOT, "benchmarks", "signed_events.lua")],
                               server.process.pid, ["--", events, "2"])
                else:
                    load = wrk(server.url + "/", duration, connections, ["-H", f"X-API-Key: {key}", "-H", "X-Tollgate-Cost: 1"],
                               server.process.pid)
            finally:
                server.stop()
            load.update({"cold_healthz_ms": statistics.median(starts) * 1000, "cold_first_request_ms": statistics.median(firsts) * 1000,
                         "idle_rss_mb": idle, "idle_private_mb": idle_private})
            results[label] = load
            print(f"run {run} {label}: {json.dumps(load)}", flush=True)
    return results


def export_figures(work, sizes):
    """Records/s and peak memory of `tollgate export run` over seeded ledgers."""
    figures = {}
    for size in sizes:
        state = os.path.join(work, f"export-{size}.db")
        env = dict(os.environ, TOLLGATE_STORE=f"sqlite://{state}")
        subprocess.run([TOLLGATE, "export", "run"], env=env, capture_output=True)
        subprocess.run(["python3", os.path.join(ROOT, "benchmarks", "seed_ledger.py"), state, str(size), "2026-01-01",
                        os.path.join(work, "plain.ndjson")], check=True, capture_output=True)
        started = time.perf_counter()
        timed = subprocess.run(["/usr/bin/time", "-f", "%M", TOLLGATE, "export", "run", "--date", "2026-01-01"],
                               env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        peak = int(timed.stderr.strip().splitlines()[-1]) / 1024
        figures[size] = {"records_per_s": size / elapsed, "peak_rss_mb": peak}
        print(f"export {size}: {figures[size]}", flush=True)
    return figures


def footprint():
    """The image layer each function adds to the distroless base (benchmarks/image-layer.sh,
    as the Dockerfile computes it), and the peer's packages for comparison."""
    layers = subprocess.run([os.path.join(ROOT, "benchmarks", "image-layer.sh")], capture_output=True, text=True,
                            check=True).stdout.strip()
    site = subprocess.run([os.path.join(PEER_VENV, "bin", "python"), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True).stdout.strip()
    peer = int(subprocess.run(["du", "-sb", site], capture_output=True, text=True).stdout.split()[0]) / 1e6
    return {"layers": layers, "peer_site_packages_mb": peer}


def spread(values):
    return min(values), statistics.median(values), max(values)


def report(runs, exports, sizes, args, plot_dir):
    lines = ["# Benchmarks", "",
             f"Measured {datetime.date.today().isoformat()} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, "
             f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, {platform.platform()}, "
             f"{subprocess.run(['swift', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}.",
             "", "Command: `benchmarks/compare.sh` (raw figures in `benchmarks/results.json`) "
             f"(RUNS={args.runs}, DURATION={args.duration}s, CONNECTIONS={args.connections}, wrk -t2 on loopback; "
             "release builds; both systems on one SQLite file in WAL mode; Tollgate logging at warning, as the peer logs no line per request).",
             "", "Tollgate is the release executable of each function, linked with the static Swift standard library as the Dockerfile links it. The peer is `benchmarks/peers/main.py`: the same two "
             "functions on Google's Python functions-framework 3.10 (Flask under gunicorn, its defaults), verifying with Stripe's "
             "own library and hashing keys with HMAC-SHA256 like Tollgate. Every webhook request is a new, correctly signed "
             "event (verify, apply, commit); every validation consumes one unit (hash, look up, check, commit).",
             "", "Ratios are Tollgate ÷ peer for throughput and peer ÷ Tollgate for times and memory (higher is better for "
             "Tollgate either way), as min / median / max over the runs; each run measures both systems back to back.", ""]
    metrics = [("requests/s", "rps", False), ("p50 latency (ms)", 50, True), ("p99 latency (ms)", 99, True),
               ("cold start to /healthz (ms)", "cold_healthz_ms", True), ("cold start to first request served (ms)", "cold_first_request_ms", True),
               ("idle memory, resident (MB)", "idle_rss_mb", True), ("idle memory, private (MB)", "idle_private_mb", True),
               ("memory under load, resident (MB)", "peak_rss_mb", True)]
    targets = {"stripe-webhook": "≥ 10× the peer's requests/s, p99 ≤ 5 ms", "auth-validator": "≥ 15× the peer's requests/s"}
    for function in ("stripe-webhook", "auth-validator"):
        lines += [f"## {function}", "", f"Target: {targets[function]}; cold start ≤ 10 ms median; idle memory ≤ 32 MB.", "",
                  "| metric | Tollgate (median) | peer (median) | ratio min / median / max |", "|---|---|---|---|"]
        for title, key, lower_is_better in metrics:
            def value(run, system):
                entry = run[f"{system}/{function}"]
                return entry["latency"].get(key) if isinstance(key, int) else entry[key]
            ours = [value(run, "tollgate") for run in runs]
            theirs = [value(run, "peer") for run in runs]
            ratios = [(t / o if lower_is_better else o / t) for o, t in zip(ours, theirs) if o and t]
            low, mid, high = spread(ratios) if ratios else (0, 0, 0)
            lines.append(f"| {title} | {statistics.median(ours):.2f} | {statistics.median(theirs):.2f} | "
                         f"{low:.1f}× / {mid:.1f}× / {high:.1f}× |")
        errors = [run[f"{s}/{function}"]["non2xx"] for run in runs for s in ("tollgate", "peer")]
        lines += ["", f"Non-2xx answers across all runs: {sum(errors)}.", ""]
    lines += ["## usage-export", "", "`tollgate export run` over a seeded ledger (release; SQLite store and blob fake).", "",
              "| records | records/s | peak memory (MB) |", "|---|---|---|"]
    for size, figure in exports.items():
        lines.append(f"| {size:,} | {figure['records_per_s']:,.0f} | {figure['peak_rss_mb']:.1f} |")
    lines += ["", "## Image size", "",
              "No Docker engine runs here, so `benchmarks/image-layer.sh` computes the layer `deploy/Dockerfile` adds to "
              "`gcr.io/distroless/base-debian12` (glibc, OpenSSL, CA certificates; not measured here) for each function: the "
              "static binary, stripped, and the shared libraries it links that the base lacks (libcurl and its dependencies, "
              "SQLite, zlib).", "", sizes["layers"], "",
              f"The peer's packages alone (functions-framework, Flask, gunicorn, stripe …, in site-packages) are "
              f"{sizes['peer_site_packages_mb']:.1f} MB, on top of a Python base image."]
    simulation = quota_simulation()
    if simulation:
        lines += ["", "## Quota at scale: the simulator", "",
                  "`benchmarks/quota-simulation.sh` runs `tollgate simulate quota` in full: each scenario for a minute at full "
                  "load (after a 10 s warm-up, left out of the write and latency figures; the burst scenario measures its cold "
                  "start), both paths side by side, in virtual time against the model of Firestore described in "
                  "[docs/quota-leases.md](docs/quota-leases.md). Deterministic by seed; these are seed 1. Latency is what the "
                  "quota decision adds to a request; writes are committed writes on the busiest account's window document.",
                  "", open(simulation).read().strip(), "", "![quota simulation](benchmarks/quota-simulation.png)"]
    analysis = os.path.join(ROOT, "benchmarks", "analysis.md")
    if os.path.exists(analysis):
        lines += ["", open(analysis).read().strip()]
    lines += ["", "## Plots", "", "![latency percentiles](benchmarks/latency.png)", "", "![export memory](benchmarks/export-memory.png)", ""]
    return "\n".join(lines)


def quota_simulation():
    """The simulator's table, when benchmarks/quota-simulation.sh has run."""
    table = os.path.join(ROOT, "benchmarks", "quota-simulation.md")
    return table if os.path.exists(table) else None


def quota_plot(plot_dir):
    """The hot-account scenario second by second: writes on its window and the p99 the quota adds."""
    source = os.path.join(ROOT, "benchmarks", "quota-simulation.json")
    if not os.path.exists(source):
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = json.load(open(source))
    hot = [r for r in reports if r["scenario"].startswith("one hot account")]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for report, style in zip(hot, ("s--", "o-")):
        seconds = range(len(report["hotWritesBySecond"]))
        axes[0].plot(seconds, report["hotWritesBySecond"], style, markersize=3, label=report["path"])
        axes[1].plot(seconds, [max(v, 0.01) for v in report["latencyP99BySecondMilliseconds"]], style, markersize=3,
                     label=report["path"])
    axes[0].axhline(1, color="grey", linewidth=0.8, linestyle=":", label="target: 1 write/s")
    axes[0].set_title("one hot account: committed writes on its window")
    axes[0].set_xlabel("second of the run (10 s warm-up first)")
    axes[0].set_ylabel("writes in that second")
    axes[1].set_yscale("log")
    axes[1].axhline(2, color="grey", linewidth=0.8, linestyle=":", label="target: p99 2 ms")
    axes[1].set_title("one hot account: p99 the quota adds")
    axes[1].set_xlabel("second of the run")
    axes[1].set_ylabel("ms (log; 0 drawn at 0.01)")
    for axis in axes:
        axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(plot_dir, "quota-simulation.png"), dpi=100)


def plots(runs, exports, plot_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, function in zip(axes, ("stripe-webhook", "auth-validator")):
        for system, style in (("tollgate", "o-"), ("peer", "s--")):
            percentiles = [50, 75, 90, 99]
            medians = [statistics.median(run[f"{system}/{function}"]["latency"][p] for run in runs) for p in percentiles]
            axis.plot(percentiles, medians, style, label=system)
        axis.set_yscale("log")
        axis.set_title(f"{function}: latency under load")
        axis.set_xlabel("percentile")
        axis.set_ylabel("ms (log)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(plot_dir, "latency.png"), dpi=100)

    figure, axis = plt.subplots(figsize=(6, 4))
    sizes = list(exports)
    axis.plot(sizes, [exports[s]["peak_rss_mb"] for s in sizes], "o-")
    axis.set_xscale("log")
    axis.set_xlabel("ledger records")
    axis.set_ylabel("peak resident memory (MB)")
    axis.set_title("usage-export: memory against record count")
    figure.tight_layout()
    figure.savefig(os.path.join(plot_dir, "export-memory.png"), dpi=100)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--export-sizes", default="100000,300000,1000000")
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--report-only", help="re-render BENCHMARKS.md from a raw results file of an earlier run")
    args = parser.parse_args()
    plot_dir = os.path.join(ROOT, "benchmarks")
    if args.report_only:
        raw = json.load(open(args.report_only))
        for run in raw["runs"]:
            for entry in run.values():
                entry["latency"] = {int(p): v for p, v in entry["latency"].items()}
        exports = {int(size): figure for size, figure in raw["exports"].items()}
        plots(raw["runs"], exports, plot_dir)
        quota_plot(plot_dir)
        with open(args.out, "w") as out:
            out.write(report(raw["runs"], exports, raw["sizes"], args, plot_dir))
        return
    work = tempfile.mkdtemp(prefix="tollgate-bench-")
    try:
        runs = [measure_run(run, work, args.duration, args.connections) for run in range(1, args.runs + 1)]
        exports = export_figures(work, [int(s) for s in args.export_sizes.split(",")])
        sizes = footprint()
        plots(runs, exports, plot_dir)
        quota_plot(plot_dir)
        with open(args.out, "w") as out:
            out.write(report(runs, exports, sizes, args, plot_dir))
        with open(os.path.join(plot_dir, "results.json"), "w") as raw:
            json.dump({"date": datetime.date.today().isoformat(), "runs": runs, "exports": exports, "sizes": sizes}, raw, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
