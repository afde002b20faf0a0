"""The Prometheus endpoint: loopback only, prometheus-client's format, gauges read at scrape time."""
from __future__ import annotations

import socket

import fakeredis
import pytest
import requests
from prometheus_client import CollectorRegistry

from edgeworkers import metrics
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.status.manager import StatusManager
from scheduler.nodejobs import node_gauges


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def other_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_endpoint_answers_on_loopback_only() -> None:
    registry = CollectorRegistry()
    registry.register(metrics.CallbackCollector(lambda: {"edgeworkers_outbox_length": ("help", {(): 3.0}, [])}))
    port = free_port()
    server = metrics.serve(port, registry)
    try:
        assert server.server_address[0] == "127.0.0.1"
        body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "edgeworkers_outbox_length 3.0" in body
        address = other_address()
        if address is not None:
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://{address}:{port}/metrics", timeout=2)
    finally:
        server.shutdown()


def test_a_failing_reader_exports_nothing_rather_than_failing_the_scrape() -> None:
    def broken():
        raise ConnectionError("redis away")

    assert list(metrics.CallbackCollector(broken).collect()) == []


def test_node_gauges_count_pods_by_phase_and_restarts() -> None:
    store = MetaStore(fakeredis.FakeRedis())
    status = StatusManager(store, Outbox(store.redis))
    for name, phase, restarts in (("a", "Running", 2), ("b", "Running", 0), ("c", "Failed", 0)):
        store.put(POD, {"metadata": {"name": name, "namespace": "default", "uid": name, "resourceVersion": "1"}})
        status.set(f"default/{name}", None, {"phase": phase, "containerStatuses": [
            {"name": "app", "restartCount": restarts}]})  # fmt: skip
    store.put(POD, {"metadata": {"name": "d", "namespace": "default", "uid": "d", "resourceVersion": "1"}})
    gauges = node_gauges(store, status, lambda: 7)
    assert gauges["edgeworkers_pods"][1] == {("Running",): 2, ("Failed",): 1, ("Pending",): 1}
    assert gauges["edgeworkers_container_restarts"][1][("default", "a", "app")] == 2.0
    assert gauges["edgeworkers_outbox_length"][1] == {(): 7.0}


def test_the_pleg_and_job_metrics_are_in_the_registry() -> None:
    names = {metric.name for metric in metrics.REGISTRY.collect()}
    assert {"edgeworkers_pleg_relist_duration_seconds", "edgeworkers_pleg_healthy", "edgeworkers_prober_probe",
            "edgeworkers_gc_runs", "edgeworkers_gc_freed_bytes", "edgeworkers_job_last_success_timestamp_seconds"
            } <= names  # fmt: skip

