"""The agent's Redis loses its data under a running node (as a FLUSHALL, or a restart without persistence, would): the
bridge notices MetaManager's epoch gone and lists the node's pods again, the orphan cleanup (every second here) waits
for that list, and every pod the cloud still wants keeps running untouched: same container IDs, same restart counts.
The node converges afterwards as before (a delete at the cloud stops its pod).

Only the test's own database is emptied, atomically, keeping its claim (``tests/conftest.py``)."""
from __future__ import annotations

import pytest

from edgeworkers.metamanager.epoch import Epoch
from edgeworkers.metamanager.store import POD
from tests.conftest import CLAIM_KEY
from tests.integration.loop.conftest import Cluster, busybox_pod, hold_for, running_at_cloud
from tests.polling import wait_for

PODS = ("keep-a", "keep-b")
# Every key of this database but the claim, in one step (what FLUSHDB does, without giving the database away).
WIPE = "for _, key in ipairs(redis.call('KEYS', '*')) do if key ~= ARGV[1] then redis.call('DEL', key) end end"


@pytest.fixture
def node_overrides() -> dict[str, str]:
    return {
        # An orphan cleanup trusting the emptied store would kill the pods at once (a grace period of 1 s).
        "EDGEWORKERS_ORPHAN_CLEANUP_PERIOD_S": "1",
        "EDGEWORKERS_DEFAULT_GRACE_PERIOD_S": "1",
        "EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK": "true",  # the pods need no network of their own
    }


def restart_counts(cluster: Cluster) -> dict[str, int]:
    pods = cluster.cloud_pods()
    return {name: pods[name]["status"]["containerStatuses"][0]["restartCount"] for name in PODS}


def test_redis_data_lost_under_a_running_node_converges_with_its_pods_untouched(own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.apply(*(busybox_pod(name, node=cluster.node, grace=0, hostNetwork=True) for name in PODS))
    cluster.wait_running(*PODS)
    epoch = Epoch(cluster.redis)
    before = epoch.current()
    assert before is not None
    ids = {name: cluster.running_ids(name) for name in PODS}
    counts = restart_counts(cluster)

    cluster.redis.eval(WIPE, 0, CLAIM_KEY)
    assert cluster.store.keys(POD) == set()

    wait_for(lambda: epoch.current() not in (None, before) and cluster.store.keys(POD) == {f"default/{n}" for n in PODS},
             30, "the bridge to list the node's pods again", interval_s=0.2)
    untouched = lambda: {name: cluster.running_ids(name) for name in PODS} == ids  # noqa: E731
    assert untouched()
    # Through several orphan cleanups and the syncs the relist queued: nothing restarted, the cloud shows them Running.
    hold_for(untouched, 8, "every pod's containers running untouched")
    wait_for(lambda: all(running_at_cloud(cluster.cloud_pod(name)) for name in PODS), 30, "the pods Running")
    assert restart_counts(cluster) == counts
    assert "the agent's Redis lost its data" in cluster.bridge_log.read_text()

    cluster.kubectl("delete", "pod", "keep-b", "--wait=false")
    cluster.wait_gone("keep-b")
    assert cluster.running_ids("keep-a") == ids["keep-a"]
