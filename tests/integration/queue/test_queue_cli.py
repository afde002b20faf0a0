"""`edgeworkers pod apply/list/delete` and `edgeworkers orphans`, run as commands against real workers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from queuekit import (
    Worker,
    busybox_pod,
    node_containers,
    queues_drained,
    running_names,
    wait_for,
    worker_env,
)

from edgeworkers.metamanager.epoch import Epoch
from edgeworkers.runtime import labels

EDGEWORKERS = str(Path(sys.executable).with_name("edgeworkers"))


@pytest.fixture
def cli(config):
    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [EDGEWORKERS, *args],
            input=stdin,
            env={**worker_env(config), **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def start_worker_command(config, log: Path) -> Worker:
    """`edgeworkers worker` itself (it resyncs the desired pods, then execs the dramatiq CLI)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [EDGEWORKERS, "worker", "--processes", "1", "--threads", "2"],
            env=worker_env(config),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(process, log)


@pytest.fixture
def worker_command(config, tmp_path):
    """`edgeworkers worker`, stopped after the test."""
    worker = start_worker_command(config, tmp_path / "worker-command.log")
    yield worker
    worker.stop()


def test_a_worker_start_restarts_pods_stopped_while_the_agent_was_down(
    cli, config, worker_command, tmp_path, docker_client, node_name, real_redis
):
    """As after an edge reboot with the cloud unreachable: nothing but the agent's own start brings pods back."""
    applied = cli("pod", "apply", "-f", "-", stdin=json.dumps(busybox_pod("survivor")))
    assert applied.returncode == 0, applied.stderr
    survivor = f"survivor-{node_name}"  # a static pod, named as kubelet names them
    wait_for(lambda: running_names(node_containers(docker_client, node_name, survivor)) == {"POD", "app"}, 60, "up")
    worker_command.stop()
    for container in node_containers(docker_client, node_name, survivor):
        container.stop(timeout=0)
    assert running_names(node_containers(docker_client, node_name, survivor)) == set()

    again = start_worker_command(config, tmp_path / "worker-again.log")
    try:
        wait_for(
            lambda: running_names(node_containers(docker_client, node_name, survivor)) == {"POD", "app"},
            60,
            "the pod running again after the worker's start",
        )
        assert "enqueued a sync of 1 desired pod(s)" in again.output()
    finally:
        again.stop()


