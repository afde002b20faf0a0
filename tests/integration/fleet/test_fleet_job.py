"""Jobs on three real edge nodes with the real kubectl: five completions two at a time complete across the nodes,
never more than two active at once; a Job whose pod exits 1 stops Failed with ``BackoffLimitExceeded`` after
backoffLimit + 1 failed pods. Both run at once (the failing one waits out the controller's 10 s pod back-off)."""
from __future__ import annotations

import time
from typing import Any

from tests.integration.fleet.conftest import Fleet
from tests.integration.loop.test_loop_job import JOBS, applied, job
from tests.polling import wait_for

COMPLETIONS, PARALLELISM, BACKOFF_LIMIT = 5, 2, 1


def job_pods(fleet: Fleet, name: str) -> list[dict[str, Any]]:
    listed = fleet.cloud.api.get("/api/v1/namespaces/default/pods", {"labelSelector": f"job-name={name}"})
    return listed.get("items") or []


def active(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods the Job controller counts active: neither finished nor being deleted."""
    return [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


def condition(fleet: Fleet, name: str, type_: str) -> dict[str, Any] | None:
    found = fleet.cloud.api.get(f"{JOBS}/{name}")
    return next((c for c in (found.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def test_a_parallel_job_completes_across_the_nodes_and_a_failing_one_stops_at_its_backoff_limit(fleet: Fleet) -> None:
    five = job("five", "sleep 2", completions=COMPLETIONS, parallelism=PARALLELISM)
    broken = job("broken", "exit 1", backoffLimit=BACKOFF_LIMIT)
    with applied(fleet, five, broken):  # a Fleet has the apply and kubectl of the Cluster it asks for
        waiter = fleet.cloud.kubectl_popen("wait", "--for=condition=complete", "job/five", "--timeout=120s")
        most = 0
        try:
            while waiter.poll() is None:  # the active pods, often, until kubectl sees the Job complete
                most = max(most, len(active(job_pods(fleet, "five"))))
                time.sleep(0.1)
            out, err = waiter.communicate(timeout=10)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        assert waiter.returncode == 0, f"kubectl wait failed:\n{out}{err}"
        assert out.strip() == "job.batch/five condition met"
        assert most == PARALLELISM, most
        status = fleet.cloud.api.get(f"{JOBS}/five")["status"]
        assert status["succeeded"] == COMPLETIONS and "failed" not in status and not status.get("active")
        pods = job_pods(fleet, "five")
        assert [p["status"]["phase"] for p in pods] == ["Succeeded"] * COMPLETIONS
        assert len({p["spec"]["nodeName"] for p in pods}) > 1, [p["spec"]["nodeName"] for p in pods]  # across nodes

        failed = wait_for(lambda: condition(fleet, "broken", "Failed"), 90, "job broken Failed")
        assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
        assert fleet.cloud.api.get(f"{JOBS}/broken")["status"]["failed"] == BACKOFF_LIMIT + 1
        pods = job_pods(fleet, "broken")
        assert [p["status"]["phase"] for p in pods] == ["Failed"] * (BACKOFF_LIMIT + 1)
        assert condition(fleet, "broken", "Complete") is None
        assert "BackoffLimitExceeded" in fleet.kubectl(
            "get", "events", "--field-selector", "involvedObject.name=broken").stdout
