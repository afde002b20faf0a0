#!/usr/bin/env python3
"""Hollow edge nodes for ops/bench/fleet.py, several in one process, as kubemark runs hollow kubelets.

Each hollow node is the real edge but Docker: ``edgeworkers.wiring`` builds its services (settings, one Redis client on
a database of its own, MetaManager, outbox, status manager, broker) with a ``FakeRuntime`` in place of the Docker
runtime, and runs the real pod worker (``wiring.start_worker``: Dramatiq on the node's database, the pod sync) and the
real bridge's loops (``wiring.bridge_loops``: registration and node status and lease heartbeats, the pod watch, the
uplink of the outbox, mirror pods, config refresher, status resync), each supervised as ``bridge.run`` does. Not run:
the node's HTTPS endpoint (logs, exec), its credentials' renewal, and the periodic jobs (PLEG relist, probes, GC, usage
reports), which act on the runtime, not on the cloud.

The node's identity is its own: ``edgeworkers cloud issue-node-credentials`` (its function) wrote its kubeconfig under
the cloud's data dir before, and the bridge finds it there as on a machine beside the cloud. Every API call but watches
is timed on the node's client (``TimedApiClient``); at SIGTERM the process stops its nodes and writes the samples as
JSON lines to ``--samples``.

    python ops/bench/hollow.py --redis-url redis://127.0.0.1:PORT --password-file F --cloud-data-dir D \\
        --cloud-port P --data-root R --samples OUT node-0:1 node-1:2 ...
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import structlog

from edgeworkers import wiring
from edgeworkers.bridge.run import supervise
from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiClient, access_from_settings
from edgeworkers.runtime.fake import FakeRuntime

# One sample per API call: (verb, resource, wall-clock start, seconds, HTTP outcome).
Sample = tuple[str, str, float, float, str]


def classify(method: str, path: str) -> tuple[str, str]:
    """kube-apiserver's verb and resource of a request: a GET of a collection is a ``list``, of one object a ``get``;
    a subresource is named ``resource/sub`` (``pods/status``)."""
    path = path.split("?", 1)[0].strip("/")
    parts = path.split("/")
    if parts[0] == "api" and len(parts) > 2:  # api/v1/...
        parts = parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:  # apis/<group>/<version>/...
        parts = parts[3:]
    else:  # a discovery document, /version, /healthz
        return method.lower(), f"/{path}"
    if len(parts) >= 3 and parts[0] == "namespaces":
        parts = parts[2:]
    resource = "/".join(parts[:1] + parts[2:3])
    verb = method.lower()
    if verb == "get" and len(parts) == 1:
        verb = "list"
    return {"post": "create", "put": "update"}.get(verb, verb), resource


class TimedApiClient(ApiClient):
    """The node's API client, recording each call's latency (sent to the answer read) in ``samples``."""

    def __init__(self, *args: Any, samples: list[Sample], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = samples

    def _timed(self, method: str, path: str, call: Any, *args: Any) -> Any:
        started, clock = time.time(), time.perf_counter()
        outcome = "ok"
        try:
            return call(path, *args)
        except Exception as exc:
            outcome = str(getattr(exc, "code", type(exc).__name__))
            raise
        finally:
            self.samples.append((*classify(method, path), started, time.perf_counter() - clock, outcome))

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._timed("GET", path, super().get, params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._timed("POST", path, super().post, body)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._timed("PUT", path, super().put, body)

    def patch(self, path: str, body: dict[str, Any], *args: Any) -> dict[str, Any]:
        return self._timed("PATCH", path, super().patch, body, *args)

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._timed("DELETE", path, super().delete, body)


class HollowNode:
    """One node: the real worker and bridge loops on a FakeRuntime (see the module's docstring)."""

    def __init__(self, settings: Settings, threads: int, samples: list[Sample]) -> None:
        runtime = FakeRuntime(settings.node_name, sandbox_image=settings.sandbox_image, data_root=str(settings.data_dir))
        self.services = replace(wiring.build(settings), runtime=runtime)
        self.threads, self.samples = threads, samples
        self.stop_event = threading.Event()
        self.worker: Any = None
        self.api: ApiClient | None = None

    def start(self) -> None:
        settings = self.services.settings
        access = access_from_settings(settings)
        if access is None:
            raise SystemExit(f"node {settings.node_name} has no credentials under {settings.cloud_data_dir}")
        self.worker = wiring.start_worker(self.services, self.threads)
        self.api = TimedApiClient(access, samples=self.samples)
        for name, loop in wiring.bridge_loops(self.services)(self.api).items():
            supervise(f"{settings.node_name}/{name}", loop, self.stop_event)

    def stop(self) -> None:
        self.stop_event.set()
        if self.api is not None:
            self.api.close()
        if self.worker is not None:
            wiring.stop_worker(self.worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True, help="redis://host:port (each node's database is appended)")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--cloud-data-dir", type=Path, required=True)
    parser.add_argument("--cloud-port", type=int, required=True)
    parser.add_argument("--data-root", type=Path, required=True, help="each node's data dir is made under it")
    parser.add_argument("--threads", type=int, default=2, help="pod worker threads per node")
    parser.add_argument("--samples", type=Path, required=True, help="where the API call samples go at the end")
    parser.add_argument("--stagger-s", type=float, default=0.0,
                        help="start the nodes evenly over this long, as a fleet's nodes are not started at once")
    parser.add_argument("nodes", nargs="+", help="NAME:DATABASE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    samples: list[Sample] = []
    nodes = []
    for spec in args.nodes:
        name, database = spec.rsplit(":", 1)
        settings = Settings(
            node_name=name, data_dir=args.data_root / name, redis_url=f"{args.redis_url}/{database}",
            redis_password_file=args.password_file, cloud_data_dir=args.cloud_data_dir, cloud_port=args.cloud_port,
            worker_threads=args.threads, metrics_port=0,
        )
        nodes.append(HollowNode(settings, args.threads, samples))
    for index, node in enumerate(nodes):
        if stop.wait(args.stagger_s / len(nodes) if index else 0):
            break
        node.start()
    stop.wait()
    for node in nodes:
        node.stop_event.set()
    for node in nodes:
        node.stop()
    args.samples.write_bytes(b"".join(orjson.dumps(sample) + b"\n" for sample in list(samples)))


if __name__ == "__main__":
    main()