def test_pod_apply_list_delete(cli, worker_command, tmp_path, real_redis, docker_client, node_name):
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(yaml.safe_dump_all([busybox_pod("alpha"), busybox_pod("beta")]))

    applied = cli("pod", "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    alpha, beta = f"alpha-{node_name}", f"beta-{node_name}"  # static pods, named as kubelet names them
    assert applied.stdout.splitlines() == [f"pod/{alpha} created", f"pod/{beta} created"]
    for name in (alpha, beta):
        wait_for(lambda n=name: running_names(node_containers(docker_client, node_name, n)) == {"POD", "app"}, 60, name)

    rows = wait_for(
        lambda: (out := cli("pod", "list").stdout.splitlines()) and all("Running" in row for row in out[1:]) and out,
        30,
        "both pods Running in the list",
    )
    assert rows[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [row.split()[:4] for row in rows[1:]] == [[alpha, "1/1", "Running", "0"], [beta, "1/1", "Running", "0"]]

    listed = json.loads(cli("pod", "list", "-o", "json").stdout)
    assert [(p["metadata"]["name"], p["status"]["phase"]) for p in listed["items"]] == [
        (alpha, "Running"),
        (beta, "Running"),
    ]

    changed = busybox_pod("alpha", "sleep 7200")
    reapplied = cli("pod", "apply", "-f", "-", stdin=json.dumps(changed))
    assert reapplied.stdout.strip() == f"pod/{alpha} configured"
    wait_for(
        lambda: any("sleep 7200" in c.attrs["Args"] and c.status == "running"
                    for c in node_containers(docker_client, node_name, alpha)),
        60,
        "alpha's app container recreated with the new command",
    )

    deleted = cli("pod", "delete", "alpha")  # the manifest's name finds the static pod
    assert deleted.stdout.strip() == f'pod "{alpha}" deleted'
    wait_for(lambda: node_containers(docker_client, node_name, alpha) == [], 60, "alpha's containers removed")
    wait_for(lambda: queues_drained(real_redis), 30, "the delete processed")
    assert [row.split()[0] for row in cli("pod", "list").stdout.splitlines()[1:]] == [beta]

    missing = cli("pod", "delete", "alpha")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "alpha" not found'
    # With one process, `edgeworkers worker` runs Dramatiq's worker itself (no `dramatiq` master; see
    # tests/integration/lite/test_worker_command.py for more processes).
    argv = Path(f"/proc/{worker_command.process.pid}/cmdline").read_text().split("\0")
    assert argv[2:5] == ["worker", "--processes", "1"]  # [python, .venv/bin/edgeworkers, ...]


def test_pod_apply_refuses_an_invalid_pod_with_the_kubernetes_message(cli, tmp_path, node_name):
    bad = busybox_pod("bad")
    bad["spec"]["containers"][0]["name"] = "Web_1"
    result = cli("pod", "apply", "-f", "-", stdin=yaml.safe_dump(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(f'The Pod "bad-{node_name}" is invalid: spec.containers[0].name: Invalid value: "Web_1"')
    assert cli("pod", "list").stderr.strip() == "No resources found in default namespace."


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("-f", "-"), "metadata: {name: x\nspec: [\n", "error: error parsing STDIN: error converting YAML to JSON: yaml: line 2"),
        (("-f", "/nonexistent/pod.yaml"), None, 'error: the path "/nonexistent/pod.yaml" does not exist'),
        (("-f", "-"), "kind: Pod\nmetadata: {name: 5}\n", 'Error from server (BadRequest): Pod in version "v1" cannot be handled'),
    ],
)
def test_pod_apply_refuses_an_unreadable_manifest_with_a_clear_error(cli, args, stdin, message):
    result = cli("pod", "apply", *args, stdin=stdin)
    assert result.returncode == 1
    assert result.stderr.startswith(message) and "Traceback" not in result.stderr
    assert cli("pod", "list").stderr.strip() == "No resources found in default namespace."


@pytest.mark.parametrize(
    "args", [("pod", "apply", "-f", "-"), ("pod", "list"), ("pod", "delete", "web"), ("orphans",)], ids=" ".join
)
def test_an_unreachable_redis_is_one_clear_error_line(cli, args):
    result = cli(*args, stdin=yaml.safe_dump(busybox_pod("web")), env={"EDGEWORKERS_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the agent's Redis: Error 111 connecting to 127.0.0.1:1")
    assert "Traceback" not in result.stderr


def test_orphans_with_the_engine_away_is_one_clear_error_line(cli, tmp_path, real_redis):
    Epoch(real_redis).establish()  # as the bridge's first list does: the cleanup then asks the engine
    result = cli("orphans", env={"EDGEWORKERS_DOCKER_HOST": f"unix://{tmp_path}/docker.sock"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: Docker engine unavailable") and "Traceback" not in result.stderr


def test_orphans_removes_containers_of_pods_not_desired(cli, docker_client, node_name, real_redis):
    Epoch(real_redis).establish()  # as the bridge's first list does: MetaManager holds what the cloud wants
    stray = docker_client.containers.run(
        "busybox",
        ["sleep", "3600"],
        detach=True,
        labels={
            labels.NODE: node_name,
            labels.POD_UID: "uid-stray",
            labels.POD_NAMESPACE: "default",
            labels.POD_NAME: "stray",
            labels.CONTAINER_NAME: "app",
            labels.CONTAINER_TYPE: labels.TYPE_APP,
        },
        stop_signal="SIGKILL",
    )
    result = cli("orphans")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed the containers of pod default/stray"
    assert node_containers(docker_client, node_name) == []
    assert stray.id not in {c.id for c in docker_client.containers.list(all=True, sparse=True)}
