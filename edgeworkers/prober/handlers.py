"""The three probe handlers: exec (through the runtime), httpGet and tcpSocket (to the pod's own address).

Each returns ``(ok, message)`` within its timeout and never raises for the probed container's faults. Network
probes go only to the address the manager hands them: the IP of the pod's sandbox (a container this agent started)
or 127.0.0.1 for a host-network pod; a probe naming another ``host`` is refused (``probe_target``), so a pod spec
cannot turn the node's prober against other machines.
"""
from __future__ import annotations

import json
import socket
import time
from typing import Protocol

import urllib3

from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import Probe
from edgeworkers.pods.hooks import port_number
from edgeworkers.runtime.errors import ContainerRuntimeError, ExecTimeout
from edgeworkers.runtime.protocol import EXEC_OUTPUT_MAX
from edgeworkers.runtime.types import ContainerID, ExecResult

LOOPBACK = "127.0.0.1"
MAX_OUTPUT = EXEC_OUTPUT_MAX  # kubelet keeps the first 10 KiB of a probe's output
MAX_BODY = 10 * 1024  # and reads at most 10 KiB of an HTTP probe's body
# kubelet's prober's own headers (a probe's httpHeaders override them).
PROBE_HEADERS = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
# No proxy, no certificate check, a connection per probe (kubelet disables keep-alives): closed after each.
_HTTP = urllib3.PoolManager(cert_reqs="CERT_NONE", num_pools=32, maxsize=1, block=False)


class Executor(Protocol):
    """What runs an exec probe's command: the Runtime itself, or the prober's sessions (``execsession``)."""

    def exec(self, container: ContainerID, command: list[str], timeout_s: float) -> ExecResult: ...


class ProbeRefused(ValueError):
    """The probe asks for something the node does not do (another host, an unknown port name, gRPC)."""


def resolve_port(port: int | str, spec: SpecContainer) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    number = port_number(port, spec)
    if number is None:
        raise ProbeRefused(f"port {port!r} is not a named port of container {spec.name}")
    return number


def probe_target(host: str | None, pod_address: str) -> str:
    """The address a network probe may reach: the pod's own; ``host`` only when it names that same address."""
    if host and host != pod_address:
        raise ProbeRefused(f"probe host {host!r} refused: probes reach only the pod's own address {pod_address}")
    return pod_address


def run_exec(runtime: Executor, container: ContainerID, command: list[str], timeout_s: float) -> tuple[bool, str]:
    try:
        result = runtime.exec(container, command, timeout_s)
    except ExecTimeout:  # kubelet's words (its CRI client's DeadlineExceeded)
        return False, f"command {json.dumps(' '.join(command))} timed out"
    except ContainerRuntimeError as exc:
        return False, str(exc)
    output = result.output[:MAX_OUTPUT].decode(errors="replace")
    if result.exit_code == 0:
        return True, output
    return False, output or f"command {command} exited with {result.exit_code}"


def run_http(
    host: str, port: int, path: str, scheme: str, headers: dict[str, str], timeout_s: float
) -> tuple[bool, str]:
    """Success: a status in [200, 400) (redirects are not followed, as a 3xx counts already).

    As kubelet's prober: never through a proxy (urllib3 reads none from the environment, unlike requests), the
    server's certificate not verified, at most ``MAX_BODY`` bytes of the body read, and the whole request (connect,
    headers, body) bounded by ``timeout_s`` in total, not per read: a server dripping bytes cannot stretch it."""
    url = f"{scheme.lower()}://{host}:{port}/{path.lstrip('/')}"
    started = time.monotonic()
    try:
        with urllib3.warnings.catch_warnings():
            urllib3.warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = _HTTP.request("GET", url, headers={**PROBE_HEADERS, **headers},
                                     timeout=urllib3.Timeout(total=timeout_s), preload_content=False, redirect=False,
                                     retries=False)  # fmt: skip
            try:
                _read_within(response, started + timeout_s)
            finally:
                response.close()
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return False, f'Get "{url}": {exc}'
    if 200 <= response.status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {response.status}"


def _read_within(response: urllib3.BaseHTTPResponse, deadline: float) -> None:
    """Read at most ``MAX_BODY`` bytes of the body, by ``deadline`` (TimeoutError past it): each read waits only
    what is left of the probe's timeout."""
    remaining = MAX_BODY
    sock = getattr(getattr(response, "connection", None), "sock", None)
    while remaining > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the body was not read within the probe's timeout")
        if sock is not None:
            sock.settimeout(left)
        chunk = response.read1(min(remaining, 1024), decode_content=False)  # what one read brings, not more
        if not chunk:
            return
        remaining -= len(chunk)


def run_tcp(host: str, port: int, timeout_s: float) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, ""
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: {exc}"


def run_probe(
    runtime: Executor, container: ContainerID, spec: SpecContainer, probe: Probe, pod_address: str | None, timeout_s: float
) -> tuple[bool, str]:
    """Run whichever handler ``probe`` has; a refused probe fails with the reason."""
    try:
        if probe.exec is not None:
            return run_exec(runtime, container, list(probe.exec.command or []), timeout_s)
        if pod_address is None:
            return False, "the pod has no IP address yet"
        if probe.http_get is not None:
            action = probe.http_get
            headers = {h.name: h.value for h in action.http_headers or []}
            host = probe_target(action.host, pod_address)
            return run_http(host, resolve_port(action.port, spec), action.path or "/", action.scheme, headers, timeout_s)
        if probe.tcp_socket is not None:
            host = probe_target(probe.tcp_socket.host, pod_address)
            return run_tcp(host, resolve_port(probe.tcp_socket.port, spec), timeout_s)
        raise ProbeRefused("only exec, httpGet and tcpSocket probes are supported")
    except ProbeRefused as exc:
        return False, str(exc)
