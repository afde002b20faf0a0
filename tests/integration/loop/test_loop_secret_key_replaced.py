"""The node's key replaced while Redis kept its data: a stored secret no longer decrypts. It is treated as absent and
fetched again from the cloud; with the cloud away meanwhile, its pod's container waits in
``CreateContainerConfigError`` naming the secret, nothing crashes, and no log line holds its value. Once the cloud is
back the secret is stored again under the new key and the pod runs with it."""
from __future__ import annotations

import base64
import os

import pytest

from edgeworkers.metamanager.crypto import KEY_FILE, node_cipher
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import SECRET, MetaStore
from edgeworkers.status.manager import StatusManager
from tests.integration.loop.conftest import Cluster, busybox_pod, running_at_cloud
from tests.polling import wait_for

VALUE = "s3cr3t-under-the-old-key"


@pytest.fixture
def node_overrides() -> dict[str, str]:
    return {"EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK": "true"}  # the pod needs no network of its own


def waiting_of(status: dict | None) -> dict:
    containers = (status or {}).get("containerStatuses") or []
    return ((containers[0].get("state") or {}).get("waiting") or {}) if containers else {}


def test_an_undecryptable_secret_is_a_config_error_until_fetched_again(own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.kubectl("create", "secret", "generic", "db", f"--from-literal=password={VALUE}")
    pod = busybox_pod("vault", 'echo "password=$PASSWORD"; sleep 3600', node=cluster.node, grace=0,
                     hostNetwork=True)
    pod["spec"]["containers"][0]["env"] = [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]
    cluster.apply(pod)
    cluster.wait_running("vault")
    assert cluster.store.keys(SECRET) == {"default/db"}

    # A new key while Redis keeps the secret encrypted under the old one; the cloud away.
    cluster.stop_bridge()
    cluster.stop_worker()
    key_file = cluster.config.data_dir / KEY_FILE
    key_file.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
    cluster.stop_cloud()
    cluster.start_worker()
    app = cluster.running_ids("vault")["app"]
    cluster.docker.containers.get(app).kill()  # its restart needs the secret for its environment

    statuses = StatusManager(cluster.store, Outbox(cluster.redis))
    waiting = wait_for(lambda: (w := waiting_of(statuses.get("default/vault"))).get("reason") ==
                       "CreateContainerConfigError" and w, 60, "the container waiting on its secret", interval_s=0.5)
    assert waiting["message"] == 'secret "db" is not on this node and the cloud is unreachable'
    assert cluster.store.keys(SECRET) == set()  # the unreadable copy is gone
    assert cluster.worker is not None and cluster.worker.process.poll() is None

    cluster.start_cloud()
    cluster.start_bridge()
    healed = cluster.wait_pod("vault", lambda p: running_at_cloud(p)
                              and p["status"]["containerStatuses"][0]["restartCount"] >= 1, 90,
                              "the pod running again with its secret")
    assert healed["status"]["containerStatuses"][0]["restartCount"] >= 1
    assert cluster.kubectl("logs", "vault").stdout == f"password={VALUE}\n"
    stored = MetaStore(cluster.redis, node_cipher(cluster.config.data_dir)).get(SECRET, "default", "db")
    assert stored is not None and base64.b64decode(stored["data"]["password"]).decode() == VALUE

    logs = "".join(path.read_text(errors="replace") for path in (cluster.bridge_log, cluster.worker_log,
                                                                 cluster.scheduler_log))
    assert "secret default/db cannot be decrypted with this node's key" in logs
    for needle in (VALUE, base64.b64encode(VALUE.encode()).decode()):
        assert needle not in logs
    assert "dead-lettered" not in logs and "Traceback" not in logs
