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

NOW = datetime(2026, 1, 1, tzinfo=UTC)


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


def reporter(runtime: FakeRuntime, outbox: Outbox, clock: Clock, node: Node) -> UsageReporter:
    return UsageReporter(runtime, outbox, "edge-1", min_interval_s=15, monotonic=clock, now=lambda: NOW,
                         sample_node=node)


def test_rates_need_two_samples_and_reports_come_at_most_every_interval() -> None:
    runtime, outbox, clock, node = FakeRuntime(), Outbox(fakeredis.FakeRedis()), Clock(100.0), Node()
    app = running_pod(runtime, "web")
    runtime.usages[app] = ContainerUsage(cpu_usage_ns=5_000_000_000, memory_working_set_bytes=3456 * 1024)
    usage = reporter(runtime, outbox, clock, node)

    assert usage.report() is False  # the first sample: no rate yet
    assert len(outbox) == 0
    clock.now += 15
    runtime.usages[app] = ContainerUsage(cpu_usage_ns=5_300_000_000, memory_working_set_bytes=4096 * 1024)
    node.sample = NodeSample(cpu_busy_s=1003.0, memory_working_set_bytes=3 << 30)
    assert usage.report() is True
    (item,) = outbox.peek()
    assert item.key == "metrics:edge-1"
    assert item.payload == {"op": NODE_METRICS, "node": "edge-1", "report": {
        "timestamp": "2026-01-01T00:00:00Z", "windowSeconds": 15.0,
        "node": {"cpu": 200_000_000, "memory": 3 << 30},  # 3 CPU-seconds in 15 s: 200m
        "pods": [{"namespace": "default", "name": "web",
                  "containers": [{"name": "app", "cpu": 20_000_000, "memory": 4096 * 1024}]}],  # 0.3 s / 15 s: 20m
    }}

    clock.now += 14.9  # too soon: nothing sampled, nothing queued
    calls = len(runtime.calls)
    assert usage.report() is False
    assert len(runtime.calls) == calls
    clock.now += 0.1
    assert usage.report() is True
    assert len(outbox) == 1  # the newer report replaced the pending one
    assert outbox.peek()[0].payload["report"]["windowSeconds"] == 15.0


def test_a_container_new_since_the_last_sample_waits_for_the_next_report() -> None:
    runtime, outbox, clock, node = FakeRuntime(), Outbox(fakeredis.FakeRedis()), Clock(100.0), Node()
    usage = reporter(runtime, outbox, clock, node)
    usage.report()
    clock.now += 15
    app = running_pod(runtime, "late")
    runtime.usages[app] = ContainerUsage(1_000, 1024)
    usage.report()
    assert outbox.peek()[0].payload["report"]["pods"] == []
    clock.now += 15
    runtime.usages[app] = ContainerUsage(1_000 + 15_000, 2048)
    usage.report()
    (pod,) = outbox.peek()[0].payload["report"]["pods"]
    assert pod["containers"] == [{"name": "app", "cpu": 1000, "memory": 2048}]


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
