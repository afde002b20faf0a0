"""Volumes, env and admission through the whole loop: objects applied with the real kubectl at the cloud (or with
`edgeworkers pod apply` on the node), the bridge bringing configmaps and secrets to the node, a worker running busybox
pods that print what they see."""
from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import yaml

from edgeworkers.metamanager.store import POD
from tests.integration.cloud.conftest import EDGEWORKERS
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for

SEE = ("ls /cfg; stat -L -c '%n %a' /items/conf/app.conf; grep ' /secret ' /proc/mounts; cat /secret/password; echo; "
       "cat /info/labels; echo; cat /shared/from-init; echo \"G=$GREETING P=$PW M=$CFG_mode N=$NAME\"; "
       "while true; do echo \"now=$(cat /cfg/greeting)\"; sleep 1; done")


def configmap(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def secret(name: str, data: dict[str, bytes]) -> dict:
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}, "data": encoded}


def logs(cluster: Cluster, pod: str, wanted: str, timeout_s: float = 30) -> str:
    def seen() -> str | None:
        out = cluster.kubectl("logs", pod, check=False).stdout
        return out if wanted in out else None

    return wait_for(seen, timeout_s, f"{wanted!r} in the log of {pod}")


def waiting_message(pod: dict, container: str = "app") -> str:
    status = pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    state = next((s.get("state") or {} for s in statuses if s["name"] == container), {})
    return (state.get("waiting") or {}).get("reason", "") + ": " + (state.get("waiting") or {}).get("message", "")


