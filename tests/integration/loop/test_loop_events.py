"""Events under a long fault, through the real cloud: a probe failing every second makes one event whose count grows
(client-go's correlation), not one event per failure; and after an outage that queued many events, a pod's status
reaches the cloud ahead of them, the events past the outbox's cap dropped and counted."""
from __future__ import annotations

import time
from typing import Any

import pytest

from edgeworkers.events.recorder import EventRecorder
from edgeworkers.k8s.pod import Pod
from edgeworkers.metamanager.outbox import Outbox, pod_item_key
from edgeworkers.runtime import labels
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.integration.statuses import pod_status
from tests.polling import wait_for

MAX_EVENTS = 300  # the node's outbox cap in the outage test (EDGEWORKERS_OUTBOX_MAX_EVENTS)
QUEUED = 500  # events recorded while the cloud is away: the oldest 200 are dropped


def events_of(cluster: Cluster, pod: str, reason: str | None = None) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={pod}" + (f",reason={reason}" if reason else "")
    return cluster.cloud.api.get("/api/v1/namespaces/default/events", {"fieldSelector": selector})["items"]


@pytest.mark.timeout(180)
def test_a_probe_failing_every_second_is_one_event_with_a_growing_count(cluster: Cluster) -> None:
    pod = busybox_pod("never-ready", node=cluster.node)
    pod["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 1,
                                                      "failureThreshold": 1}  # fmt: skip
    cluster.apply(pod)
    cluster.wait_pod("never-ready", lambda p: p["status"].get("phase") == "Running", 60, "never-ready Running")

    def counted(at_least: int) -> list[dict[str, Any]] | None:
        events = events_of(cluster, "never-ready", "Unhealthy")
        return events if events and events[0]["count"] >= at_least else None

    [event] = wait_for(lambda: counted(15), 60, "the Unhealthy event counted 15 times at the cloud")
    assert event["type"] == "Warning" and event["message"].startswith("Readiness probe failed")
    first_seen = event["count"]
    time.sleep(5)  # five more failures
    events = events_of(cluster, "never-ready", "Unhealthy")
    assert len(events) == 1 and events[0]["metadata"]["name"] == event["metadata"]["name"]
    assert events[0]["count"] > first_seen  # patched in place
    # The node's events of the pod together stay within its burst of 25, however many times the probe failed.
    kubelets = [e for e in events_of(cluster, "never-ready") if e["source"]["component"] == "kubelet"]
    assert sum(e["count"] for e in kubelets) <= 25


@pytest.fixture
def node_overrides() -> dict[str, str]:
    return {"EDGEWORKERS_OUTBOX_MAX_EVENTS": str(MAX_EVENTS)}


def ghost(i: int) -> Pod:
    """A pod the events are about (one each, so no rate limit holds them back)."""
    return Pod.model_validate({"metadata": {"name": f"ghost-{i}", "namespace": "default", "uid": f"uid-ghost-{i}"},
                               "spec": {"containers": [{"name": "app", "image": "busybox"}]}})  # fmt: skip


@pytest.mark.timeout(300)
def test_after_an_outage_a_status_reaches_the_cloud_before_the_queued_events(own_cluster: Cluster, caplog) -> None:
    cluster = own_cluster
    cluster.apply(busybox_pod("steady", node=cluster.node))
    cluster.wait_running("steady")
    outbox = Outbox(cluster.redis, max_events=MAX_EVENTS)
    wait_for(lambda: len(outbox) == 0, 30, "the pod's own events and status sent before the outage")
    dropped_before = outbox.events_dropped()

    cluster.stop_cloud()
    record = EventRecorder(cluster.redis, cluster.node, outbox=outbox)
    with caplog.at_level("WARNING", logger="edgeworkers.metamanager.outbox"):
        for i in range(QUEUED):
            record(ghost(i), "Pulled", f'Container image "busybox:{i}" already present on machine')
    assert outbox.events_dropped() - dropped_before == QUEUED - MAX_EVENTS  # the oldest, past the cap
    assert len([r for r in caplog.records if f"more than {MAX_EVENTS} events" in r.getMessage()]) == 1
    # A status change while the cloud is away: the app container killed, restarted by the node.
    [app] = [c for c in cluster.containers("steady") if c.labels.get(labels.CONTAINER_TYPE) == labels.TYPE_APP]
    cluster.docker.api.kill(app.id)
    wait_for(lambda: outbox.pending(pod_item_key("default", "steady")) and any(
        c["restartCount"] == 1 for c in (pod_status(cluster.store, "default/steady") or {}).get("containerStatuses", [])),
        60, "the restarted pod's status waiting in the outbox")

    cluster.start_cloud()

    def restarted_at_cloud() -> bool:
        pod = cluster.cloud_pod("steady") or {}
        return any(c.get("restartCount") == 1 for c in (pod.get("status") or {}).get("containerStatuses") or [])

    wait_for(restarted_at_cloud, 90, "the pod's restart shown at the cloud", interval_s=0.05)
    ghosts_before_status = len(ghost_events(cluster))
    wait_for(lambda: len(ghost_events(cluster)) >= MAX_EVENTS - 5, 120, "the queued events at the cloud")
    assert ghosts_before_status < MAX_EVENTS / 2, ghosts_before_status  # the status went first
    names = {e["involvedObject"]["name"] for e in ghost_events(cluster)}
    assert f"ghost-{QUEUED - 1}" in names and "ghost-0" not in names  # the newest kept, the oldest dropped


def ghost_events(cluster: Cluster) -> list[dict[str, Any]]:
    events = cluster.cloud.api.get("/api/v1/namespaces/default/events", {"fieldSelector": "reason=Pulled"})["items"]
    return [e for e in events if e["involvedObject"]["name"].startswith("ghost-")]
