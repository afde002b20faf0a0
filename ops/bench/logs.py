"""The cost of rotating container logs: the agent's CPU (and dockerd's) while a pod writes 10 MB/s to its log, with
kubelet's rotation (10Mi x 5 files) and, as the baseline in the same run, with rotation off.

    .venv/bin/python ops/bench/logs.py --seconds 30 --rounds 2

Each round runs both modes, alternating which goes first (a busy machine skews whichever runs first): the lite agent
(`edgeworkers agent`: the scheduler's jobs and a worker in one process, no cloud: its bridge waits for credentials it
never gets) on a bench node of its own, with EDGEWORKERS_CONTAINER_LOG_MAX_SIZE 10Mi or 0; a node-local busybox pod
that writes 10 MB of 1000-byte lines every wall-clock second; after a 5 s warm-up, the CPU time of the agent's process
tree and of dockerd (read with psutil, which only reads) over --seconds, and the pod's log files on disk at the end.
Prints each mode's CPU as a share of a core and the ratio rotated / not rotated. It uses a free database of the Redis
at --redis-url (the test Redis by default) and removes its containers, keys and files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import psutil
import redis
import typer
from benchkit import claim_database, remove_containers, stop_process_group, wait_until

from edgeworkers.runtime import labels

ROTATION = {"on": "10Mi", "off": "0"}
# 10 MB of 1000-byte lines in each wall-clock second, then wait for the next second.
WRITER = (
    "line=$(head -c 999 /dev/zero | tr '\\0' x); "
    "while true; do s=$(date +%s); yes \"$line\" | head -n 10000; "
    "while [ \"$(date +%s)\" = \"$s\" ]; do sleep 0.05; done; done"
)
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer"}, "spec": {
    "terminationGracePeriodSeconds": 0,
    "containers": [{"name": "app", "image": "busybox", "imagePullPolicy": "Never", "command": ["sh", "-c", WRITER]}],
}}
EDGEWORKERS = str(Path(sys.executable).with_name("edgeworkers"))


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def dockerd() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "dockerd"]


def one_mode(mode: str, url: str, seconds: float, client: docker.DockerClient) -> tuple[float, float, int, int]:
    """The agent's and dockerd's CPU seconds over ``seconds``, and the log files' count and bytes at the end."""
    node = f"bench-logs-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-logs-"))
    env = {
        **os.environ, "EDGEWORKERS_NODE_NAME": node, "EDGEWORKERS_REDIS_URL": url, "EDGEWORKERS_REDIS_PASSWORD_FILE": "",
        "EDGEWORKERS_DATA_DIR": str(root / "data"), "EDGEWORKERS_CLOUD_DATA_DIR": str(root / "cloud"),
        "EDGEWORKERS_METRICS_PORT": "0", "EDGEWORKERS_NODE_PORT": "0", "EDGEWORKERS_EVICTION_ENABLED": "false",
        "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT": "100", "EDGEWORKERS_CONTAINER_LOG_MAX_SIZE": ROTATION[mode],
    }
    env.pop("EDGEWORKERS_KUBECONFIG", None)
    log = root / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen([EDGEWORKERS, "agent", "--threads", "2"], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "agent is ready" in log.read_text(errors="replace") or agent.poll() is not None, 60,
                   "the agent to be ready")
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited:\n{log.read_text(errors='replace')[-3000:]}")
        subprocess.run([EDGEWORKERS, "pod", "apply", "-f", "-"], input=json.dumps(POD), text=True, env=env, check=True,
                       capture_output=True, timeout=60)

        def app() -> dict | None:
            found = client.api.containers(filters={"label": [f"{labels.NODE}={node}",
                                                             f"{labels.CONTAINER_TYPE}={labels.TYPE_APP}"]})
            return found[0] if found else None

        wait_until(app, 60, "the writer pod running")
        time.sleep(5)  # warm-up: the first rotations, the PLEG's first look at the pod
        agent_tree, engine = tree(agent.pid), dockerd()
        agent_before, engine_before = cpu_seconds(agent_tree), cpu_seconds(engine)
        time.sleep(seconds)
        agent_used, engine_used = cpu_seconds(agent_tree) - agent_before, cpu_seconds(engine) - engine_before
        container = app()
        files = list((Path(client.info()["DockerRootDir"]) / "containers" / container["Id"]).glob("*-json.log*")) \
            if container else []  # fmt: skip
        return agent_used, engine_used, len(files), sum(f.stat().st_size for f in files)
    finally:
        stop_process_group(agent)
        remove_containers(client, node)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def main(
    seconds: float = 30.0,
    rounds: int = 2,
    redis_url: str = typer.Option("redis://127.0.0.1:6399", help="a Redis without password; a free db is used"),
) -> None:
    client = docker.from_env()
    url = claim_database(redis_url)
    totals = {mode: [0.0, 0.0] for mode in ROTATION}
    try:
        for index in range(rounds):
            for mode in ("on", "off") if index % 2 == 0 else ("off", "on"):
                agent_s, engine_s, count, size = one_mode(mode, url, seconds, client)
                totals[mode][0] += agent_s
                totals[mode][1] += engine_s
                print(f"round {index + 1} rotation {mode:<3}: agent {100 * agent_s / seconds:5.1f} % of a core, "
                      f"dockerd {100 * engine_s / seconds:5.1f} %; log files at the end: {count}, "
                      f"{size / 1e6:.1f} MB", flush=True)
                redis.Redis.from_url(url).flushdb()
    finally:
        redis.Redis.from_url(url).flushdb()
    span = seconds * rounds
    (agent_on, engine_on), (agent_off, engine_off) = totals["on"], totals["off"]
    print(f"agent  : rotation on {100 * agent_on / span:.1f} %, off {100 * agent_off / span:.1f} % of a core; "
          f"ratio on/off {agent_on / agent_off:.2f}")
    print(f"dockerd: rotation on {100 * engine_on / span:.1f} %, off {100 * engine_off / span:.1f} % of a core; "
          f"ratio on/off {engine_on / engine_off:.2f}")


if __name__ == "__main__":
    typer.run(main)
