"""`edgeworkers agent`: the whole edge in one process. With the cloud, a kubectl-applied pod runs and its status
reaches the cloud, as it does under the Procfile's full mode (the agent with --no-worker beside `edgeworkers worker`); SIGTERM stops it cleanly, a task in flight included (finished and acknowledged, not redelivered),
as it stops `edgeworkers worker` with one process (``start_worker`` runs both)."""
from __future__ import annotations

import os
import signal

from edgeworkers.pods import desired
from edgeworkers.runtime import labels
from tests.integration.lite.conftest import LiteCluster
from tests.integration.loop.conftest import busybox_pod
from tests.integration.queue.queuekit import busybox_pod as local_pod
from tests.integration.queue.queuekit import node_containers, queues_drained, running_names
from tests.integration.statuses import pod_status
from tests.polling import wait_for

STOP_TIMEOUT_S = 30


def stop_cleanly(agent) -> str:
    """SIGTERM the agent or worker (its process only); its output once it exited with 0."""
    os.kill(agent.process.pid, signal.SIGTERM)
    assert agent.process.wait(STOP_TIMEOUT_S) == 0, agent.output()[-3000:]
    output = agent.output()
    assert "Worker has been shut down" in output, output[-3000:]
    if "agent is ready" in output:
        assert "agent stopped" in output, output[-3000:]
    assert "Traceback" not in output, output
    return output


def test_kubectl_apply_runs_the_pod_under_the_lite_agent_and_its_status_reaches_the_cloud(
    lite_cluster: LiteCluster,
) -> None:
    lite_cluster.apply(busybox_pod("lite", "echo hello from the lite agent; sleep 3600"))

    pod = lite_cluster.wait_running("lite")["lite"]
    assert pod["spec"]["nodeName"] == lite_cluster.node
    ids = lite_cluster.running_ids("lite")
    assert set(ids) == {"POD", "app"}
    assert pod["status"]["containerStatuses"][0]["containerID"] == f"docker://{ids['app']}"
    row = lite_cluster.kubectl("get", "pod", "lite", "--no-headers").stdout.split()
    assert row[:3] == ["lite", "1/1", "Running"]
    logs = wait_for(lambda: lite_cluster.kubectl("logs", "lite", check=False).stdout, 10, "kubectl logs lite")
    assert logs == "hello from the lite agent\n"  # the node endpoint, in the same process

    deleted = lite_cluster.kubectl("delete", "pod", "lite", "--timeout=60s", timeout_s=90)
    assert deleted.stdout.strip() == 'pod "lite" deleted'
    assert lite_cluster.containers("lite") == []

    stop_cleanly(lite_cluster.worker)


def test_the_procfiles_full_mode_runs_a_kubectl_pod_with_the_agent_beside_a_worker_process(
    full_cluster: LiteCluster,
) -> None:
    full_cluster.apply(busybox_pod("full", "echo hello from the worker; sleep 3600"))

    assert set(full_cluster.wait_running("full")) == {"full"}
    assert set(full_cluster.running_ids("full")) == {"POD", "app"}
    logs = wait_for(lambda: full_cluster.kubectl("logs", "full", check=False).stdout, 10, "kubectl logs full")
    assert logs == "hello from the worker\n"
    agent_log = full_cluster.bridge_log.read_text(errors="replace")  # no consumer of the queues but the worker's
    assert "no worker (edgeworkers worker)" in agent_log and "Worker process is ready" not in agent_log

    deleted = full_cluster.kubectl("delete", "pod", "full", "--timeout=60s", timeout_s=90)
    assert deleted.stdout.strip() == 'pod "full" deleted'
    assert full_cluster.containers("full") == []


def test_sigterm_stops_an_idle_agent_cleanly(start_worker) -> None:
    agent = start_worker(threads=2)  # no cloud: an agent's bridge waits for credentials meanwhile

    stop_cleanly(agent)


def test_sigterm_lets_the_task_in_flight_finish_and_acknowledges_it(
    start_worker, store, send, real_redis, docker_client, node_name
) -> None:
    agent = start_worker(threads=2, module="slow_actors", env={"SLOW_CREATE_S": "3"})
    desired.apply_pod(store, send, local_pod("finisher"))
    wait_for(lambda: running_names(node_containers(docker_client, node_name, "finisher")) == {"POD"}, 60, "the sandbox")

    stop_cleanly(agent)  # mid-add: the app container is still being created

    assert running_names(node_containers(docker_client, node_name, "finisher")) == {"POD", "app"}
    assert pod_status(store, "default/finisher")["phase"] == "Running"
    assert queues_drained(real_redis)  # acknowledged: nothing left to redeliver


def test_a_crashing_container_under_the_lite_agent_is_restarted_and_only_its_last_dead_instance_kept(
    edge_cluster: LiteCluster,
) -> None:
    """The agent's PLEG sees each exit and its worker restarts the container (back-off shortened), pruning the dead
    instances beyond the last, which kubelet keeps too (MaxPerPodContainer=1) and the 200-operation race tests allow."""
    edge_cluster.extra_env.update({"EDGEWORKERS_BACKOFF_INITIAL_S": "1", "EDGEWORKERS_BACKOFF_MAX_S": "2"})
    edge_cluster.start_agent()
    edge_cluster.apply(busybox_pod("crashy", "exit 1"))

    def restarted_with_one_dead_instance() -> bool:
        apps = [c for c in edge_cluster.containers("crashy") if c.labels.get(labels.CONTAINER_NAME) == "app"]
        restarts = max((int(c.labels.get(labels.RESTART_COUNT, "0")) for c in apps), default=0)
        return restarts >= 3 and sum(c.status == "exited" for c in apps) == 1

    wait_for(restarted_with_one_dead_instance, 90, "three restarts and one dead instance kept")
