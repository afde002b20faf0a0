"""Pods through the real queues: real Redis, real dockerd, `dramatiq` worker subprocesses."""
from __future__ import annotations

import pytest
from queuekit import (
    busybox_pod,
    node_containers,
    queues_drained,
    running_names,
    wait_for,
)

from edgeworkers.messages import Message
from edgeworkers.metamanager.store import POD
from edgeworkers.pods import desired
from edgeworkers.runtime import labels
from tests.integration.statuses import pod_status


def test_a_pod_added_through_the_queue_runs_its_containers(start_worker, send, store, docker_client, node_name):
    start_worker()
    desired.apply_pod(store, send, busybox_pod("web"))

    containers = wait_for(
        lambda: (cs := node_containers(docker_client, node_name, "web")) and running_names(cs) == {"POD", "app"} and cs,
        60,
        "the sandbox and app container running",
    )
    uid = store.get(POD, "default", "web")["metadata"]["uid"]
    assert {c.labels[labels.POD_UID] for c in containers} == {uid}
    assert len(containers) == 2
    status = wait_for(
        lambda: (s := pod_status(store, "default/web")) and s.get("phase") == "Running" and s, 30, "status Running"
    )
    assert [c["name"] for c in status["containerStatuses"]] == ["app"]


@pytest.mark.parametrize("order", ["add-first", "delete-first"])
def test_add_then_delete_back_to_back_leaves_no_container(order, start_worker, store, send, real_redis, docker_client, node_name):
    sent: list[Message] = []
    desired.apply_pod(store, sent.append, busybox_pod("flash"))
    desired.delete_pod(store, sent.append, "default/flash")
    assert [m.route.operation for m in sent] == ["insert", "delete"]
    for message in sent if order == "add-first" else reversed(sent):
        send(message)
    start_worker(threads=4)

    wait_for(lambda: queues_drained(real_redis), 60, "both tasks processed")
    assert node_containers(docker_client, node_name) == []
    assert store.get(POD, "default", "flash") is None
    assert pod_status(store, "default/flash") is None


def test_duplicated_tasks_are_harmless(start_worker, store, send, real_redis, docker_client, node_name):
    message = desired.apply_pod(store, send, busybox_pod("dup"))
    for _ in range(5):
        send(message)
    start_worker(threads=4)

    wait_for(lambda: queues_drained(real_redis), 60, "all tasks processed")
    containers = node_containers(docker_client, node_name, "dup")
    assert sorted(c.labels[labels.CONTAINER_NAME] for c in containers) == ["POD", "app"]
    assert running_names(containers) == {"POD", "app"}


def test_an_invalid_pod_is_dead_lettered_with_its_reason_and_the_worker_lives_on(
    start_worker, store, send, real_redis, docker_client, node_name
):
    bad = busybox_pod("bad")
    bad["spec"]["containers"][0]["name"] = "Web_1"
    store.put(POD, bad)  # as if written by an older agent or by hand: apply_pod would refuse it
    send(Message.for_object(POD, bad, "insert", source="file"))
    worker = start_worker()

    wait_for(lambda: real_redis.hlen("dramatiq:pod_add.XQ.msgs") == 1, 60, "the task dead-lettered")
    status = pod_status(store, "default/bad")
    assert status["reason"] == "Invalid"
    assert 'spec.containers[0].name: Invalid value: "Web_1"' in status["message"]
    log = wait_for(lambda: "default/bad" in worker.output() and worker.output(), 10, "the log line")
    assert 'pod default/bad is invalid' in log and "Web_1" in log
    assert node_containers(docker_client, node_name) == []

    # Not retried: the worker is alive and still serves other pods.
    desired.apply_pod(store, send, busybox_pod("good"))
    wait_for(lambda: running_names(node_containers(docker_client, node_name, "good")) == {"POD", "app"}, 60, "good runs")
    assert worker.process.poll() is None
    assert real_redis.hlen("dramatiq:pod_add.XQ.msgs") == 1


def test_an_unreachable_engine_is_retried_with_back_off_until_the_pod_runs(
    start_worker, store, send, docker_client, node_name, tmp_path
):
    engine = tmp_path / "docker.sock"  # dockerd "away": nothing listens here until the link is made
    worker = start_worker(env={"EDGEWORKERS_DOCKER_HOST": f"unix://{engine}"})
    desired.apply_pod(store, send, busybox_pod("patient"))

    wait_for(lambda: worker.output().count("Retrying message") >= 2, 30, "the add retried twice")
    assert node_containers(docker_client, node_name) == []
    engine.symlink_to("/var/run/docker.sock")  # dockerd is back

    wait_for(lambda: running_names(node_containers(docker_client, node_name, "patient")) == {"POD", "app"}, 60, "it runs")
    wait_for(lambda: (pod_status(store, "default/patient") or {}).get("phase") == "Running", 30, "status Running")
    assert worker.process.poll() is None
    assert "pod default/patient: RuntimeUnavailable" in worker.output()  # one line each, naming the pod
    assert "Traceback" not in worker.output()
