"""The pod watcher: list, watch, resume, relist, back-off; and what reaches the store, the queues and the outbox."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from edgeworkers.bridge.watcher import (
    BACKOFF_RESET_S,
    Action,
    PodWatcher,
    classify,
    operation,
    spec_changed,
)
from edgeworkers.constants import ANNOTATION_MIRROR, ANNOTATION_SOURCE, SOURCE_API, SOURCE_FILE
from edgeworkers.kubeclient import ApiError, CloudUnavailable, WatchExpired
from edgeworkers.messages import Message
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.status.manager import StatusManager
from tests.unit.clock import Clock

NODE = "edge-1"
SPEC = {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}
READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
         "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}]}
NOT_READY = {**READY, "conditions": [{"type": "Ready", "status": "False"}]}


def pod(name: str, rv: str, uid: str | None = None, *, node: str = NODE, spec: dict | None = None,
        status: dict | None = None, **meta: Any) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": uid or f"uid-{name}", "resourceVersion": rv, **meta},
        "spec": {**(spec or SPEC), "nodeName": node},
        "status": status or {"phase": "Pending"},
    }


def mirror(name: str, rv: str) -> dict:
    return pod(name, rv, annotations={ANNOTATION_MIRROR: "hash", ANNOTATION_SOURCE: SOURCE_FILE})


def bookmark(rv: str) -> tuple[str, dict]:
    return "BOOKMARK", {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}


def listing(rv: str, *items: dict) -> dict:
    return {"kind": "PodList", "metadata": {"resourceVersion": rv}, "items": list(items)}


Script = list[Any]  # events (type, object), or an exception raised at that point


class FakeApi:
    """Canned lists and watch streams, consumed in order; every call recorded."""

    def __init__(self) -> None:
        self.lists: list[dict | Exception] = []
        self.watches: list[Script | Exception] = []
        self.calls: list[tuple[str, dict]] = []
        self.closed_streams = 0

    def list(self, path: str, params: dict[str, str] | None = None) -> dict:
        self.calls.append(("list", {"path": path, **(params or {})}))
        result = self.lists.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    def watch(self, path: str, params: dict[str, str] | None = None, timeout_s: int = 300) -> Iterator[tuple]:
        self.calls.append(("watch", {"path": path, **(params or {}), "timeout_s": timeout_s}))
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        return self._stream(script)

    def _stream(self, script: Script) -> Iterator[tuple]:
        try:
            for item in script:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed_streams += 1


@dataclass
class Mirrors:
    observed: list[tuple[str, str]] = field(default_factory=list)
    reconciled: list[list[str]] = field(default_factory=list)

    def observe(self, event_type: str, pod: dict) -> None:
        self.observed.append((event_type, pod["metadata"]["name"]))

    def reconcile(self, mirror_pods: list[dict]) -> None:
        self.reconciled.append([p["metadata"]["name"] for p in mirror_pods])


@dataclass
class Env:
    api: FakeApi
    store: MetaStore
    outbox: Outbox
    status: StatusManager
    mirrors: Mirrors
    sent: list[Message]
    clock: Clock
    watcher: PodWatcher

    def operations(self) -> list[tuple[str, str]]:
        return [(m.route.operation, m.key) for m in self.sent]

    def stored(self, name: str) -> dict | None:
        return self.store.get(POD, "default", name)


@pytest.fixture
def env(fake_redis) -> Env:
    api, store, outbox, mirrors, sent, clock = FakeApi(), MetaStore(fake_redis), Outbox(fake_redis), Mirrors(), [], Clock()
    status = StatusManager(store, outbox)
    watcher = PodWatcher(api, store, sent.append, NODE, mirrors, status, clock=clock, jitter=lambda: 0.5)
    return Env(api, store, outbox, status, mirrors, sent, clock, watcher)


def listed(env: Env, rv: str, *items: dict) -> None:
    """Run a step that lists (as after a start, a 410 or a failure)."""
    env.watcher.resource_version = None
    env.api.lists.append(listing(rv, *items))
    assert env.watcher.step() == 0.0


def watched(env: Env, *events: Any) -> float:
    env.api.watches.append(list(events))
    return env.watcher.step()


# --- pure decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(("event_type", "obj", "action"), [
    ("ADDED", pod("a", "1"), Action.APPLY),
    ("MODIFIED", pod("a", "1"), Action.APPLY),
    ("DELETED", pod("a", "1"), Action.DELETE),
    ("MODIFIED", mirror("m", "1"), Action.MIRROR),
    ("DELETED", mirror("m", "1"), Action.MIRROR),
    ("BOOKMARK", {"metadata": {"resourceVersion": "9"}}, Action.BOOKMARK),
    ("ADDED", pod("a", "1", node="edge-2"), Action.OTHER_NODE),
    ("ADDED", {**pod("a", "1"), "spec": {}}, Action.OTHER_NODE),
    ("ADDED", {"metadata": {"namespace": "default"}, "spec": SPEC}, Action.NAMELESS),
    ("ADDED", {"metadata": {"name": "a"}, "spec": SPEC}, Action.NAMELESS),
    ("ADDED", {"spec": SPEC}, Action.NAMELESS),
    ("ADDED", {**pod("a", "1"), "kind": "ConfigMap"}, Action.MALFORMED),
    ("ADDED", "not an object", Action.MALFORMED),
    ("RENAMED", pod("a", "1"), Action.MALFORMED),
])
def test_classify(event_type: str, obj: Any, action: Action) -> None:
    assert classify(event_type, obj, NODE) is action


@pytest.mark.parametrize(("change", "changed"), [
    ({}, False),
    ({"status": READY}, False),
    ({"metadata": {"resourceVersion": "99", "managedFields": [{"manager": "x"}]}}, False),
    ({"spec": {**SPEC, "containers": [{"name": "c", "image": "busybox:1.36"}]}}, True),
    ({"metadata": {"labels": {"app": "x"}}}, True),
    ({"metadata": {"annotations": {"a": "b"}}}, True),
    ({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}, True),
    ({"metadata": {"deletionGracePeriodSeconds": 0}}, True),
    ({"metadata": {"uid": "other"}}, True),
])
def test_spec_changed(change: dict, changed: bool) -> None:
    old = pod("a", "1")
    new = {**old, **change, "metadata": {**old["metadata"], **change.get("metadata", {})}}
    assert spec_changed(old, new) is changed
    assert spec_changed(None, new) is True


@pytest.mark.parametrize(("old", "new", "op"), [
    (None, pod("a", "2"), "insert"),
    (pod("a", "1"), pod("a", "2"), "update"),
    (pod("a", "1"), pod("a", "2", uid="new"), "insert"),
    (pod("a", "1", deletionTimestamp="t"), pod("a", "2", uid="new"), "insert"),
    (pod("a", "1"), pod("a", "2", deletionTimestamp="t"), "delete"),
    (None, pod("a", "2", deletionTimestamp="t"), "delete"),
])
def test_operation(old: dict | None, new: dict, op: str) -> None:
    assert operation(old, new) == op


# --- list and watch ------------------------------------------------------------------------------


def test_lists_then_watches_from_the_lists_version_and_resumes_from_the_last_seen(env: Env) -> None:
    assert not env.watcher.listed.is_set()
    listed(env, "10", pod("a", "5"))
    assert env.watcher.listed.is_set()  # MetaManager's pods are now the cloud's (the config refresher may drop)
    assert env.stored("a")["metadata"]["annotations"] == {ANNOTATION_SOURCE: SOURCE_API}
    assert env.operations() == [("insert", "default/a")]
    assert watched(env, ("ADDED", pod("b", "11")),
                   ("MODIFIED", pod("a", "12", spec={**SPEC, "restartPolicy": "Never"})),
                   bookmark("15")) == 0.0
    assert env.operations() == [("insert", "default/a"), ("insert", "default/b"), ("update", "default/a")]
    assert env.stored("a")["spec"]["restartPolicy"] == "Never"
    watched(env)  # the server ended the watch: resume from the bookmark
    assert env.api.calls == [
        ("list", {"path": "/api/v1/pods", "fieldSelector": "spec.nodeName=edge-1"}),
        ("watch", {"path": "/api/v1/pods", "fieldSelector": "spec.nodeName=edge-1", "resourceVersion": "10",
                   "timeout_s": 450}),
        ("watch", {"path": "/api/v1/pods", "fieldSelector": "spec.nodeName=edge-1", "resourceVersion": "15",
                   "timeout_s": 450}),
    ]
    assert env.api.closed_streams == 2


def test_a_status_only_change_sends_no_task_and_the_echo_of_the_nodes_status_nothing_more(env: Env) -> None:
    listed(env, "10", pod("a", "5"))
    env.status.set("default/a", None, READY)
    watched(env, ("MODIFIED", pod("a", "11", status=READY)))
    assert env.operations() == [("insert", "default/a")]
    assert env.stored("a")["metadata"]["resourceVersion"] == "11"
    assert len(env.outbox) == 0


def test_a_cloud_status_that_differs_from_the_nodes_is_sent_again(env: Env) -> None:
    listed(env, "10", pod("a", "5"))
    env.status.set("default/a", None, READY)
    watched(env, ("MODIFIED", pod("a", "11", status=NOT_READY)))  # the node lifecycle controller's doing
    [item] = env.outbox.peek()
    assert item.payload == {"op": "pod_status", "namespace": "default", "name": "a", "uid": "uid-a",
                            "status": READY, "mirror": False}
    assert env.operations() == [("insert", "default/a")]


def test_no_status_is_sent_again_for_a_pod_being_deleted(env: Env) -> None:
    listed(env, "10", pod("a", "5"))
    env.status.set("default/a", None, READY)
    env.outbox.pod_deleted("default", "a", "uid-a", mirror=False)  # the worker's confirmation, pending
    watched(env, ("MODIFIED", pod("a", "11", status=NOT_READY, deletionTimestamp="t")))
    assert [item.payload["op"] for item in env.outbox.peek()] == ["pod_deleted"]


def test_relists_at_once_after_410(env: Env) -> None:
    listed(env, "10")
    assert watched(env, ("ADDED", pod("a", "11")), WatchExpired(410, "Expired", "too old")) == 0.0
    assert env.watcher.resource_version is None
    env.api.watches.append(WatchExpired(410, "Expired", "too old"))  # refused when opening, too
    env.api.lists.append(listing("20", pod("a", "11")))
    assert env.watcher.step() == 0.0  # the list
    assert env.watcher.step() == 0.0  # the refused watch
    listed(env, "30", pod("a", "11"))
    assert [kind for kind, _ in env.api.calls] == ["list", "watch", "list", "watch", "list"]
    assert env.operations() == [("insert", "default/a")]


def test_reconnects_with_growing_delays_relisting_each_time(env: Env) -> None:
    delays = []
    for _ in range(9):
        env.api.lists.append(CloudUnavailable("connection refused"))
        delays.append(env.watcher.step())
        env.clock.now += delays[-1]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    listed(env, "10")
    assert watched(env, CloudUnavailable("connection reset")) == 30  # failures so far, without a quiet spell
    assert env.watcher.resource_version is None  # the next step lists again
    env.clock.now += BACKOFF_RESET_S
    env.api.lists.append(ApiError(403, "Forbidden", "no"))
    assert env.watcher.step() == 0.5  # after a quiet spell, from the shortest delay again


def test_a_watch_that_ends_at_once_backs_off_but_resumes(env: Env) -> None:
    listed(env, "10")
    assert watched(env) == 0.5
    assert env.watcher.resource_version == "10"
    env.clock.now += 5
    assert watched(env, bookmark("12")) == 0.0


def test_pods_deleted_while_away_are_stopped_and_unchanged_ones_left_alone(env: Env) -> None:
    static = pod("s", "3", annotations={ANNOTATION_SOURCE: SOURCE_FILE})
    env.store.put(POD, static)
    listed(env, "10", pod("a", "5"), pod("b", "6"))
    env.status.set("default/b", None, READY)
    watched(env, CloudUnavailable("gone"))
    env.sent.clear()
    b_before = env.stored("b")
    # hours later: a was deleted at the cloud, b's status was marked NotReady meanwhile
    listed(env, "500", pod("b", "480", status=NOT_READY))
    assert env.operations() == [("delete", "default/a")]
    a = env.stored("a")
    assert a["metadata"]["deletionTimestamp"] and a["metadata"]["resourceVersion"] == "500"
    assert env.stored("b")["spec"] == b_before["spec"]
    assert env.stored("s") == static
    assert [item.payload["name"] for item in env.outbox.peek()] == ["b"]
    env.sent.clear()
    listed(env, "501", pod("b", "480", status=NOT_READY))  # a still being deleted: not again
    assert env.sent == []


def test_a_pod_replaced_under_the_same_name_is_a_new_pod(env: Env) -> None:
    listed(env, "10", pod("a", "5"))
    listed(env, "20", pod("a", "18", uid="uid-new"))
    assert env.operations() == [("insert", "default/a"), ("insert", "default/a")]
    assert env.stored("a")["metadata"]["uid"] == "uid-new"
    assert not env.stored("a")["metadata"].get("deletionTimestamp")


def test_a_graceful_delete_at_the_cloud_reaches_the_workers(env: Env) -> None:
    listed(env, "10", pod("a", "5"))
    watched(env, ("MODIFIED", pod("a", "11", deletionTimestamp="t", deletionGracePeriodSeconds=30)))
    assert env.operations() == [("insert", "default/a"), ("delete", "default/a")]
    watched(env, ("DELETED", pod("a", "12", deletionTimestamp="t", deletionGracePeriodSeconds=0)))
    assert len(env.sent) == 2  # already being deleted: the worker is on it


def test_a_force_delete_at_the_cloud_stops_the_pod(env: Env) -> None:
    listed(env, "10", pod("a", "5", spec={**SPEC, "terminationGracePeriodSeconds": 30}))
    watched(env, ("DELETED", pod("a", "11", deletionTimestamp="t", deletionGracePeriodSeconds=0)))
    assert env.operations() == [("insert", "default/a"), ("delete", "default/a")]
    meta = env.stored("a")["metadata"]
    assert (meta["resourceVersion"], meta["deletionGracePeriodSeconds"]) == ("11", 0)


def test_a_deletion_of_a_pod_not_stored_leaves_a_tombstone(env: Env) -> None:
    listed(env, "10")
    watched(env, ("DELETED", pod("a", "12")), ("ADDED", pod("a", "11")))  # a late, replayed add
    assert env.stored("a") is None
    assert env.sent == []
    assert env.store.tombstone(POD, "default", "a") == 12


def test_another_nodes_pods_and_malformed_events_are_dropped_each_logged_once(env: Env) -> None:
    listed(env, "10")
    with structlog.testing.capture_logs() as logs:
        watched(env, ("ADDED", pod("x", "11", node="edge-2")), ("MODIFIED", pod("x", "12", node="edge-2")),
                ("ADDED", "garbage"), ("ADDED", {"metadata": {"namespace": "default"}, "spec": SPEC}),
                ("ADDED", {**pod("cm", "13"), "kind": "ConfigMap"}), ("ADDED", pod("ok", "14")))
    assert env.stored("x") is None
    assert env.operations() == [("insert", "default/ok")]
    assert env.watcher.resource_version == "14"
    warnings = [(entry["event"], entry["pod"]) for entry in logs if entry["log_level"] == "warning"]
    assert warnings == [("pod bound to another node: dropped", "default/x"),
                        ("ADDED event not a pod event: dropped", "ADDED"),
                        ("pod without a name or namespace: dropped", "default/None")]


def test_mirror_pods_go_to_the_mirror_pods_only(env: Env) -> None:
    listed(env, "10", mirror("m1", "4"), pod("a", "5"))
    watched(env, ("MODIFIED", mirror("m1", "11")), ("DELETED", mirror("m1", "12")))
    assert env.mirrors.reconciled == [["m1"]]
    assert env.mirrors.observed == [("MODIFIED", "m1"), ("DELETED", "m1")]
    assert env.store.keys(POD) == {"default/a"}
    assert env.store.tombstone(POD, "default", "m1") is None


def test_a_cloud_pod_with_a_static_pods_name_is_refused(env: Env) -> None:
    static = pod("s", "3", annotations={ANNOTATION_SOURCE: SOURCE_FILE})
    env.store.put(POD, static)
    listed(env, "10", pod("s", "9", uid="cloud"))
    watched(env, ("DELETED", pod("s", "11", uid="cloud")))
    assert env.stored("s") == static
    assert env.sent == []


def test_a_crash_while_handling_is_logged_and_the_watcher_lists_again(env: Env) -> None:
    def broken(event_type: str, pod: dict) -> None:
        raise RuntimeError("bug")

    env.mirrors.observe = broken  # type: ignore[method-assign]
    listed(env, "10")
    assert watched(env, ("ADDED", mirror("m", "11")), ("ADDED", pod("a", "12"))) == 0.5
    assert env.watcher.resource_version is None
    listed(env, "13", pod("a", "12"))
    assert env.operations() == [("insert", "default/a")]


def test_run_stops_when_told(env: Env) -> None:
    stop = threading.Event()

    class Stopping(FakeApi):
        def _stream(self, script: Script) -> Iterator[tuple]:
            try:
                yield "ADDED", pod("a", "11")
                stop.set()  # as SIGTERM would, while the watcher waits for the next event
                yield "ADDED", pod("b", "12")
                yield "ADDED", pod("c", "13")
            finally:
                self.closed_streams += 1

    api = Stopping()
    api.lists.append(listing("10"))
    api.watches.append([])
    env.watcher = PodWatcher(api, env.store, env.sent.append, NODE, env.mirrors, env.status, clock=env.clock)
    env.watcher.run(stop)
    assert env.store.keys(POD) == {"default/a", "default/b"}
    assert api.closed_streams == 1