def test_configmap_secret_downward_env_and_empty_dir_through_kubectl(cluster: Cluster) -> None:
    cfg, creds = f"cfg-{cluster.node}", f"creds-{cluster.node}"
    seer = busybox_pod("seer", SEE, node=cluster.node, labels=None)
    seer["metadata"]["labels"] = {"app": "seer", "tier": "edge"}
    app = seer["spec"]["containers"][0]
    app["volumeMounts"] = [{"name": n, "mountPath": f"/{n}"} for n in ("cfg", "items", "secret", "info", "shared")]
    app["env"] = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": cfg, "key": "greeting"}}},
                  {"name": "PW", "valueFrom": {"secretKeyRef": {"name": creds, "key": "password"}}},
                  {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    app["envFrom"] = [{"configMapRef": {"name": cfg}, "prefix": "CFG_"}]
    seer["spec"]["initContainers"] = [{"name": "init", "image": "busybox", "imagePullPolicy": "Never",
                                       "command": ["sh", "-c", "echo filled-by-init > /shared/from-init"],
                                       "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]
    seer["spec"]["volumes"] = [
        {"name": "cfg", "configMap": {"name": cfg}},
        {"name": "items", "configMap": {"name": cfg, "defaultMode": 0o440,
                                        "items": [{"key": "greeting", "path": "conf/app.conf", "mode": 0o600}]}},
        {"name": "secret", "secret": {"secretName": creds, "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "shared", "emptyDir": {}},
    ]  # fmt: skip
    # The pod first, its configmap later: it waits (CreateContainerConfigError, naming it), then starts by itself.
    cluster.apply(secret(creds, {"password": b"s3cret"}), seer)
    waiting = cluster.wait_pod("seer", lambda p: "CreateContainerConfigError" in waiting_message(p, "init"), 60,
                               "seer waiting for its configmap")
    assert waiting_message(waiting, "init") == f'CreateContainerConfigError: configmap "{cfg}" not found'
    assert cluster.running_ids("seer") == {}  # not even the sandbox
    cluster.apply(configmap(cfg, {"greeting": "hello", "mode": "edge"}))
    cluster.wait_running("seer", timeout_s=90)

    seen = logs(cluster, "seer", "now=hello")
    assert seen.startswith("greeting\nmode\n")
    assert "/items/conf/app.conf 600\n" in seen
    assert " /secret tmpfs ro," in seen and "s3cret\n" in seen
    assert 'app="seer"\ntier="edge"\n' in seen
    assert "filled-by-init\n" in seen
    assert "G=hello P=s3cret M=edge N=seer\n" in seen

    # A change at the cloud reaches the mounted file (the bridge's refresh, then a sync), the container untouched.
    ids = cluster.running_ids("seer")
    cluster.apply(configmap(cfg, {"greeting": "bonjour", "mode": "edge"}))
    logs(cluster, "seer", "now=bonjour", timeout_s=45)
    assert cluster.running_ids("seer") == ids
    assert "s3cret" not in cluster.bridge_log.read_text() + cluster.worker_log.read_text()
    cluster.kubectl("delete", "configmap", cfg, "--wait=false")
    cluster.kubectl("delete", "secret", creds, "--wait=false")


def test_the_node_refuses_what_would_hand_it_over_and_what_escapes(cluster: Cluster) -> None:
    sock = busybox_pod("docker-sock", node=cluster.node)
    sock["spec"]["volumes"] = [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]
    sock["spec"]["containers"][0]["volumeMounts"] = [{"name": "sock", "mountPath": "/var/run/docker.sock"}]
    # Not a denied path, but no entry of the allowlist (empty by default) holds it.
    outside = busybox_pod("outside", node=cluster.node)
    outside["spec"]["volumes"] = [{"name": "data", "hostPath": {"path": "/srv/edgeworkers-test"}}]
    outside["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data", "readOnly": True}]
    privileged = busybox_pod("privileged", node=cluster.node)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    # A container plants a symlink to the host's root in a shared emptyDir (an init container, so it is there first);
    # the next one's subPath through it is refused.
    planter = busybox_pod("planter", "sleep 3600", node=cluster.node)
    planter["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}}]
    victim = planter["spec"]["containers"][0]
    victim["name"] = "victim"
    victim["volumeMounts"] = [{"name": "shared", "mountPath": "/host", "subPath": "root/etc"}]
    planter["spec"]["initContainers"] = [{
        "name": "plant", "image": "busybox", "imagePullPolicy": "Never", "command": ["ln", "-s", "/", "/shared/root"],
        "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]
    cluster.apply(sock, outside, privileged, planter)

    for name, wanted in (("docker-sock", 'hostPath "/var/run/docker.sock" of volume "sock" is not allowed: it is, '
                                         "lies under or holds /var/run/docker.sock "
                                         "(EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS)"),
                         ("outside", 'hostPath "/srv/edgeworkers-test" of volume "data" is not allowed: it is not '
                                     "under a pathPrefix of EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS"),
                         ("privileged", 'container "app": privileged is not allowed')):
        cluster.wait_pod(name, lambda p: (p.get("status") or {}).get("phase") == "Failed", 60, f"{name} refused")
        described = cluster.kubectl("describe", "pod", name).stdout
        assert re.search(r"^Status:\s+Failed$", described, re.M), described
        assert re.search(r"^Reason:\s+Forbidden$", described, re.M), described
        assert wanted in described, described
        assert cluster.containers(name) == []  # nothing of it ran
        # and a Warning event says the same (recorded through the outbox, so it may come a moment later)
        wait_for(lambda n=name: re.search(r"Warning\s+Forbidden\s+.*Pod refused by the node's admission",
                                          cluster.kubectl("describe", "pod", n).stdout), 30, f"{name}'s event")

    def victim_refused(pod: dict) -> bool:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return any("leads outside its volume" in str(s.get("state")) for s in statuses if s["name"] == "victim")

    planted = cluster.wait_pod("planter", victim_refused, 60, "the victim's subPath refused")
    assert "subPath 'root/etc' leads outside its volume" in waiting_message(planted, "victim")
    # kubectl describe shows a waiting container's reason (its message would be in an event)
    assert re.search(r"Reason:\s+CreateContainerConfigError", cluster.kubectl("describe", "pod", "planter").stdout)
    assert "victim" not in cluster.running_ids("planter")
    assert not (cluster.config.data_dir / "etc").exists()

    assert not Path("/srv/edgeworkers-test").exists()

    # A traversal in an item path never reaches the node: the cloud refuses it as the API server does.
    escape = busybox_pod("escape", node=cluster.node)
    escape["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "x", "items": [{"key": "k",
                                                                                    "path": "../../etc/evil"}]}}]
    refused = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(escape), check=False)
    assert refused.returncode != 0 and "must not contain '..'" in refused.stderr

    # A node-local pod (`edgeworkers pod apply`) whose uid is "..": refused at the door, before anything is stored or
    # made (its delete used to remove the agent's whole data directory; the sync refuses such a pod too: unit tests).
    data = cluster.config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    sentinel = data / "sentinel"
    sentinel.write_text("still here")
    pod = busybox_pod("dotdot", "sleep 3600")
    pod["metadata"]["uid"] = ".."
    pod["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    refused = subprocess.run([EDGEWORKERS, "pod", "apply", "-f", "-"], env=cluster.env(), input=yaml.safe_dump(pod),
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert "metadata.uid: Invalid value: \"..\"" in refused.stderr and "cannot be used as a path" in refused.stderr
    assert cluster.store.get(POD, "default", f"dotdot-{cluster.node}") is None
    assert cluster.containers(f"dotdot-{cluster.node}") == []
    assert sentinel.read_text() == "still here"


def test_a_host_path_allowed_read_only_through_kubectl(cluster: Cluster, tmp_path: Path) -> None:
    """The README's example: a log directory allowed read-only; a pod reads it, a writable mount of it is refused."""
    logs_dir = tmp_path / "var-log"
    logs_dir.mkdir()
    (logs_dir / "app.log").write_text("a line the host wrote\n")
    cluster.extra_env["EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS"] = json.dumps(
        [{"pathPrefix": str(logs_dir), "readOnly": True}])
    cluster.restart_worker()  # the worker admits pods and sets their volumes up
    reader = busybox_pod("log-reader", "cat /logs/app.log; touch /logs/new || echo REFUSED; sleep 3600",
                         node=cluster.node)
    reader["spec"]["volumes"] = [{"name": "logs", "hostPath": {"path": str(logs_dir), "type": "Directory"}}]
    reader["spec"]["containers"][0]["volumeMounts"] = [{"name": "logs", "mountPath": "/logs", "readOnly": True}]
    writer = yaml.safe_load(yaml.safe_dump(reader))
    writer["metadata"]["name"] = "log-writer"
    writer["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False
    cluster.apply(reader, writer)

    cluster.wait_running("log-reader")
    seen = logs(cluster, "log-reader", "REFUSED")
    assert "a line the host wrote\n" in seen and "Read-only file system" in seen
    assert not (logs_dir / "new").exists()
    refused = cluster.wait_pod("log-writer", lambda p: (p.get("status") or {}).get("phase") == "Failed", 60,
                               "log-writer refused")
    assert refused["status"]["reason"] == "Forbidden"
    assert f'container "app" mounts hostPath "{logs_dir}" of volume "logs" writable: ' \
           "EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS allows it read-only only" in refused["status"]["message"]
