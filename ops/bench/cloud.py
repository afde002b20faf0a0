#!/usr/bin/env python3
"""Benchmark of the cloud API with many pods stored, in one run against its own `edgeworkers cloud serve`.

Measures, on a fresh server (temp data dir, free port on 127.0.0.1):
  * `kubectl get pods` over all stored pods: the whole command's wall time (discovery cache warm);
  * a raw list round trip, plain JSON and the Table form kubectl asks for, next to `GET /version` on the
    same server and connection as the baseline (the ratio shows what listing itself costs);
  * the delay from a write (a PATCH of one pod, timed from just before the request) to its watch event
    on each of W concurrent watchers. Writes go one at a time: the next starts once every watcher saw
    the last, so each delay is a latency, not a queue.
Targets (issue #3): list of 1000 under 100 ms server-side; watch delay p99 under 50 ms.

    .venv/bin/python ops/bench/cloud.py --pods 1000 --runs 10 --writes 200 --watchers 10
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from benchkit import free_port

EDGEWORKERS = str(Path(sys.executable).with_name("edgeworkers"))
NAMESPACE = "default"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io," \
        "application/json"
SEQ = re.compile(rb'"bench/seq":"(\d+)"')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


class Server:
    """`edgeworkers cloud serve` (or ``command``, with ``extra_env``) in a temp dir; a keep-alive session with its CA
    and token."""

    def __init__(self, root: Path, command: list[str] | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.env = {**os.environ, "EDGEWORKERS_CLOUD_HOST": "127.0.0.1", "EDGEWORKERS_CLOUD_PORT": str(self.port),
                    "EDGEWORKERS_CLOUD_DATA_DIR": str(root / "data"), "HOME": str(root), **(extra_env or {})}
        self.env.pop("KUBECONFIG", None)
        self.root = root
        self.log = (root / "cloud.log").open("wb")
        self.process = subprocess.Popen(command or [EDGEWORKERS, "cloud", "serve"], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (root / "data" / "token").exists():
            self._check(deadline)
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text(subprocess.run([EDGEWORKERS, "kubeconfig"], env=self.env, capture_output=True,
                                                  text=True, check=True).stdout)
        self.base = f"https://127.0.0.1:{self.port}"
        self.ca = str(root / "data" / "ca.crt")
        self.headers = {"Authorization": f"Bearer {(root / 'data' / 'token').read_text().strip()}"}
        self.session = self.new_session()
        while True:
            try:
                self.session.get(f"{self.base}/version", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                self._check(deadline)

    def _check(self, deadline: float) -> None:
        if self.process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"cloud did not start; see {self.root / 'cloud.log'}")
        time.sleep(0.05)

    def new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides `verify`; loopback needs no proxy
        session.verify = self.ca
        session.headers.update(self.headers)
        return session

    def stop(self) -> None:
        self.session.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def pod(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        # No node matches: pods stay unbound, as the scheduler leaves them.
        "spec": {"nodeSelector": {"bench/nowhere": "true"},
                 "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]},
    }


def store_pods(server: Server, count: int) -> float:
    url = f"{server.base}/api/v1/namespaces/{NAMESPACE}/pods"
    local = threading.local()

    def create(i: int) -> None:
        if not hasattr(local, "session"):
            local.session = server.new_session()
        local.session.post(url, json=pod(f"bench-{i:05d}"), timeout=30).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(count)))
    return time.perf_counter() - started


def timed(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm-up: connection, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def kubectl(server: Server, *command: str, expected_lines: int | None = None) -> Callable[[], None]:
    args = ["kubectl", f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.root / 'kube-cache'}", *command]

    def run() -> None:
        out = subprocess.run(args, capture_output=True, text=True, check=True, env=server.env).stdout
        if expected_lines is not None and out.count("\n") != expected_lines:
            raise SystemExit(f"kubectl {' '.join(command)} printed {out.count(chr(10))} lines, not {expected_lines}")

    return run


def raw_get(server: Server, path: str, accept: str, expected_kind: str | None) -> Callable[[], None]:
    url = server.base + path

    def run() -> None:
        response = server.session.get(url, headers={"Accept": accept}, timeout=30)
        response.raise_for_status()
        body = response.content
        if expected_kind and f'"kind":"{expected_kind}"'.encode() not in body.replace(b" ", b""):
            raise SystemExit(f"GET {path} did not answer a {expected_kind}")

    return run


def watch_delays(server: Server, watchers: int, writes: int) -> list[float]:
    """Per (write, watcher): seconds from the start of the write to the watcher reading its event."""
    target = "bench-00000"
    rv = server.session.get(f"{server.base}/api/v1/namespaces/{NAMESPACE}/pods/{target}").json()
    rv = rv["metadata"]["resourceVersion"]
    url = (f"{server.base}/api/v1/namespaces/{NAMESPACE}/pods?watch=true&resourceVersion={rv}"
           f"&fieldSelector=metadata.name%3D{target}")
    seen: list[dict[int, float]] = [{} for _ in range(watchers)]
    progress = threading.Condition()
    ready = threading.Barrier(watchers + 1)

    def watch(index: int) -> None:
        session = server.new_session()
        response = session.get(url, stream=True, timeout=(5, 120))
        response.raise_for_status()
        ready.wait()
        pending = b""
        try:
            for chunk in response.iter_content(chunk_size=None):  # each chunk as it arrives
                arrived = time.perf_counter()
                complete, _, pending = (pending + chunk).rpartition(b"\n")
                numbers = [int(n) for n in SEQ.findall(complete)]
                if numbers:
                    with progress:
                        seen[index].update(dict.fromkeys(numbers, arrived))
                        progress.notify_all()
        except requests.RequestException:
            return  # the server stopped at the end of the run

    threads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(watchers)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=30)
    sent: dict[int, float] = {}
    path = f"{server.base}/api/v1/namespaces/{NAMESPACE}/pods/{target}"
    headers = {"Content-Type": "application/merge-patch+json"}
    for seq in range(writes):
        body = json.dumps({"metadata": {"annotations": {"bench/seq": str(seq)}}})
        sent[seq] = time.perf_counter()
        server.session.patch(path, data=body, headers=headers, timeout=30).raise_for_status()
        with progress:
            if not progress.wait_for(lambda seq=seq: all(seq in s for s in seen), timeout=10):
                raise SystemExit(f"write {seq} did not reach every watcher within 10 s")
    # The streams end when the server stops (closing a response another thread is reading would block).
    return [s[seq] - sent[seq] for s in seen for seq in range(writes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10, help="samples of each latency")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--watchers", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("kubectl"):
        raise SystemExit("kubectl is not on PATH")

    root = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-cloud-"))
    server = Server(root)
    try:
        store_s = store_pods(server, args.pods)
        pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        kubectl_get = timed(kubectl(server, "get", "pods", "-n", NAMESPACE, expected_lines=args.pods + 1), args.runs)
        kubectl_version = timed(kubectl(server, "get", "--raw", "/version"), args.runs)
        version = timed(raw_get(server, "/version", "application/json", None), args.runs * 3)
        plain = timed(raw_get(server, pods_path, "application/json", "PodList"), args.runs * 3)
        table = timed(raw_get(server, pods_path, TABLE, "Table"), args.runs * 3)
        delays = watch_delays(server, args.watchers, args.writes)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    base = statistics.median(version)
    kubectl_base = statistics.median(kubectl_version)
    rows = [
        ("kubectl get pods (whole command)", kubectl_get, f"{statistics.median(kubectl_get) / kubectl_base:.1f}x"),
        ("kubectl get --raw /version (baseline)", kubectl_version, "1x"),
        (f"GET pods, JSON PodList of {args.pods}", plain, f"{statistics.median(plain) / base:.0f}x"),
        (f"GET pods, Table of {args.pods}", table, f"{statistics.median(table) / base:.0f}x"),
        ("GET /version (baseline)", version, "1x"),
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"cloud API, {args.pods} pods stored ({args.pods / store_s:.0f} creates/s over 4 connections); "
          f"{os.cpu_count()} CPUs, load average {load}")
    print(f"{'measure':<40} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} {'vs baseline':>12}")
    for name, samples, ratio in rows:
        print(f"{name:<40} {ms(statistics.median(samples)):>8} {ms(percentile(samples, 90)):>8} "
              f"{ms(max(samples)):>8} {ratio:>12}")
    print(f"\nwrite -> watch event, {args.watchers} watchers x {args.writes} writes ({len(delays)} events)")
    print(f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{ms(percentile(delays, 50)):>8} {ms(percentile(delays, 90)):>8} {ms(percentile(delays, 99)):>8} "
          f"{ms(max(delays)):>8}")
    list_ok = statistics.median(plain) < 0.100 and statistics.median(table) < 0.100
    watch_ok = percentile(delays, 99) < 0.050
    print(f"\ntargets: list of {args.pods} under 100 ms: {'met' if list_ok else 'MISSED'}; "
          f"watch delay p99 under 50 ms: {'met' if watch_ok else 'MISSED'}")


if __name__ == "__main__":
    main()
