"""The real kubectl 1.32 against `edgeworkers cloud serve`: pods, configmaps, secrets, errors.

No node is registered in this module's cloud, so a pod without ``nodeName`` stays unbound (Pending).
"""
from __future__ import annotations

import itertools
import json
import queue
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
import yaml

if TYPE_CHECKING:
    from conftest import Cloud


def pod_manifest(name: str, image: str = "busybox:1.28", labels: dict[str, str] | None = None,
                 node_name: str | None = None) -> str:
    spec: dict = {
        "containers": [{"name": "bb", "image": image, "command": ["sh", "-c", "sleep 3600"]}],
        "restartPolicy": "Always",
    }
    if node_name:
        spec["nodeName"] = node_name
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": spec,
    })


def get_json(cloud: Cloud, *args: str) -> dict:
    return json.loads(cloud.kubectl("get", *args, "-o", "json").stdout)


def test_apply_creates_then_patches_keeping_unchanged_fields(cloud: Cloud) -> None:
    created = cloud.kubectl("apply", "-f", "-", input=pod_manifest("web", labels={"app": "web"}))
    assert created.stdout.strip() == "pod/web created"
    # kubectl sends only the difference (a strategic merge patch naming container "bb"); the server must merge
    # the containers list by name, or `command`, absent from the patch, would be lost.
    changed = pod_manifest("web", image="busybox:1.36", labels={"app": "frontend", "tier": "front"})
    assert cloud.kubectl("apply", "-f", "-", input=changed).stdout.strip() == "pod/web configured"
    assert cloud.kubectl("apply", "-f", "-", input=changed).stdout.strip() == "pod/web unchanged"

    pod = get_json(cloud, "pod", "web")
    assert pod["metadata"]["labels"] == {"app": "frontend", "tier": "front"}
    container = pod["spec"]["containers"][0]
    assert container["image"] == "busybox:1.36"
    assert container["command"] == ["sh", "-c", "sleep 3600"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]


def test_server_side_apply_creates_and_updates(cloud: Cloud) -> None:
    first = cloud.kubectl("apply", "--server-side", "-f", "-", input=pod_manifest("ssa"))
    assert first.stdout.strip() == "pod/ssa serverside-applied"
    cloud.kubectl("apply", "--server-side", "-f", "-", input=pod_manifest("ssa", image="busybox:1.36"))

    pod = get_json(cloud, "pod", "ssa", "--show-managed-fields")
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert pod["spec"]["containers"][0]["command"] == ["sh", "-c", "sleep 3600"]
    managers = {(m["manager"], m["operation"]) for m in pod["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers


def test_get_pods_table_wide_and_yaml(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("lister"))

    table = cloud.kubectl("get", "pods").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = next(line.split() for line in table[1:] if line.startswith("lister "))
    assert row[:4] == ["lister", "0/1", "Pending", "0"]

    wide = cloud.kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    wide_row = next(line.split() for line in wide[1:] if line.startswith("lister "))
    assert wide_row[5:7] == ["<none>", "<none>"]

    listed = yaml.safe_load(cloud.kubectl("get", "pods", "-o", "yaml").stdout)
    assert listed["kind"] == "List"
    assert "lister" in {item["metadata"]["name"] for item in listed["items"]}
    assert cloud.kubectl("get", "pods", "-o", "name").stdout.count("pod/lister\n") == 1


def read_lines(stream) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def next_line_with(lines: queue.Queue[str], text: str, timeout_s: float = 15) -> str:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} within {timeout_s:g}s")


def test_get_watch_shows_a_change_made_by_another_kubectl(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("watched"))
    watcher = cloud.kubectl_popen("get", "pods", "-w")
    try:
        lines = read_lines(watcher.stdout)
        assert next_line_with(lines, "NAME").split()[:3] == ["NAME", "READY", "STATUS"]
        next_line_with(lines, "watched ")
        cloud.kubectl("apply", "-f", "-", input=pod_manifest("newcomer"))
        assert next_line_with(lines, "newcomer ").split()[:3] == ["newcomer", "0/1", "Pending"]
        cloud.kubectl("delete", "pod", "watched")
        next_line_with(lines, "watched ")  # the deletion shows as one more row
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_single_pod_watch_reports_the_next_change(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("single"))
    watcher = cloud.kubectl_popen("get", "pod", "single", "-w", "-o", "jsonpath={.metadata.labels.step}{'\\n'}")
    try:
        lines = read_lines(watcher.stdout)
        # kubectl drops the watch's first (synthetic) event, so a change made before its watch is open never
        # shows: change the label until one change does, then check that the next change arrives too.
        deadline = time.monotonic() + 15
        for attempt in itertools.count():
            assert time.monotonic() < deadline, "no change reached kubectl get -w"
            cloud.kubectl("label", "--overwrite", "pod", "single", f"step=try{attempt}")
            try:
                if lines.get(timeout=0.5).startswith("try"):
                    break
            except queue.Empty:
                continue
        cloud.kubectl("label", "--overwrite", "pod", "single", "step=final")
        assert next_line_with(lines, "final").strip() == "final"
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_describe_pod(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("described", image="busybox:1.36"))
    out = cloud.kubectl("describe", "pod", "described").stdout
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines()
              if ":" in line and not line.startswith(" ")}
    assert fields["Name"] == "described"
    assert fields["Namespace"] == "default"
    assert fields["Status"] == "Pending"
    assert re.search(r"^  bb:\n    Image:\s+busybox:1.36$", out, re.MULTILINE)
    assert re.search(r"^    Command:\n      sh\n      -c\n      sleep 3600$", out, re.MULTILINE)
    assert re.search(r"^  PodScheduled\s+False", out, re.MULTILINE)
    assert "Events:" in out


