"""Image pull secrets on the real loop (issue #23): a pod pulls from a registry that requires a login with the pull
secret `kubectl create secret docker-registry` made, and without it (or with a wrong password) waits in
`ErrImagePull` naming the registry's cause, then `ImagePullBackOff`; no password reaches a status, an event or a log.
Modelled on kube's node conformance test "should be able to pull from private registry with secret"
(test/e2e/common/node/runtime.go)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.loop.conftest import Cluster
from tests.integration.registry import private_registry
from tests.polling import wait_for


def private_pod(name: str, image: str, secret: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}
    if secret:
        spec["imagePullSecrets"] = [{"name": secret}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def waiting(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return (statuses[0].get("state") or {}).get("waiting") or {}


def pull_failure(cluster: Cluster, name: str) -> str | None:
    """The message of the pod's `Failed` event about pulling its image, if one is recorded yet."""
    events = json.loads(cluster.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                                        "-o", "json").stdout)["items"]
    return next((e["message"] for e in events if e["reason"] == "Failed" and "pull" in e["message"]), None)


def test_a_private_image_pulls_with_the_pods_pull_secret_only(cluster: Cluster, tmp_path: Path) -> None:
    repositories = [f"{cluster.node}/{name}" for name in ("anonymous", "wrong", "private")]
    with private_registry(tmp_path / "registry", cluster.docker, repositories) as registry:
        wrong_password = "not-" + registry.password
        for secret, password in (("regcred", registry.password), ("wrongcred", wrong_password)):
            cluster.kubectl("create", "secret", "docker-registry", secret, f"--docker-server={registry.address}",
                            f"--docker-username={registry.username}", f"--docker-password={password}")
        anonymous, wrong, private = (registry.image(r) for r in repositories)
        cluster.apply(private_pod("anonymous", anonymous), private_pod("wrong", wrong, "wrongcred"),
                      private_pod("private", private, "regcred"))

        running = cluster.wait_running("private")["private"]
        assert running["status"]["containerStatuses"][0]["image"] == private

        # ErrImagePull is the status between a failed pull and the back-off: the outbox may send only the newer
        # ImagePullBackOff, so the pull's error is read from its `Failed` event, which kubelet records each time.
        for name, cause in (("anonymous", "no basic auth credentials"), ("wrong", "unauthorized: authentication required")):
            cluster.wait_pod(name, lambda p: waiting(p).get("reason") in ("ErrImagePull", "ImagePullBackOff"), 60,
                             f"{name}: ErrImagePull or ImagePullBackOff")
            message = wait_for(lambda n=name: pull_failure(cluster, n), 60, f"{name}: the Failed pull event")
            assert cause in message, message
        cluster.wait_pod("anonymous", lambda p: waiting(p).get("reason") == "ImagePullBackOff", 60,
                         "anonymous: ImagePullBackOff")
        described = cluster.kubectl("describe", "pod", "wrong").stdout
        assert "Failed to pull image" in described and "unauthorized" in described, described

        everything = "".join([json.dumps(cluster.cloud_pods()), described,
                              cluster.kubectl("get", "events", "-o", "json").stdout,
                              cluster.worker_log.read_text(errors="replace"),
                              cluster.bridge_log.read_text(errors="replace")])
        for password in (registry.password, wrong_password):
            assert password not in everything
        cluster.kubectl("delete", "pod", "anonymous", "wrong", "private", "--wait=true", timeout_s=120)
        cluster.kubectl("delete", "secret", "regcred", "wrongcred")
