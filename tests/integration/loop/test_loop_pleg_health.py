"""PLEG health in the node's Ready condition (kubelet's relistThreshold): a scheduler that stops relisting makes the
node not Ready at the cloud, with kubelet's message; Ready again once it relists."""
from __future__ import annotations

from tests.integration.loop.conftest import Cluster
from tests.polling import wait_for

THRESHOLD_S = 4  # kubelet's is 3 min; the node's status goes up every 10 s


def ready_condition(cluster: Cluster) -> dict:
    conditions = (cluster.node_object().get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def test_a_stalled_pleg_makes_the_node_not_ready_until_it_relists_again(cluster: Cluster) -> None:
    cluster.extra_env["EDGEWORKERS_PLEG_RELIST_THRESHOLD_S"] = str(THRESHOLD_S)
    cluster.restart_bridge()  # the node's status reads the threshold
    assert ready_condition(cluster).get("status") == "True"

    cluster.stop_scheduler()
    stalled = wait_for(lambda: (c := ready_condition(cluster)).get("status") == "False" and c, 45,
                       "the node not Ready for its PLEG")
    assert stalled["message"].startswith("PLEG is not healthy: pleg was last seen active")
    assert f"threshold is {THRESHOLD_S}s" in stalled["message"]

    cluster.start_scheduler()
    wait_for(lambda: ready_condition(cluster).get("status") == "True", 45, "the node Ready once the PLEG relists")
