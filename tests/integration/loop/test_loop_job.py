"""Jobs at the cloud, run to their end by a real edge node: completions with parallelism, the backoff limit, logs, and
the TTL after finishing, driven with the real kubectl."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.integration.loop.conftest import Cluster
from tests.polling import wait_for

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, command: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox", "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
    template = {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": template, **spec}}


@contextmanager
def applied(cluster: Cluster, *jobs: dict[str, Any]) -> Iterator[None]:
    """The jobs applied with kubectl, deleted (their pods with them) after, whatever the test did."""
    cluster.apply(*jobs)
    try:
        yield
    finally:
        for one in jobs:
            cluster.kubectl("delete", "job", one["metadata"]["name"], "--ignore-not-found", "--wait=false")


def job_pods(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    return [p for p in cluster.cloud_pods().values()
            if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == name]


def condition(cluster: Cluster, name: str, type_: str) -> dict[str, Any] | None:
    found = cluster.cloud.api.get(f"{JOBS}/{name}")
    return next((c for c in (found.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def test_job_with_parallelism_completes_never_over_parallelism(cluster: Cluster) -> None:
    with applied(cluster, job("five", "echo done-$HOSTNAME; sleep 1", completions=5, parallelism=2)):
        most = 0

        def complete() -> bool:
            nonlocal most
            active = [p for p in job_pods(cluster, "five") if p["status"].get("phase") not in ("Succeeded", "Failed")
                      and not p["metadata"].get("deletionTimestamp")]
            most = max(most, len(active))
            return condition(cluster, "five", "Complete") is not None

        wait_for(complete, 180, "job five Complete", interval_s=0.2)
        assert most <= 2
        cluster.kubectl("wait", "--for=condition=complete", "job/five", "--timeout=30s")
        status = cluster.cloud.api.get(f"{JOBS}/five")["status"]
        assert status["succeeded"] == 5 and "failed" not in status
        assert condition(cluster, "five", "SuccessCriteriaMet")["status"] == "True"
        table = cluster.kubectl("get", "job", "five").stdout.split()
        assert table[:5] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"] and table[6:8] == ["Complete", "5/5"]
        assert "done-five-" in cluster.kubectl("logs", "job/five").stdout


def test_job_whose_pod_fails_stops_at_backoff_limit_and_ttl_deletes_it(cluster: Cluster) -> None:
    with applied(cluster, job("broken", "echo trying; exit 1", backoffLimit=1, ttlSecondsAfterFinished=5)):
        failed = wait_for(lambda: condition(cluster, "broken", "Failed"), 120, "job broken Failed")
        assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
        assert cluster.cloud.api.get(f"{JOBS}/broken")["status"]["failed"] == 2  # the first try and one retry
        events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=broken").stdout
        assert "BackoffLimitExceeded" in events and "SuccessfulCreate" in events
        assert "trying" in cluster.kubectl("logs", "job/broken").stdout
        wait_for(lambda: "broken" not in cluster.kubectl("get", "jobs", "-o", "name").stdout, 60,
                 "job broken deleted after its TTL")
        wait_for(lambda: not job_pods(cluster, "broken"), 60, "the job's pods gone")
