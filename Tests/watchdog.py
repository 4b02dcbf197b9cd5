#!/usr/bin/env python3
"""Runs the test command with a time limit; on a hang, says which tests hang.

    Tests/watchdog.py SECONDS EVENTS -- swift test ... --experimental-event-stream-output EVENTS

A whole run takes a few minutes. Past SECONDS the run is stopped (SIGKILL to it and every
process below it: Python peers ignore SIGTERM) after printing the tests that started and never
ended, read from Swift Testing's event stream, and the processes still running under it.
Without this a hang is silent until CI's own limit, and the last lines of output, still
in a pipe's buffer, are lost with it.
"""

import json
import os
import signal
import subprocess
import sys
import time


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
    try:
        child.wait(timeout=float(limit))
        return child.returncode
    except subprocess.TimeoutExpired:
        pass
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