def test_delete_of_an_unbound_pod_returns_at_once(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("loose"))
    started = time.monotonic()
    assert cloud.kubectl("delete", "pod", "loose").stdout.strip() == 'pod "loose" deleted'
    assert time.monotonic() - started < 10
    assert cloud.pod("loose") is None


def test_delete_of_a_bound_pod_waits_for_the_node(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("bound", node_name="edge-far"))
    deleting = cloud.kubectl_popen("delete", "pod", "bound")
    try:
        pod = cloud.wait_for(lambda: (p := cloud.pod("bound")) and p["metadata"].get("deletionTimestamp") and p,
                       what="the deletionTimestamp")
        assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
        with pytest.raises(subprocess.TimeoutExpired):  # kubectl keeps waiting for the node's confirmation
            deleting.wait(timeout=1)
        cloud.api.delete("/api/v1/namespaces/default/pods/bound", {"gracePeriodSeconds": 0})  # as kubelet does
        out, err = deleting.communicate(timeout=30)
    finally:
        if deleting.poll() is None:
            deleting.kill()
    assert deleting.returncode == 0, err
    assert out.strip() == 'pod "bound" deleted'
    assert cloud.pod("bound") is None


def test_force_delete_removes_a_bound_pod_at_once(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("forced", node_name="edge-far"))
    cloud.kubectl("delete", "pod", "forced", "--grace-period=0", "--force")
    assert cloud.pod("forced") is None


def test_configmaps_and_secrets_from_literals(cloud: Cloud) -> None:
    assert cloud.kubectl("create", "configmap", "settings", "--from-literal=a=1", "--from-literal=b=two"
                         ).stdout.strip() == "configmap/settings created"
    assert cloud.kubectl("create", "secret", "generic", "creds", "--from-literal=user=admin"
                         ).stdout.strip() == "secret/creds created"

    assert get_json(cloud, "configmap", "settings")["data"] == {"a": "1", "b": "two"}
    secret = get_json(cloud, "secret", "creds")
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"user": "YWRtaW4="}

    lines = cloud.kubectl("get", "configmaps,secrets").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line and not line.startswith("NAME")}
    assert rows["configmap/settings"][1] == "2"
    assert rows["secret/creds"][1:3] == ["Opaque", "1"]
    headers = [line.split() for line in lines if line.startswith("NAME")]
    assert ["NAME", "DATA", "AGE"] in headers
    assert ["NAME", "TYPE", "DATA", "AGE"] in headers


