"""A node away until its credentials expired: it says what brings it back, the documented command does, and its
pods run on untouched throughout (their containers' IDs unchanged)."""
from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
from cryptography import x509

from tests.integration.cloud.conftest import EDGEWORKERS, start_process
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for

LIFETIME_S = 40


@pytest.fixture
def cloud_overrides() -> dict[str, str]:
    return {"EDGEWORKERS_CREDENTIAL_LIFETIME_S": str(LIFETIME_S)}


def test_an_expired_node_gets_the_documented_error_and_recovers_with_the_documented_command(
        own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.apply(busybox_pod("keeper"))
    cluster.wait_running("keeper")
    ids = cluster.running_ids("keeper")
    cluster.stop_bridge()  # the node goes away (its worker and pods stay)
    node_crt = cluster.cloud.data_dir / "nodes" / cluster.node / "node.crt"
    expires = x509.load_pem_x509_certificate(node_crt.read_bytes()).not_valid_after_utc
    wait_for(lambda: datetime.now(UTC) > expires, LIFETIME_S + 10, "the node's credentials to expire")

    cluster.bridge = start_process([EDGEWORKERS, "node", "serve"], cluster.env(), cluster.bridge_log)
    wait_for(lambda: "this node's credentials expired at" in cluster.bridge_log.read_text(), 30,
             "the node's error about its expired credentials")
    error = next(line for line in cluster.bridge_log.read_text().splitlines() if "credentials expired at" in line)
    assert f"edgeworkers cloud issue-node-credentials {cluster.node}" in error and "pods keep running" in error
    assert cluster.running_ids("keeper") == ids

    since = datetime.now(UTC).replace(microsecond=0)
    subprocess.run([EDGEWORKERS, "cloud", "issue-node-credentials", cluster.node], env=cluster.cloud.env, check=True,
                   capture_output=True, timeout=30)
    # Taken without a restart: the node heartbeats again and the cloud reads its logs through its new certificate.
    wait_for(lambda: cluster.heartbeat_since(since) and cluster.bridge_healthy(), 60,
             "the node back with its new credentials")
    assert cluster.bridge.poll() is None
    assert cluster.running_ids("keeper") == ids
    logs = cluster.kubectl("logs", "keeper", check=False)
    assert logs.returncode == 0, logs.stderr
    assert cluster.wait_running("keeper")
