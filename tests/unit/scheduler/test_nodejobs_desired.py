"""What the prober reads of the desired state: only the pods with probes, decoded once per resourceVersion."""
from __future__ import annotations

import fakeredis

import scheduler.nodejobs as scheduler_node
from edgeworkers.metamanager.store import POD, MetaStore
from scheduler.nodejobs import DesiredPods


def test_the_prober_gets_only_the_pods_with_probes_decoded_once_per_version(monkeypatch) -> None:
    store = MetaStore(fakeredis.FakeRedis())
    probe = {"exec": {"command": ["true"]}}
    for name, extra in (("plain", {}), ("probed", {"readinessProbe": probe}), ("broken", {"livenessProbe": probe})):
        container = {"name": "app", "image": "busybox", **extra}
        store.put(POD, {"metadata": {"name": name, "namespace": "default", "uid": name, "resourceVersion": "1"},
                        "spec": {"containers": [container] if name != "broken" else [{**container, "image": ""}]}})
    decoded: list[str] = []
    original = scheduler_node.decode_pod
    monkeypatch.setattr(scheduler_node, "decode_pod", lambda raw: decoded.append(raw["metadata"]["name"])
                        or original(raw))
    desired = DesiredPods(store)
    assert [pod.metadata.name for pod in desired()] == ["probed"]  # the invalid one is the worker's to report
    assert [pod.metadata.name for pod in desired()] == ["probed"]
    assert sorted(decoded) == ["broken", "broken", "probed"]  # a valid pod once; never one without probes
