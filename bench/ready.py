#!/usr/bin/env python3
"""Time-to-ready and idle RSS of the gateway, measured from outside.

Each run: the clock starts just before the gateway is spawned (fork + exec
included) and stops when the admin `/readyz` first answers 200, polled every
100 µs from another CPU. Then the gateway sits idle for `--idle` seconds and
VmRSS, its anonymous and file-backed parts (RssAnon, RssFile) and VmHWM are
read from /proc/<pid>/status. Prints one JSON object with the
median, min and max of each. Every wait is bounded; the gateway is stopped with
SIGTERM (SIGKILL after 5 s) at the end of each run.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

REQUEST = b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def parse_cpus(spec):
    cpus = set()
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.update(range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def ready_status(host, port):
    """200 when /readyz says ready, None while the port refuses or answers otherwise."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(REQUEST)
            head = s.recv(64)
    except OSError:
        return None
    return 200 if head.startswith(b"HTTP/1.1 200") else None


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def one_run(a, host, port, env):
    gw_cpus, poll_cpus = parse_cpus(a.gateway_cpus), parse_cpus(a.poll_cpus)
    if gw_cpus:
        os.sched_setaffinity(0, gw_cpus)  # inherited by the child
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [a.gateway, "--bundle", a.bundle] + (["--workers", str(a.workers)] if a.workers else []),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    if poll_cpus:
        os.sched_setaffinity(0, poll_cpus)
    try:
        deadline = t0 + a.timeout
        ready = None
        while time.perf_counter() < deadline:
            if ready_status(host, port) == 200:
                ready = time.perf_counter() - t0
                break
            if proc.poll() is not None:
                sys.exit(f"ready.py: gateway exited with {proc.returncode}: "
                         f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.0001)
        if ready is None:
            sys.exit(f"ready.py: gateway not ready after {a.timeout} s")
        time.sleep(a.idle)
        mem = rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return ready, mem


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gateway", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--admin", required=True, help="host:port of the admin listener")
    p.add_argument("--workers", type=int)
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--idle", type=float, default=0.5, help="seconds idle before reading RSS")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--gateway-cpus", default="", help="CPU list for the gateway, e.g. 0")
    p.add_argument("--poll-cpus", default="", help="CPU list for the poller, e.g. 1")
    a = p.parse_args()
    host, port = a.admin.rsplit(":", 1)
    env = dict(os.environ, MGW_LOG="warn")
    ready, rss, hwm, anon, file = [], [], [], [], []
    for _ in range(a.runs):
        r, mem = one_run(a, host, int(port), env)
        ready.append(r * 1e3)
        rss.append(mem["VmRSS"] / 1024)
        hwm.append(mem["VmHWM"] / 1024)
        anon.append(mem["RssAnon"] / 1024)
        file.append(mem["RssFile"] / 1024)
    print(json.dumps({
        "runs": a.runs,
        "ready_ms": summary(ready),
        "rss_mib": summary(rss),
        "hwm_mib": summary(hwm),
        "rss_anon_mib": summary(anon),
        "rss_file_mib": summary(file),
    }))


if __name__ == "__main__":
    main()
