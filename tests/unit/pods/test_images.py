"""Image pulls before the pod lock (pods.images through pods.reconcile): a slow pull keeps no other task of the pod
waiting, two pods needing one image pull it once without a second thread waiting for it (the second pod waits on
ContainerCreating and is woken when the pull ends), and a failed pull still reads ErrImagePull then
ImagePullBackOff, with kubelet's events."""
from __future__ import annotations

import threading

import pytest

from edgeworkers.metamanager.store import POD
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.lock import pod_lock
from edgeworkers.pods.reconcile import PodWorkers, reconcile
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.fake import FakeRuntime
from tests.unit.pods.test_reconcile import make_workers, pod

IMAGE = "remote/app:1"


class SlowRegistry(FakeRuntime):
    """A FakeRuntime whose pulls block until the test releases them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pulling = threading.Event()
        self.release = threading.Event()

    def pull_image(self, image: str, auth=None) -> None:
        self.pulling.set()
        assert self.release.wait(10), "the test never released the pull"
        super().pull_image(image, auth)


@pytest.fixture
def runtime(settings) -> SlowRegistry:
    runtime = SlowRegistry(node_name=settings.node_name, registry=[IMAGE])
    yield runtime
    runtime.release.set()


@pytest.fixture
def events() -> list[tuple[str, str, str, str]]:
    return []


@pytest.fixture
def woken() -> list[str]:
    return []


@pytest.fixture
def workers(fake_redis, settings, runtime, events, woken) -> PodWorkers:
    syncer = PodSyncer(
        runtime, MemoryBackoffStore(), settings, image_locks=fake_redis,
        events=lambda p, reason, message, kind: reason == "MissingClusterDNS"  # every pod's (no cluster DNS here)
        or events.append((p.metadata.name, reason, message, kind)),
        wake=woken.append,
    )  # fmt: skip
    return make_workers(fake_redis, syncer, settings)


def app_state(workers: PodWorkers, name: str = "web") -> dict:
    return workers.status.get(f"default/{name}")["containerStatuses"][0]["state"]


def in_thread(target, *args) -> tuple[threading.Thread, list]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_a_slow_pull_holds_no_pod_lock_so_a_delete_runs_meanwhile(workers, runtime, events) -> None:
    workers.store.put(POD, pod(image=IMAGE))
    adding, errors = in_thread(reconcile, workers, "default/web")
    assert runtime.pulling.wait(5)

    with pod_lock(workers.redis, "default/web"):  # free while the image is pulled
        pass
    deleted = pod(image=IMAGE, rv="2")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    workers.store.put(POD, deleted)
    reconcile(workers, "default/web")  # the delete completes with the pull still going
    assert workers.store.get(POD, "default", "web") is None and runtime.list_containers() == []

    runtime.release.set()
    adding.join(10)
    assert not adding.is_alive() and errors == []
    assert runtime.list_containers() == []  # the add found the pod gone: nothing started
    assert [e[1] for e in events] == ["Pulling", "Pulled"]


def test_the_sync_after_a_pull_starts_the_container_with_kubelets_events(workers, runtime, events) -> None:
    runtime.release.set()
    workers.store.put(POD, pod(image=IMAGE))
    reconcile(workers, "default/web")
    assert "running" in app_state(workers)
    assert [(reason, message) for _, reason, message, _ in events] == [
        ("Pulling", f'Pulling image "{IMAGE}"'),
        ("Pulled", f'Successfully pulled image "{IMAGE}"'),
        ("Created", "Created container app"),
        ("Started", "Started container app"),
    ]
    assert len(runtime.calls_named("pull_image")) == 1


def test_two_pods_needing_one_image_pull_it_once_and_the_second_waits_without_a_thread(workers, runtime, events,
                                                                                        woken) -> None:
    for name in ("a", "b"):
        workers.store.put(POD, pod(name, image=IMAGE))
    first, errors_a = in_thread(reconcile, workers, "default/a")
    assert runtime.pulling.wait(5)

    assert reconcile(workers, "default/b") == settings_initial_s(workers)  # at once: looks again later
    assert app_state(workers, "b") == {"waiting": {"reason": "ContainerCreating"}}
    assert woken == [] and [e[:2] for e in events] == [("a", "Pulling")]

    runtime.release.set()
    first.join(10)
    assert errors_a == [] and woken == ["default/b"]  # the pull is over: the waiter is synced
    reconcile(workers, "default/b")
    assert len(runtime.calls_named("pull_image")) == 1
    assert "running" in app_state(workers, "a") and "running" in app_state(workers, "b")
    assert ("b", "Pulled", f'Container image "{IMAGE}" already present on machine', "Normal") in events
    assert workers.redis.keys("*lock:image*") == workers.redis.keys("*image-waiters*") == []


def test_a_pod_waiting_for_a_pull_that_failed_reads_image_pull_back_off(workers, runtime, woken) -> None:
    for name in ("a", "b"):
        workers.store.put(POD, pod(name, image="remote/nowhere:1"))
    first, _ = in_thread(reconcile, workers, "default/a")
    assert runtime.pulling.wait(5)
    reconcile(workers, "default/b")
    runtime.release.set()
    first.join(10)
    assert woken == ["default/b"]
    reconcile(workers, "default/b")
    assert app_state(workers, "b")["waiting"]["reason"] == "ImagePullBackOff"
    assert len(runtime.calls_named("pull_image")) == 1


def test_pods_of_that_image_and_of_others_are_synced_at_once_while_a_pull_goes_on(workers, runtime, woken) -> None:
    workers.store.put(POD, pod("a", image=IMAGE))
    first, _ = in_thread(reconcile, workers, "default/a")
    assert runtime.pulling.wait(5)
    for name in ("b", "c", "d"):  # more pods of the image than a worker has threads: none of them blocks
        workers.store.put(POD, pod(name, image=IMAGE))
        reconcile(workers, f"default/{name}")
        assert app_state(workers, name) == {"waiting": {"reason": "ContainerCreating"}}
    other = pod("other", image="busybox")
    other["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"  # present: no pull
    workers.store.put(POD, other)
    reconcile(workers, "default/other")
    assert "running" in app_state(workers, "other")
    runtime.release.set()
    first.join(10)
    assert woken == ["default/b", "default/c", "default/d"]


def settings_initial_s(workers: PodWorkers) -> float:
    return workers.settings.backoff_initial_s


def test_a_failed_pull_is_err_image_pull_then_image_pull_back_off(workers, runtime, events) -> None:
    runtime.release.set()
    workers.store.put(POD, pod(image="remote/nowhere:1"))
    reconcile(workers, "default/web")
    waiting = app_state(workers)["waiting"]
    assert waiting["reason"] == "ErrImagePull" and "repository does not exist" in waiting["message"]
    assert [e[1] for e in events] == ["Pulling", "Failed"]
    assert events[1][2].startswith('Failed to pull image "remote/nowhere:1": ') and events[1][3] == "Warning"

    reconcile(workers, "default/web")  # within the back-off: no pull, before the lock or under it
    assert app_state(workers)["waiting"] == {"reason": "ImagePullBackOff",
                                           "message": 'Back-off pulling image "remote/nowhere:1"'}  # fmt: skip
    assert len(runtime.calls_named("pull_image")) == 1 and events[-1][1] == "BackOff"


def test_an_engine_refusal_before_the_lock_leaves_the_pull_to_the_sync(workers, runtime, events) -> None:
    runtime.release.set()
    runtime.fail("image_present", ContainerRuntimeError("engine hiccup"))  # the prefetch's look at the image
    workers.store.put(POD, pod(image=IMAGE))
    reconcile(workers, "default/web")
    assert "running" in app_state(workers)
    assert [e[1] for e in events] == ["Pulling", "Pulled", "Created", "Started"]
