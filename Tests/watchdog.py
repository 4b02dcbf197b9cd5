#!/usr/bin/env python3
"""Runs the test command with a time limit; on a hang, says which tests hang.

    Tests/watchdog.py SECONDS EVENTS -- swift test ... --experimental-event-stream-output EVENTS

A whole run takes a few minutes. Past SECONDS the run is stopped (SIGKILL to it and every
process below it: Python peers ignore SIGTERM) after printing the tests that started and never
ended, read from Swift Testing's event stream, and the processes still running under it.
Without this a hang is silent until CI's own limit, and the last lines of output, still
in a pipe's buffer, are lost with it.

It also samples how many descriptors the test process holds, every second, and fails a
run whose peak reaches DESCRIPTOR_LIMIT: past about 1,365 open descriptors Foundation's
Process.run() can crash the whole test process (it reads past a full /proc/self/fd
buffer, swift-corelibs-foundation#5472), and a crashed run hangs in its backtracer.
"""

import json
import os
import signal
import subprocess
import sys
import time

DESCRIPTOR_LIMIT = 1200


def unfinished(events_path):
    """Tests and test cases started and not ended, with when each started."""
    running = {}
    try:
        with open(events_path, encoding="utf-8") as events:
            for line in events:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if event.get("kind") != "event":
                    continue
                payload = event["payload"]
                key = (payload.get("testID"), json.dumps(payload.get("testCase"), sort_keys=True))
                if payload["kind"] in ("testStarted", "testCaseStarted"):
                    running[key] = (payload["instant"]["since1970"], payload["messages"][0]["text"])
                elif payload["kind"] in ("testEnded", "testCaseEnded"):
                    running.pop(key, None)
    except FileNotFoundError:
        pass
    return sorted(running.values())


def main():
    limit, events_path, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        sys.exit(__doc__)
    child = subprocess.Popen(command)
    deadline = time.time() + float(limit)
    peak = 0
    while time.time() < deadline:
        try:
            child.wait(timeout=1)
        except subprocess.TimeoutExpired:
            peak = max([peak] + [descriptors(pid) for pid in descendants(child.pid) if is_test_process(pid)])
            continue
        print(f"watchdog: the test process held at most {peak} descriptors (limit {DESCRIPTOR_LIMIT})", file=sys.stderr)
        if peak >= DESCRIPTOR_LIMIT and child.returncode == 0:
            print("watchdog: too many descriptors at once: Foundation's Process.run() may crash the run", file=sys.stderr)
            return 1
        return child.returncode
    now = time.time()
    print(f"\nwatchdog: the test run passed {limit} s; still running:", file=sys.stderr)
    for started, text in unfinished(events_path):
        print(f"  {now - started:7.0f} s  {text}", file=sys.stderr)
    family = descendants(child.pid)
    listing = subprocess.run(["ps", "-o", "pid,ppid,etime,args", "-p", ",".join(map(str, family))], capture_output=True, text=True)
    print("watchdog: processes under the run:\n" + listing.stdout, file=sys.stderr)
    # Every descendant, wherever it moved its session or group (peers that start their own).
    for pid in reversed(family):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.wait()
    return 124


def is_test_process(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b".xctest" in cmdline.read().split(b"\0")[0]
    except OSError:
        return False


def descriptors(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def descendants(root):
    """`root` and every process below it, parents first."""
    children = {}
    for line in subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    family, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        family.append(pid)
        queue.extend(children.get(pid, []))
    return family


if __name__ == "__main__":
    sys.exit(main())
