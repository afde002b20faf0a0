"""A streaming exec or attach on Docker: the hijacked connection of ``exec_start``/``attach_socket`` and its control.

Docker offers no call to stop an exec, and a client that goes away leaves the process running (a ``sleep 1000``
would stay for good): ``close`` kills it, with its children, by the host PID ``exec_inspect`` reports, after
checking from ``/proc/<pid>/cgroup`` that this PID still belongs to the container (a PID is reused once freed).
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import docker
import psutil
import structlog

log = structlog.get_logger(__name__)
# How long a closed exec that Docker has not started yet is waited for, to be killed once it runs.
START_WAIT_S = 10.0


class DockerStreamSession:
    """``runtime.protocol.StreamSession`` on Docker; ``exec_id`` None for an attach."""

    def __init__(self, api: docker.APIClient, container_id: str, exec_id: str | None, hijacked: Any,
                 tty: bool) -> None:
        self._api = api
        self._container_id = container_id
        self._exec_id = exec_id
        self._hijacked = hijacked  # holds the HTTP response: the connection lives as long as it does
        self.sock: socket.socket = getattr(hijacked, "_sock", hijacked)
        self.tty = tty
        self._lock = threading.Lock()
        self._closed = False

    def resize(self, width: int, height: int) -> None:
        if not self.tty or width <= 0 or height <= 0:
            return
        try:
            if self._exec_id is not None:
                self._api.exec_resize(self._exec_id, height=height, width=width)
            else:
                self._api.resize(self._container_id, height=height, width=width)
        except docker.errors.APIError as exc:  # the process has just ended: nothing to resize
            log.debug("resize refused", container=self._container_id, reason=str(exc.explanation or exc))

    def exit_code(self, wait_s: float) -> int | None:
        if self._exec_id is None:
            return None
        deadline = time.monotonic() + wait_s
        while True:
            state = self._api.exec_inspect(self._exec_id)
            if not state["Running"]:
                return int(state["ExitCode"])
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self._exec_id is not None:
                self._kill()
        except docker.errors.NotFound:
            pass  # the container (and with it the exec's processes) is gone already
        except (docker.errors.DockerException, OSError) as exc:
            log.warning("exec not inspected at close", container=self._container_id, reason=str(exc))
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()
            with contextlib.suppress(OSError, AttributeError):
                self._hijacked.close()

    def _kill(self) -> None:
        """Kill the exec's process if it runs, waiting for it to start if Docker has not started it yet (a stream
        closed at once, on a loaded machine) rather than leaving it to start, unattended, later."""
        deadline = time.monotonic() + START_WAIT_S
        while True:
            state = self._api.exec_inspect(self._exec_id)
            if state["Running"] and state.get("Pid"):
                kill_tree(int(state["Pid"]), self._container_id)
                return
            if state.get("ExitCode") is not None or time.monotonic() >= deadline:
                return  # ended by itself (or never started)
            time.sleep(0.01)


def kill_tree(pid: int, container_id: str) -> bool:
    """SIGKILL ``pid`` and its descendants if it is a process of container ``container_id``; True if it was."""
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False  # gone already
    if container_id not in cgroup:
        log.warning("exec process not in its container's cgroup: not killed", pid=pid, container=container_id)
        return False
    try:
        process = psutil.Process(pid)
        victims = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    log.debug("exec's processes killed: its stream ended first", container=container_id, pids=[v.pid for v in victims])
    return True