def test_a_request_without_the_token_is_refused(cloud: Cloud) -> None:
    response = requests.get(f"https://127.0.0.1:{cloud.port}/api/v1/namespaces/default/pods",
                            verify=str(cloud.data_dir / "ca.crt"), timeout=10)
    assert response.status_code == 401
    assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_kubectl_with_a_wrong_token_must_log_in(cloud: Cloud, tmp_path: Path) -> None:
    config = yaml.safe_load(cloud.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-the-token"}
    anonymous = tmp_path / "anonymous.kubeconfig"
    anonymous.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={anonymous}", f"--cache-dir={tmp_path / 'cache'}", "get", "pods"],
        capture_output=True, text=True, timeout=60, env=cloud.env, check=False,
    )
    assert result.returncode != 0
    assert "error: You must be logged in to the server" in result.stderr


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda pod: pod["spec"]["containers"][0].update(name="Web_1"),
     'spec.containers[0].name: Invalid value: "Web_1": a lowercase RFC 1123 label must consist of'),
    (lambda pod: pod["spec"]["containers"][0].pop("image"), "spec.containers[0].image: Required value"),
])
def test_an_invalid_manifest_gets_the_kubernetes_message(cloud: Cloud, mutate, message: str) -> None:
    pod = yaml.safe_load(pod_manifest("invalid"))
    mutate(pod)
    result = cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert result.returncode != 0
    assert 'The Pod "invalid" is invalid: ' in result.stderr
    assert message in result.stderr
    assert cloud.pod("invalid") is None


def test_a_stale_update_is_a_conflict(cloud: Cloud, tmp_path: Path) -> None:
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("stale"))
    old = cloud.kubectl("get", "pod", "stale", "-o", "json").stdout
    cloud.kubectl("label", "pod", "stale", "moved=on")
    (tmp_path / "old.json").write_text(old)
    result = cloud.kubectl("replace", "-f", str(tmp_path / "old.json"), check=False)
    assert result.returncode != 0
    assert "Error from server (Conflict)" in result.stderr
    assert 'Operation cannot be fulfilled on pods "stale": the object has been modified' in result.stderr


def test_a_manifest_with_a_value_of_the_wrong_type_is_refused(cloud: Cloud) -> None:
    pod = yaml.safe_load(pod_manifest("typed"))
    pod["spec"]["containers"][0]["env"] = [{"name": "PORT", "value": 8080}]  # an unquoted number in YAML
    result = cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert result.returncode != 0
    assert ('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go struct field '
            "EnvVar.spec.containers.env.value of type string") in result.stderr
    assert cloud.pod("typed") is None


def test_chunked_lists_show_every_object(cloud: Cloud) -> None:
    names = [f"chunk-{i}" for i in range(5)]
    for name in names:
        cloud.kubectl("create", "configmap", name, "--from-literal=k=v")
    whole = cloud.kubectl("get", "configmaps", "-o", "name", "--chunk-size=0").stdout.split()
    assert {f"configmap/{name}" for name in names} <= set(whole)

    chunked = cloud.kubectl("get", "configmaps", "-o", "name", "--chunk-size=2", "-v=6")
    assert chunked.stdout.split() == whole
    pages = [line for line in chunked.stderr.splitlines() if "/configmaps?" in line and "GET" in line]
    assert len(pages) == (len(whole) + 1) // 2 and "continue=" in pages[-1]
    table = cloud.kubectl("get", "configmaps", "--chunk-size=2").stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert [line.split()[0] for line in table[1:]] == [name.split("/")[1] for name in whole]
