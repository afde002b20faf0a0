"""A node-local (static) pod shows at the cloud as a mirror pod, which comes back when deleted there."""
from __future__ import annotations

import json
from pathlib import Path

from edgeworkers.constants import ANNOTATION_MIRROR
from tests.integration.loop.conftest import Cluster, busybox_pod, running_at_cloud
from tests.polling import wait_for


def test_mirror_pod_appears_and_comes_back_without_restarting_the_static_pod(cluster: Cluster, tmp_path: Path) -> None:
    manifest = tmp_path / "static.yaml"
    manifest.write_text(json.dumps(busybox_pod("static", "echo static; sleep 3600")))
    applied = cluster.edgeworkers("pod", "apply", "-f", str(manifest))
    name = f"static-{cluster.node}"
    assert applied.stdout.strip() == f"pod/{name} created"

    mirror = cluster.wait_running(name)[name]
    assert ANNOTATION_MIRROR in mirror["metadata"]["annotations"]
    assert mirror["spec"]["nodeName"] == cluster.node
    ids = cluster.running_ids(name)
    assert set(ids) == {"POD", "app"}
    (status,) = mirror["status"]["containerStatuses"]
    assert status["containerID"] == f"docker://{ids['app']}"
    first_uid = mirror["metadata"]["uid"]

    # Deleted at the cloud: kubectl's wait ends (the node removes that mirror), and the node makes a new one.
    cluster.kubectl("delete", "pod", name, "--timeout=60s", timeout_s=90)

    def recreated() -> dict | None:
        pod = cluster.cloud_pod(name)
        return pod if pod and pod["metadata"]["uid"] != first_uid and running_at_cloud(pod) else None

    again = wait_for(recreated, 60, f"mirror pod {name} recreated and Running")
    assert ANNOTATION_MIRROR in again["metadata"]["annotations"]
    assert not again["metadata"].get("deletionTimestamp")
    (status,) = again["status"]["containerStatuses"]
    assert status["containerID"] == f"docker://{ids['app']}"
    assert status["restartCount"] == 0
    assert cluster.running_ids(name) == ids  # the static pod's containers never restarted

    # The static pod deleted on the node: its containers and its mirror go.
    cluster.edgeworkers("pod", "delete", "static")
    cluster.wait_gone(name)
