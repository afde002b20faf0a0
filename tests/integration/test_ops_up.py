"""ops/up and ops/down, run for real on a copy of ops/ whose Procfile holds stand-in processes.

The stand-in `cloud` answers kubectl's `/version` and the node's Lease over plain HTTP, and the stand-in
`edgeworkers kubeconfig` points at it, so these tests exercise the scripts (start, wait, report, stop) without
the real processes.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.polling import wait_for

REPO = Path(__file__).resolve().parents[2]
NODE = "ops-up-node"

FAKE_CLOUD = (
    "import datetime, http.server, json, os\n"
    "LEASE = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/' + os.environ['EDGEWORKERS_NODE_NAME']\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = json.dumps({'major': '1', 'minor': '32', 'gitVersion': 'v1.32.0'}).encode()\n"
    "        if self.path.split('?')[0].startswith(LEASE):  # the node's, or with --nodes those of <node>-i\n"
    "            renewed = os.environ.get('FAKE_RENEW_TIME') or datetime.datetime.now(datetime.UTC).isoformat()\n"
    "            body = json.dumps({'kind': 'Lease', 'spec': {'renewTime': renewed}}).encode()\n"
    "        self.send_response(200); self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['FAKE_CLOUD_PORT'])), H).serve_forever()\n"
)
FAKE_EDGEWORKERS = """#!/bin/sh
[ "$1" = kubeconfig ] || exit 2
cat <<EOT
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$FAKE_CLOUD_PORT"}}]
users: [{name: fake, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
EOT
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_root(root: Path, procfile: str) -> Path:
    """A checkout-like tree: a copy of ops/, python and edgeworkers-supervisor from the venv, stand-in `pip` and
    `edgeworkers`, the given Procfile."""
    shutil.copytree(REPO / "ops", root / "ops", ignore=shutil.ignore_patterns("bench"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "Procfile").write_text(procfile)
    with (root / "ops" / "edgeworkers.env").open("a") as env:
        port = free_port()
        env.write(f"FAKE_CLOUD_PORT={port}\nEDGEWORKERS_CLOUD_PORT={port}\nEDGEWORKERS_NODE_NAME={NODE}\n")
    (root / "cloud.py").write_text(FAKE_CLOUD)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "edgeworkers-supervisor"):
        (bin_dir / tool).symlink_to(REPO / ".venv" / "bin" / tool)
    # ops/setup's pip install must not touch the real venv: here it is a no-op.
    for name, text in (("pip", "#!/bin/sh\nexit 0\n"), ("edgeworkers", FAKE_EDGEWORKERS)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return root


def run(root: Path, script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [root / "ops" / script, *args], capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})}
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie left for our reaping is gone as far as the scripts are concerned.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def children_of(pid: int) -> list[int]:
    return [int(child) for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


def wait_gone(pids: list[int], seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def root(tmp_path: Path):
    made = tmp_path / "checkout"
    made.mkdir()
    yield made
    if (made / ".run" / "supervisor.pid").exists():
        run(made, "down")


def test_up_starts_the_procfile_writes_the_kubeconfig_and_down_stops_every_process(root: Path) -> None:
    make_root(root, "cloud: .venv/bin/python cloud.py\nworker: echo Worker process is ready for action.; exec sleep 600\n")

    up = run(root, "up")

    assert up.returncode == 0, up.stderr
    kubeconfig = root / ".run" / "kubeconfig"
    assert f"export KUBECONFIG={kubeconfig}" in up.stdout
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600  # the administrator's token
    assert stat.S_IMODE(kubeconfig.parent.stat().st_mode) == 0o700
    assert "kubectl apply -f examples/pod.yaml" in up.stdout
    assert "ops/down" in up.stdout
    version = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/version"], capture_output=True, text=True, check=True
    )
    assert json.loads(version.stdout)["gitVersion"] == "v1.32.0"
    supervisor = int((root / ".run" / "supervisor.pid").read_text())
    children = children_of(supervisor)
    assert len(children) == 2

    again = run(root, "up")
    assert again.returncode == 0, again.stderr
    assert "edgeworkers-supervisor already running" in again.stderr
    assert int((root / ".run" / "supervisor.pid").read_text()) == supervisor

    down = run(root, "down")
    assert down.returncode == 0, down.stderr
    assert wait_gone([supervisor, *children]) == []
    assert not (root / ".run" / "supervisor.pid").exists()
    assert run(root, "down").returncode == 0


def test_up_reports_a_process_that_fails_to_start_with_the_end_of_its_log(root: Path) -> None:
    make_root(root, "cloud: .venv/bin/python cloud.py\nworker: echo 'no such command: worker' >&2; exit 3\n")

    up = run(root, "up")

    assert up.returncode != 0
    assert "no such command: worker" in up.stderr
    assert "worker stopped (rc=3)" in up.stderr
    assert not (root / ".run" / "supervisor.pid").exists()  # stopped, not left restarting it for ever


def test_up_gives_up_on_a_process_that_never_becomes_ready(root: Path) -> None:
    make_root(root, "cloud: .venv/bin/python cloud.py\nworker: exec sleep 600\n")

    started = time.monotonic()
    up = run(root, "up", env={"EDGEWORKERS_UP_TIMEOUT_S": "3"})

    assert up.returncode != 0
    assert "not ready within 3 s: worker" in up.stderr
    assert time.monotonic() - started < 60


def test_up_waits_for_the_bridge_to_renew_the_node_lease_not_for_a_lease_left_by_an_earlier_run(root: Path) -> None:
    make_root(root, "cloud: .venv/bin/python cloud.py\nbridge: exec sleep 600\n")
    env_file = root / "ops" / "edgeworkers.env"
    settings = env_file.read_text()
    env_file.write_text(settings + "FAKE_RENEW_TIME=2020-01-01T00:00:00+00:00\n")

    stale = run(root, "up", env={"EDGEWORKERS_UP_TIMEOUT_S": "3"})

    assert stale.returncode != 0
    assert "not ready within 3 s: bridge" in stale.stderr
    assert run(root, "down").returncode == 0

    env_file.write_text(settings)  # now the lease is renewed as it is read
    fresh = run(root, "up")

    assert fresh.returncode == 0, fresh.stderr
    assert "edgeworkers is up: cloud bridge" in fresh.stdout


# A stand-in that speaks sd_notify as edgeworkers.watchdog does: READY=1, then WATCHDOG=1 every 0.2 s.
NOTIFIER = (
    "import os, socket, time\n"
    "sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "sock.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
    "print('Worker process is ready for action.', flush=True)\n"
    "while True:\n"
    "    sock.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n"
    "    time.sleep(0.2)\n"
)
AGENT = "agent: echo 'INFO edgeworkers.agent: agent is ready: node x'; exec sleep 600\n"


def supervised(root: Path) -> dict[str, int]:
    """The supervised processes by name, from the supervisor's state file."""
    state = root / ".run" / "supervisor.state"
    return {name: int(pid) for name, pid, _ in (line.split() for line in state.read_text().splitlines())}


def test_a_killed_process_is_restarted_alone_within_5_s(root: Path) -> None:
    make_root(root, "cloud: .venv/bin/python cloud.py\n" + AGENT + "worker: .venv/bin/python notifier.py\n")
    (root / "notifier.py").write_text(NOTIFIER)
    assert run(root, "up").returncode == 0

    for name in ("cloud", "agent", "worker"):
        before = supervised(root)
        os.kill(before[name], signal.SIGKILL)

        after = wait_for(lambda: (now := supervised(root)).get(name, before[name]) != before[name] and now, 5,
                         f"{name} restarted")
        assert {n: pid for n, pid in after.items() if n != name} == {n: pid for n, pid in before.items() if n != name}
        assert alive(after[name])


def test_a_hung_process_is_restarted_by_its_watchdog(root: Path) -> None:
    make_root(root, "cloud: .venv/bin/python cloud.py\nworker: .venv/bin/python notifier.py\n")
    (root / "notifier.py").write_text(NOTIFIER)
    assert run(root, "up", env={"EDGEWORKERS_WATCHDOG_S": "2"}).returncode == 0
    before = supervised(root)

    os.kill(before["worker"], signal.SIGSTOP)

    after = wait_for(lambda: (now := supervised(root)).get("worker", before["worker"]) != before["worker"] and now,
                     10, "the stopped worker restarted")
    assert after["cloud"] == before["cloud"]
    assert wait_gone([before["worker"]]) == []
    assert "worker: watchdog: no WATCHDOG=1 for 2 s" in (root / ".run" / "edgeworkers.log").read_text()


def test_up_after_a_hard_killed_run_stops_what_it_left_and_runs_one_set(root: Path) -> None:
    # This worker ignores SIGTERM (sleep inherits the ignored signal): it outlives its supervisor's death.
    make_root(root, "cloud: .venv/bin/python cloud.py\n"
                    "worker: trap '' TERM; echo Worker process is ready for action.; exec sleep 600\n")
    env = {"EDGEWORKERS_STOP_TIMEOUT_S": "2"}
    assert run(root, "up", env=env).returncode == 0
    first = int((root / ".run" / "supervisor.pid").read_text())
    left = supervised(root)
    os.kill(first, signal.SIGKILL)
    assert wait_gone([first]) == []
    assert alive(left["worker"])

    again = run(root, "up", env=env)

    assert again.returncode == 0, again.stderr
    assert wait_gone(list(left.values())) == []
    second = int((root / ".run" / "supervisor.pid").read_text())
    now = supervised(root)
    assert sorted(now) == ["cloud", "worker"] and not set(now.values()) & set(left.values())
    assert sorted(children_of(second)) == sorted(now.values())
    assert f"worker: stopping pid {left['worker']}, left by an earlier run" in (
        root / ".run" / "edgeworkers.log").read_text()


def test_up_with_nodes_runs_the_cloud_once_and_each_node_with_its_own_name_database_data_dir_and_port(
        root: Path) -> None:
    node_port = free_port()
    make_root(root, "cloud: .venv/bin/python cloud.py\n"
                    "agent: echo INFO edgeworkers.agent: agent is ready: node $EDGEWORKERS_NODE_NAME"
                    " $EDGEWORKERS_REDIS_URL $EDGEWORKERS_DATA_DIR $EDGEWORKERS_NODE_PORT; exec sleep 600\n")
    with (root / "ops" / "edgeworkers.env").open("a") as env:
        env.write(f"EDGEWORKERS_DATA_DIR={root}/data\nEDGEWORKERS_NODE_PORT={node_port}\n")

    up = run(root, "up", "--nodes", "2")

    assert up.returncode == 0, up.stderr
    assert f"Nodes: {NODE}-1 {NODE}-2" in up.stdout
    assert sorted(supervised(root)) == ["agent-1", "agent-2", "cloud"]
    log = (root / ".run" / "edgeworkers.log").read_text()
    for i in (1, 2):
        assert (f"agent-{i} | INFO edgeworkers.agent: agent is ready: node {NODE}-{i} redis://127.0.0.1:6379/{i} "
                f"{root}/data/nodes/{NODE}-{i} {node_port + 10 * (i - 1)}") in log
    assert "is ready: node ops-up-node " not in log  # no process runs as the single node

    other = run(root, "up", "--nodes", "3")
    assert other.returncode != 0
    assert "runs 2 node(s), not 3: ops/down first" in other.stderr
    assert run(root, "up", "--nodes", "0").returncode != 0

    processes = list(supervised(root).values())
    assert run(root, "down").returncode == 0
    assert wait_gone(processes) == []
