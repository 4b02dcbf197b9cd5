"""Cold start to /healthz and idle memory: one function's binary against the one binary
that serves whichever function K_SERVICE names, started alternately (ratios in one run).
Usage: one_binary_start.py ALONE COMBINED [ROUNDS]; run by benchmarks/one-binary.sh."""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary, state_dir):
    """Starts auth-validator from `binary`; answers the process, the port and when it started."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "K_SERVICE": "auth-validator",
           "TOLLGATE_STORE": f"sqlite://{tempfile.mktemp(suffix='.db', dir=state_dir)}",
           "TOLLGATE_KEY_PEPPER": "pepper-for-the-one-binary-benchmark-0123456789"}
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status == 200:
                return process, (time.perf_counter() - started) * 1000
        except OSError:
            time.sleep(0.0005)
        if time.perf_counter() - started > 20:
            process.kill()
            raise SystemExit(f"{binary} did not start")


def resident(process):
    fields = dict(line.split(":", 1) for line in open(f"/proc/{process.pid}/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["RssAnon"].split()[0]) / 1024


def main():
    alone, combined = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    starts = {alone: [], combined: []}
    memory = {alone: [], combined: []}
    with tempfile.TemporaryDirectory() as state_dir:
        for _ in range(rounds):
            for binary in (alone, combined):
                process, milliseconds = start(binary, state_dir)
                starts[binary].append(milliseconds)
                time.sleep(0.2)
                memory[binary].append(resident(process))
                process.kill()
                process.wait()
    print("| binary | cold start to /healthz, median (ms) | resident idle (MB) | anonymous idle (MB) |")
    print("|---|---|---|---|")
    for name, binary in (("auth-validator alone", alone), ("one binary, K_SERVICE=auth-validator", combined)):
        print(f"| {name} | {statistics.median(starts[binary]):.1f} | {statistics.median(m[0] for m in memory[binary]):.1f} | "
              f"{statistics.median(m[1] for m in memory[binary]):.1f} |")
    print(f"\nratio of median cold starts (one binary / alone): {statistics.median(starts[combined]) / statistics.median(starts[alone]):.2f}")


if __name__ == "__main__":
    main()
