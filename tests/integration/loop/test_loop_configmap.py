"""MetaClient: a configmap fetched once from the cloud is served from the node's store once the cloud is gone
(KubeEdge #3638, #3620: configmaps lost while offline)."""
from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.bridge.configs import REFRESH_INTERVAL_S
from edgeworkers.metamanager.client import MetaClient, NotAvailable
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.remote import CloudRemote
from edgeworkers.metamanager.store import CONFIGMAP, POD, MetaStore
from tests.integration.loop.conftest import Cluster, busybox_pod, hold_for
from tests.polling import wait_for


def test_configmap_fetched_once_is_served_with_the_cloud_stopped(own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.kubectl("create", "configmap", "greetings", "--from-literal=greeting=hello")
    # The worker's remote query, pointed at this cloud (its address and the credentials in its data dir).
    cloud_remote = CloudRemote(cluster.config.model_copy(update={
        "cloud_host": "127.0.0.1", "cloud_port": cluster.cloud.port, "cloud_data_dir": cluster.cloud.data_dir,
    }))
    asked: list[tuple[str, str, str]] = []

    def remote(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        asked.append((kind, namespace, name))
        return cloud_remote(kind, namespace, name)

    store = MetaStore(cluster.redis)
    meta = MetaClient(store, Outbox(cluster.redis), remote)

    # The node may read a configmap only once a pod bound to it references it (the cloud's Node authorizer). The
    # bridge is down meanwhile, so nothing but this MetaClient fetches it: the first read is a miss.
    cluster.stop_bridge()
    user = busybox_pod("user", 'echo "greeting=$GREETING"; sleep 3600', node=cluster.node)
    user["spec"]["containers"][0]["env"] = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "greetings", "key": "greeting"}}}
    ]
    cluster.apply(user)
    assert store.get(CONFIGMAP, "default", "greetings") is None
    assert meta.get_configmap("default", "greetings")["data"] == {"greeting": "hello"}  # answered by the cloud
    assert asked == [(CONFIGMAP, "default", "greetings")]
    assert store.get(CONFIGMAP, "default", "greetings")["data"] == {"greeting": "hello"}  # and stored

    # The bridge back: it stores the pod, and keeps the configmap (a pod of the node uses it). Its refresher's first
    # round may run before the watcher has stored the pod, and drop the configmap as unused until its next round.
    cluster.start_bridge()
    wait_for(lambda: store.get(POD, "default", "user"), 30, "the bridge to store the pod using the configmap")
    wait_for(lambda: store.get(CONFIGMAP, "default", "greetings"), REFRESH_INTERVAL_S + 10,
             "the configmap kept on the node")
    cluster.wait_running("user")
    assert wait_for(lambda: cluster.kubectl("logs", "user", check=False).stdout, 10, "its log") == "greeting=hello\n"

    cluster.stop_cloud()
    asked.clear()
    assert meta.get_configmap("default", "greetings")["data"] == {"greeting": "hello"}
    # Across one of the bridge's refresh rounds with the cloud away, it stays and is served from the store.
    hold_for(lambda: meta.get_configmap("default", "greetings")["data"] == {"greeting": "hello"},
             REFRESH_INTERVAL_S + 2, "the configmap served from the store")
    assert asked == []

    # One the node never fetched: a clear error, after one try at the cloud.
    with pytest.raises(NotAvailable, match='configmap "absent" is not on this node and the cloud is unreachable'):
        meta.get_configmap("default", "absent")
    assert asked == [(CONFIGMAP, "default", "absent")]
