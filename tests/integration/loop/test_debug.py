"""`kubectl debug` with the real kubectl (issue #23): an ephemeral container added to a running pod runs in the pod's
network namespace and its target's PID namespace, shows in ephemeralContainerStatuses and `kubectl logs`, is never
restarted, and `kubectl debug -i` attaches to it (stdin piped). Modelled on kube's node e2e "Ephemeral Containers"
test (test/e2e/common/node/ephemeral_containers.go)."""
from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any

from tests.integration.loop.conftest import Cluster, busybox_pod

PULL = "--image-pull-policy=IfNotPresent"  # the local busybox: no registry is needed


def ephemeral_state(pod: dict[str, Any], name: str) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
    return next((s.get("state") or {} for s in statuses if s.get("name") == name), {})


def test_kubectl_debug_runs_an_ephemeral_container_in_the_pod_and_attaches_to_it(cluster: Cluster) -> None:
    cluster.apply(busybox_pod("target", "httpd -f -p 8080"))
    before = cluster.wait_running("target")["target"]
    app_id = before["status"]["containerStatuses"][0]["containerID"]

    # Non-interactive: the command's output reaches `kubectl logs`; it sees the target's processes and the pod's
    # network (the app's port on the pod's loopback).
    script = "ps -o args; wget -qO- -T 5 http://127.0.0.1:8080/ >/dev/null 2>&1 && echo served || echo refused; echo hi"
    added = cluster.kubectl("debug", "target", "--image=busybox", PULL, "-c", "debugger", "--target=app", "--",
                            "sh", "-c", script)
    assert added.returncode == 0, added.stderr
    done = cluster.wait_pod("target", lambda p: "terminated" in ephemeral_state(p, "debugger"), 60,
                            "the debugger to run and exit")
    assert ephemeral_state(done, "debugger")["terminated"]["exitCode"] == 0
    logs = cluster.kubectl("logs", "target", "-c", "debugger").stdout
    assert "httpd -f -p 8080" in logs and "served" in logs and logs.endswith("hi\n"), logs
    [status] = done["status"]["ephemeralContainerStatuses"]
    assert status["ready"] is False and status["restartCount"] == 0 and status["image"] == "busybox"
    assert done["status"]["containerStatuses"][0]["containerID"] == app_id  # the app was not restarted
    assert done["status"]["phase"] == "Running"
    assert len([c for c in cluster.containers("target") if c.labels.get("io.edgeworkers.container.name") ==
                "debugger"]) == 1  # exited and not started again

    # Interactive: kubectl waits for the container to run, then attaches with the piped stdin.
    attached = cluster.kubectl("debug", "-i", "target", "--image=busybox", PULL, "-c", "shell", "--target=app",
                               "--", "sh", input="echo attached-$((40 + 2)); ps -o args | grep -c httpd; exit 3\n",
                               check=False, timeout_s=90)
    assert "attached-42" in attached.stdout, attached.stdout + attached.stderr
    ended = cluster.wait_pod("target", lambda p: "terminated" in ephemeral_state(p, "shell"), 60, "the shell to end")
    assert ephemeral_state(ended, "shell")["terminated"]["exitCode"] == 3

    # `kubectl debug -it`: a shell on a terminal (`script` gives kubectl one), fed a line, as an operator types it.
    command = shlex.join(cluster.cloud.kubectl_args("debug", "-it", "target", "--image=busybox", PULL, "-c", "tty",
                                                    "--target=app", "--", "sh"))
    tty = subprocess.run(["script", "-qec", command, "/dev/null"], input="tty; echo typed-$((6 * 7)); exit\n",
                         capture_output=True, text=True, timeout=90, env={**os.environ, **cluster.cloud.env},
                         check=False)
    assert "typed-42" in tty.stdout and "/dev/pts/" in tty.stdout, tty.stdout + tty.stderr

    # What the ephemeral containers' spec holds, as kube shows it.
    spec = cluster.cloud_pod("target")["spec"]["ephemeralContainers"]
    assert [(c["name"], c.get("targetContainerName"), c.get("stdin", False), c.get("tty", False)) for c in spec] == [
        ("debugger", "app", False, False), ("shell", "app", True, False), ("tty", "app", True, True)]
