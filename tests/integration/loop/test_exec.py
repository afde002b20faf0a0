"""kubectl exec, attach-style streams and cp through the cloud to pods on the real node (issue #11)."""
from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import docker
import psutil
import requests
from kubernetes.client import CoreV1Api
from kubernetes.stream import stream

from tests.integration.cloud.conftest import EDGEWORKERS, node_request
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for

EXEC_PATH = "/api/v1/namespaces/default/pods/{pod}/exec"


def run_exec(cluster: Cluster, pod: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("exec", pod, *args, input=input, check=False)


def running_execs(client: docker.DockerClient, container_id: str) -> list[dict[str, Any]]:
    """The Docker execs of a container whose process still runs."""
    ids = client.api.inspect_container(container_id).get("ExecIDs") or []
    states = []
    for exec_id in ids:
        try:
            states.append(client.api.exec_inspect(exec_id))
        except docker.errors.NotFound:
            continue
    return [s for s in states if s["Running"]]


def test_exec_streams_stdout_stderr_exit_code_stdin_tty_and_cp(cluster: Cluster, core: CoreV1Api,
                                                               tmp_path: Path) -> None:
    cluster.apply(busybox_pod("shell"))
    cluster.wait_running("shell")

    result = run_exec(cluster, "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.stdout == "out\n"
    assert result.stderr == "err\ncommand terminated with exit code 3\n"
    assert result.returncode == 3

    piped = run_exec(cluster, "shell", "-i", "--", "cat", input="hello\n")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "hello\n", "")

    # Under a pseudo-terminal: the process sees a TTY, and the terminal's size kubectl sends. (Docker 20.10 sets an
    # exec's size only once it runs, so the command polls for it, as `docker exec -it` would need to.)
    script = ("i=0; until s=$(stty size 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != '0 0' ] || [ $i -ge 50 ]; do "
              "i=$((i+1)); sleep 0.1; done; echo \"$s\"; tty")
    command = shlex.join(cluster.cloud.kubectl_args("exec", "-it", "shell", "--", "sh", "-c", script))
    tty = subprocess.run(["script", "-qec", f"stty rows 33 cols 101; {command}", "/dev/null"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, **cluster.cloud.env}, check=False)
    # (`script` passes its own stdin's end on as the terminal's EOF character, NUL in raw mode: echoed as ^@.)
    lines = tty.stdout.replace("\r", "").replace("^@", "").split("\n")
    assert "33 101" in lines, tty.stdout + tty.stderr
    assert any(line.startswith("/dev/pts/") for line in lines), tty.stdout + tty.stderr

    missing = run_exec(cluster, "shell", "--", "no-such-command")
    assert missing.returncode == 126
    assert "executable file not found" in missing.stdout + missing.stderr
    assert "command terminated with exit code 126" in missing.stderr

    # kubectl cp both ways (tar through exec): a megabyte of random bytes comes back identical.
    original = tmp_path / "random.bin"
    original.write_bytes(os.urandom(1_000_000))
    cluster.kubectl("cp", str(original), "shell:/tmp/random.bin", timeout_s=120)
    back = tmp_path / "back.bin"
    cluster.kubectl("cp", "shell:/tmp/random.bin", str(back), timeout_s=120)
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest()
    sums = run_exec(cluster, "shell", "--", "md5sum", "/tmp/random.bin")
    assert sums.stdout.split()[0] == hashlib.md5(original.read_bytes()).hexdigest()  # noqa: S324 (busybox md5sum)

    # The official Python client (v4.channel.k8s.io): its output and its exit status.
    client = stream(core.connect_get_namespaced_pod_exec, "shell", "default",
                    command=["sh", "-c", "echo from python; echo oops >&2; exit 7"], stderr=True, stdin=False,
                    stdout=True, tty=False, _preload_content=False)
    client.run_forever(timeout=30)
    assert client.read_stdout() == "from python\n"
    assert client.read_stderr() == "oops\n"
    assert client.returncode == 7
    done = stream(core.connect_get_namespaced_pod_exec, "shell", "default", command=["echo", "fine"], stderr=True,
                  stdin=False, stdout=True, tty=False)
    assert done == "fine\n"
    # Its stdin given a str goes in WebSocket text frames, which kube-apiserver reads as it reads binary ones.
    shell = stream(core.connect_post_namespaced_pod_exec, "shell", "default", command=["sh"], stderr=True,
                   stdin=True, stdout=True, tty=False, _preload_content=False)
    try:
        shell.write_stdin("echo typed\n")
        assert shell.readline_stdout(timeout=30) == "typed"
    finally:
        shell.write_stdin("exit\n")
        shell.close()


def test_a_client_killed_mid_stream_leaves_no_exec_and_no_thread(cluster: Cluster) -> None:
    cluster.apply(busybox_pod("sleeper"))
    cluster.wait_running("sleeper")
    app = cluster.running_ids("sleeper")["app"]
    bridge = psutil.Process(cluster.bridge.pid)  # `edgeworkers node serve` serves the node endpoint
    assert run_exec(cluster, "sleeper", "--", "true").returncode == 0  # the stream pool's thread exists
    threads_before = bridge.num_threads()

    kills = 3
    for _ in range(kills):
        kubectl = cluster.cloud.kubectl_popen("exec", "sleeper", "--", "sleep", "1000")
        wait_for(lambda: running_execs(cluster.docker, app), 30, "the exec's sleep 1000 running")
        kubectl.send_signal(signal.SIGKILL)
        kubectl.wait(10)
        wait_for(lambda: not running_execs(cluster.docker, app), 15, "no exec left running once kubectl died")
    processes = run_exec(cluster, "sleeper", "--", "ps", "-o", "args")
    assert "sleep 1000" not in processes.stdout, processes.stdout
    # No thread per stream: a leak would leave `kills` more. The node's stream pool (8 threads at most, reused) may
    # have grown by one where a stream's close overlapped the next stream's setup.
    wait_for(lambda: bridge.num_threads() <= threads_before + 1, 10,
             f"the bridge back to {threads_before} (+1) threads (now {bridge.num_threads()})")


def test_exec_refusals_in_kubernetes_words(cluster: Cluster, tmp_path: Path) -> None:
    pod = busybox_pod("pair", restartPolicy="Never")
    pod["spec"]["containers"].append(
        {"name": "done", "image": "busybox", "imagePullPolicy": "Never", "command": ["true"]})
    cluster.apply(pod)
    cluster.wait_pod("pair", lambda p: any("terminated" in (s.get("state") or {})
                                           for s in (p.get("status") or {}).get("containerStatuses") or []),
                     60, "pair's container done terminated")

    ended = run_exec(cluster, "pair", "-c", "done", "--", "true")
    assert ended.returncode == 1
    assert ended.stderr.strip() == 'error: unable to upgrade connection: container not found ("done")'

    # kubectl's SPDY path (WebSocket turned off) is told plainly that only WebSocket is served.
    spdy = subprocess.run(cluster.cloud.kubectl_args("exec", "pair", "-c", "app", "--", "true"), capture_output=True,
                          text=True, timeout=60, env={**os.environ, **cluster.cloud.env,
                                                      "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}, check=False)
    assert spdy.returncode == 1
    assert "Error from server (BadRequest): Upgrade request required" in spdy.stderr, spdy.stderr
    assert "WebSocket only" in spdy.stderr

    absent = run_exec(cluster, "nowhere", "--", "true")
    assert absent.returncode == 1
    assert 'pods "nowhere" not found' in absent.stderr

    # No credential: 401 at the cloud, before anything else.
    url = f"https://127.0.0.1:{cluster.cloud.port}{EXEC_PATH.format(pod='pair')}"
    anonymous = requests.get(url, params={"command": "true", "stdout": "true"}, timeout=10,
                             verify=str(cluster.cloud.data_dir / "ca.crt"))
    assert anonymous.status_code == 401

    # A node's identity may not exec into pods (kube's Node authorizer).
    other = f"{cluster.node}-peer"
    kubeconfig = cluster.cloud.issue_node_credentials(other, tmp_path / "peer")
    try:
        refused = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "exec", "pair", "-c", "app", "--", "true"],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 1
        assert "Forbidden" in refused.stderr and f'User "system:node:{other}"' in refused.stderr, refused.stderr
    finally:
        subprocess.run([EDGEWORKERS, "cloud", "revoke-node-credentials", other], env=cluster.cloud.env,
                       capture_output=True, check=False, timeout=30)

    # The node endpoint itself answers nobody but the cloud.
    bare = node_request(cluster.cloud, cluster.node_port, cluster.node, "/exec/default/pair/app?command=true&stdout=1")
    assert bare.status == 401

    # The node away: a clear error at once, not a hang.
    cluster.stop_bridge()
    offline = cluster.kubectl("exec", "pair", "-c", "app", "--", "true", check=False, timeout_s=60)
    assert offline.returncode == 1
    assert "error dialing backend" in offline.stderr, offline.stderr


def test_attach_streams_the_main_process_and_leaving_keeps_it_running(cluster: Cluster) -> None:
    cluster.apply(busybox_pod("ticker", "while true; do echo tick; sleep 0.2; done"))
    cluster.wait_running("ticker")
    app = cluster.running_ids("ticker")["app"]

    attach = cluster.cloud.kubectl_popen("attach", "ticker")
    try:
        assert attach.stdout is not None
        assert wait_for(lambda: attach.stdout.readline(), 30, "a line through kubectl attach") == "tick\n"
    finally:
        attach.send_signal(signal.SIGKILL)
        attach.wait(10)
    assert cluster.docker.api.inspect_container(app)["State"]["Running"]  # leaving an attach never stops it
    assert run_exec(cluster, "ticker", "--", "true").returncode == 0
