"""The bridge's threads: pod watcher, uplink, mirror pods, config refresher and status resync around one API client.

Each loop runs in its own named daemon thread, supervised: a crash is logged and the loop starts again after
``RESTART_DELAY_S``, so one bug cannot silently stop the node's link to the cloud. They share the process's services
(``wiring.bridge_loops`` makes them). Stopping closes the API client, which also ends a watch blocked in its read, so
the process stops within seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiClient, ClusterAccess, access_from_settings

log = structlog.get_logger(__name__)

Loop = Callable[[threading.Event], None]
# The loops of a bridge by thread name, made once the cloud's API client exists (``wiring.bridge_loops``).
LoopFactory = Callable[[ApiClient], Mapping[str, Loop]]
RESTART_DELAY_S = 5.0
CREDENTIALS_POLL_S = 2.0
JOIN_TIMEOUT_S = 5.0


def supervise(name: str, loop: Loop, stop: threading.Event, restart_delay_s: float = RESTART_DELAY_S) -> threading.Thread:
    """Run ``loop(stop)`` in a daemon thread called ``name``, starting it again ``restart_delay_s`` after it crashed
    (or returned before ``stop``)."""

    def guarded() -> None:
        while not stop.is_set():
            try:
                loop(stop)
            except Exception:
                log.exception("bridge loop crashed; restarting it", thread=name, restart_in_s=restart_delay_s)
            else:
                if stop.is_set():
                    return
                log.warning("bridge loop ended; restarting it", thread=name, restart_in_s=restart_delay_s)
            stop.wait(restart_delay_s)

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def issue_own_credentials(config: Settings) -> bool:
    """Bootstrap against the embedded cloud on this machine: issue this node's credentials with the documented
    command (``edgeworkers cloud issue-node-credentials <node>``), which writes them 0600 where
    ``access_from_settings`` looks. Only when the cloud's data dir is here (its CA exists); True when issued."""
    if config.kubeconfig is not None or not (config.cloud_data_dir / "ca.crt").exists():
        return False
    command = Path(sys.executable).with_name("edgeworkers")
    env = {**os.environ, "EDGEWORKERS_CLOUD_DATA_DIR": str(config.cloud_data_dir),
           "EDGEWORKERS_CLOUD_PORT": str(config.cloud_port)}
    result = subprocess.run(  # noqa: S603 - our own command, no shell
        [str(command), "cloud", "issue-node-credentials", config.node_name, "--address", config.node_host],
        capture_output=True, text=True, timeout=60, check=False, env=env)
    if result.returncode != 0:
        log.warning("could not issue this node's credentials", node=config.node_name, error=result.stderr[-500:])
        return False
    log.info("issued this node's credentials", node=config.node_name, kubeconfig=result.stdout.strip())
    return True


def wait_for_access(config: Settings, stop: threading.Event,
                    bootstrap: Callable[[Settings], bool] = issue_own_credentials) -> ClusterAccess | None:
    """The cloud's access (``access_from_settings``): the node's own credentials, issued by ``bootstrap`` on a first
    start against the embedded cloud once it has made its CA; None when stopped first."""
    access = access_from_settings(config)
    if access is None:
        log.info("waiting for this node's credentials", data_dir=str(config.cloud_data_dir))
    while access is None:
        if not bootstrap(config) and stop.wait(CREDENTIALS_POLL_S):
            return None
        if stop.is_set():
            return None
        access = access_from_settings(config)
    return access


def run_bridge(config: Settings, stop: threading.Event, loops: LoopFactory) -> None:
    """Once the cloud's access is known, run the ``loops`` made from the API client until ``stop``; then close the
    client and give the threads a few seconds to end."""
    access = wait_for_access(config, stop)
    if access is None:
        return
    api = ApiClient(access)
    threads: list[threading.Thread] = []
    try:
        made = loops(api)
        threads = [supervise(name, loop, stop) for name, loop in made.items()]
        log.info("bridge started", server=access.server, threads=sorted(made))
        stop.wait()
    finally:
        api.close()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if lingering := [t.name for t in threads if t.is_alive()]:
            log.warning("bridge threads still busy at exit", threads=lingering)
