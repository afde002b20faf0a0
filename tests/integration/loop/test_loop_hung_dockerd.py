"""A hung dockerd (it accepts connections, never answers): the node's heartbeat asks the engine's status with a short
timeout, so the cloud shows the node ``Ready=False`` with kubelet's reason and the runtime's message within seconds,
while its Lease keeps being renewed (never ``Unknown``); Ready again once the engine answers.

The bridge alone is pointed at a unix socket the test serves (``tests/hung_engine.py``); the worker and the scheduler
keep the real dockerd."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.hung_engine import serving_engine
from tests.integration.cloud.conftest import EDGEWORKERS, start_process
from tests.integration.loop.conftest import LEASES, Cluster, hold_for
from tests.polling import wait_for

STATUS_TIMEOUT_S = 2
HEARTBEAT_S = 3
# One heartbeat interval, one status timeout, the cloud's round trips: well under the cloud's 40 s grace period.
NOT_READY_WITHIN_S = HEARTBEAT_S + STATUS_TIMEOUT_S + 10


def ready_condition(cluster: Cluster) -> dict[str, Any]:
    conditions = (cluster.node_object().get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def lease_renewed(cluster: Cluster) -> str:
    return (cluster.cloud.api.get(f"{LEASES}/{cluster.node}").get("spec") or {}).get("renewTime") or ""


def test_a_hung_dockerd_makes_the_node_not_ready_with_the_runtimes_reason(cluster: Cluster) -> None:
    cluster.extra_env["EDGEWORKERS_NODE_STATUS_UPDATE_FREQUENCY_S"] = str(HEARTBEAT_S)
    cluster.extra_env["EDGEWORKERS_RUNTIME_STATUS_TIMEOUT_S"] = str(STATUS_TIMEOUT_S)
    with serving_engine(hung=True) as engine:
        cluster.stop_bridge()
        cluster.extra_env["EDGEWORKERS_DOCKER_HOST"] = f"unix://{engine.server_address}"
        cluster.bridge = start_process([EDGEWORKERS, "node", "serve"], cluster.env(), cluster.bridge_log)

        down = wait_for(lambda: (c := ready_condition(cluster)).get("status") == "False" and c, NOT_READY_WITHIN_S,
                        "the node Ready=False for its hung engine", interval_s=0.5)
        assert down["reason"] == "KubeletNotReady"
        assert down["message"].startswith("container runtime is down: ")
        assert "Docker engine unavailable" in down["message"] and "timed out" in down["message"]

        # The heartbeat goes on: the Lease is renewed and the node never turns Unknown.
        first = lease_renewed(cluster)
        wait_for(lambda: lease_renewed(cluster) > first, HEARTBEAT_S + STATUS_TIMEOUT_S + 10,
                 "the Lease renewed while the engine hangs", interval_s=0.5)
        hold_for(lambda: ready_condition(cluster).get("status") == "False", HEARTBEAT_S * 2, "Ready=False")
        heartbeat = datetime.fromisoformat(ready_condition(cluster)["lastHeartbeatTime"])
        assert datetime.fromisoformat(down["lastHeartbeatTime"]) < heartbeat

    cluster.stop_bridge()
    del cluster.extra_env["EDGEWORKERS_DOCKER_HOST"]
    cluster.start_bridge()  # waits for the node Ready again
    assert ready_condition(cluster)["reason"] == "KubeletReady"
