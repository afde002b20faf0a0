"""The official `kubernetes` Python client, configured from the project's kubeconfig, against the cloud."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import kubernetes
import pytest
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from conftest import Cloud


@pytest.fixture
def core(cloud: Cloud) -> Iterator[CoreV1Api]:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(cloud.kubeconfig), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as api:
        yield CoreV1Api(api)


def pod_body(name: str) -> kubernetes.client.V1Pod:
    return kubernetes.client.V1Pod(
        metadata=kubernetes.client.V1ObjectMeta(name=name, labels={"suite": "python-client"}),
        spec=kubernetes.client.V1PodSpec(
            # A selector no node matches: the pod stays unbound, so a delete is immediate.
            node_selector={"edgeworkers.test/nowhere": "true"},
            containers=[kubernetes.client.V1Container(name="bb", image="busybox", command=["sleep", "60"])],
        ),
    )


def test_list_create_watch_delete(core: CoreV1Api) -> None:
    before = core.list_namespaced_pod("default", label_selector="suite=python-client")
    assert before.items == []

    events: queue.Queue[tuple[str, str]] = queue.Queue()
    watch = kubernetes.watch.Watch()

    def follow() -> None:
        for event in watch.stream(core.list_namespaced_pod, "default", label_selector="suite=python-client",
                                  resource_version=before.metadata.resource_version, timeout_seconds=30):
            events.put((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watch.stop()

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    try:
        created = core.create_namespaced_pod("default", pod_body("pyclient"))
        assert created.metadata.uid and created.metadata.resource_version
        assert created.spec.containers[0].command == ["sleep", "60"]
        assert events.get(timeout=15) == ("ADDED", "pyclient")

        listed = core.list_namespaced_pod("default", label_selector="suite=python-client")
        assert [p.metadata.name for p in listed.items] == ["pyclient"]
        assert core.read_namespaced_pod("pyclient", "default").status.phase == "Pending"

        core.delete_namespaced_pod("pyclient", "default")
        types = [events.get(timeout=15)]
        while types[-1] != ("DELETED", "pyclient"):
            types.append(events.get(timeout=15))
        assert types[-1] == ("DELETED", "pyclient")
    finally:
        watch.stop()
        watcher.join(timeout=30)
    assert not watcher.is_alive()

    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("pyclient", "default")
    assert err.value.status == 404
