"""The usage job: CPU rates from two samples, memory working sets, at most one report per interval, through the outbox
to the uplink's PUT."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis

from edgeworkers.bridge.uplink import Uplink
from edgeworkers.kubeclient import ApiError
from edgeworkers.metamanager.outbox import NODE_METRICS, Outbox
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, ContainerID, ContainerUsage, PodRef, SandboxConfig
from scheduler.usage import NodeSample, UsageReporter, rate
from tests.unit.clock import Clock

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def running_pod(runtime: FakeRuntime, name: str) -> ContainerID:
    pod = PodRef(f"uid-{name}", "default", name)
    sandbox = runtime.create_sandbox(SandboxConfig(pod=pod))
    app = runtime.create_container(sandbox, pod, ContainerConfig(name="app", image="busybox"))
    runtime.start_container(app)
    return app


class Node:
    def __init__(self) -> None:
        self.sample = NodeSample(cpu_busy_s=1000.0, memory_working_set_bytes=2 << 30)

    def __call__(self) -> NodeSample:
        return self.sample


def setup() -> tuple[FakeRuntime, Outbox, Clock, Node, UsageReporter]:
    """One clock for the runtime's start times, the reporter's monotonic time and its wall time."""
    clock, node = Clock(START), Node()
    runtime, outbox = FakeRuntime(clock=clock), Outbox(fakeredis.FakeRedis())
    usage = UsageReporter(runtime, outbox, "edge-1", min_interval_s=15, monotonic=clock,
                          now=lambda: datetime.fromtimestamp(clock.now, UTC), sample_node=node)
    return runtime, outbox, clock, node, usage


def report(outbox: Outbox) -> dict[str, Any]:
    return outbox.peek()[0].payload["report"]


def test_rates_need_two_samples_and_reports_come_every_interval() -> None:
    runtime, outbox, clock, node, usage = setup()
    app = running_pod(runtime, "web")
    runtime.usages[app] = ContainerUsage(cpu_usage_ns=5_000_000_000, memory_working_set_bytes=3456 * 1024)
    clock.advance(50)

    assert usage.report() is False  # the first sample: no rate for the node yet
    assert len(outbox) == 0
    clock.advance(15)
    runtime.usages[app] = ContainerUsage(cpu_usage_ns=5_300_000_000, memory_working_set_bytes=4096 * 1024)
    node.sample = NodeSample(cpu_busy_s=1003.0, memory_working_set_bytes=3 << 30)
    assert usage.report() is True
    (item,) = outbox.peek()
    assert item.key == "metrics:edge-1"
    assert item.payload == {"op": NODE_METRICS, "node": "edge-1", "report": {
        "timestamp": "2026-01-01T00:01:05Z", "windowSeconds": 15.0,
        "node": {"cpu": 200_000_000, "memory": 3 << 30},  # 3 CPU-seconds in 15 s: 200m
        "pods": [{"namespace": "default", "name": "web", "windowSeconds": 15.0,
                  "containers": [{"name": "app", "cpu": 20_000_000, "memory": 4096 * 1024}]}],  # 0.3 s / 15 s: 20m
    }}

    clock.advance(14.9)  # too soon, and no container is new: listed, not sampled, nothing queued
    assert usage.report() is False
    assert len(runtime.calls_named("usage")) == 2
    clock.advance(0.1)
    assert usage.report() is True
    assert len(outbox) == 1  # the newer report replaced the pending one
    assert report(outbox)["windowSeconds"] == 15.0


def test_a_container_started_since_the_last_report_is_reported_at_once_over_its_life() -> None:
    runtime, outbox, clock, _node, usage = setup()
    usage.report()
    clock.advance(15)
    assert usage.report() is True and report(outbox)["pods"] == []
    clock.advance(1)
    app = running_pod(runtime, "late")
    runtime.usages[app] = ContainerUsage(100_000_000, 1024)
    clock.advance(0.5)
    assert usage.report() is False  # half a second of life is too short for a rate
    clock.advance(1.5)
    runtime.usages[app] = ContainerUsage(100_000_000, 2048)
    assert usage.report() is True  # 3 s after the last report, not 15
    (pod,) = report(outbox)["pods"]
    assert pod["windowSeconds"] == 2.0 and report(outbox)["windowSeconds"] == 3.0
    assert pod["containers"] == [{"name": "app", "cpu": 50_000_000, "memory": 2048}]  # 0.1 s over its 2 s: 50m
    clock.advance(2)
    assert usage.report() is False  # known now: the next report comes with the interval
    clock.advance(13)
    runtime.usages[app] = ContainerUsage(100_000_000 + 1_500_000_000, 2048)
    assert usage.report() is True
    assert report(outbox)["pods"][0]["containers"][0]["cpu"] == 100_000_000  # 1.5 s over 15 s


def test_a_counter_going_back_is_a_restart_not_a_negative_rate() -> None:
    assert rate(1.0, 5.0, 15) == 0
    assert rate(5.0, 1.0, 0) == 0
    assert rate(2.5, 1.0, 1.5) == 1_000_000_000


class Cloud:
    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.puts: list[tuple[str, dict[str, Any]]] = []

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.refuse:
            raise ApiError(self.refuse, "NotFound", "the server could not find the requested resource")
        self.puts.append((path, body))
        return {}


def test_the_uplink_puts_the_report_and_drops_one_a_server_without_the_path_refuses() -> None:
    outbox = Outbox(fakeredis.FakeRedis())
    outbox.node_metrics("edge-1", {"node": {"cpu": 1, "memory": 1}})
    cloud = Cloud()
    Uplink(cloud, outbox, mirrors=None).drain()  # type: ignore[arg-type]
    assert cloud.puts == [("/apis/metrics.k8s.io/v1beta1/nodes/edge-1", {"node": {"cpu": 1, "memory": 1}})]
    assert len(outbox) == 0

    outbox.node_metrics("edge-1", {"node": {"cpu": 2, "memory": 2}})
    Uplink(Cloud(refuse=404), outbox, mirrors=None).drain()  # type: ignore[arg-type]
    assert len(outbox) == 0
