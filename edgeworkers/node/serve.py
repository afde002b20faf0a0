"""The node's role in the agent process: its kubelet-style endpoint (logs, exec, attach, port-forward; HTTPS, for the
cloud only) and the cloud bridge's threads (pod watcher, uplink, mirror pods, config refresher, status resync, the
node's registration and heartbeat, and the renewal of its credentials), each loop in its own supervised thread (``bridge.run``)."""
from __future__ import annotations

import asyncio
import signal
import ssl
import threading
from collections.abc import Mapping

import structlog

from edgeworkers import watchdog
from edgeworkers.bridge.run import JOIN_TIMEOUT_S, Loop, LoopFactory, run_bridge, wait_for_access
from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiClient, credentials_dir
from edgeworkers.node import credentials, server
from edgeworkers.runtime.protocol import Runtime

log = structlog.get_logger(__name__)


def _endpoint_tls(config: Settings) -> ssl.SSLContext | None:
    """The endpoint's TLS from the certificate beside the node's kubeconfig; None (plain HTTP, where every request
    answers 401 for want of the cloud's client certificate) when there is none."""
    directory = credentials_dir(config)
    if not (directory / "node.crt").exists():
        log.warning("no node certificate beside the kubeconfig: the node endpoint refuses every request",
                    directory=str(directory))
        return None
    return server.tls_context(directory)


async def serve(config: Settings, runtime: Runtime, loops: LoopFactory, stop: threading.Event | None = None) -> None:
    """The endpoint and the bridge's ``loops`` until SIGTERM or SIGINT, or until ``stop`` is set (a caller's own
    signal handlers may set it before this loop has its own)."""
    stop = stop or threading.Event()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    watchdog.beat_on(loop, "bridge")  # the event loop turns: the supervisor's watchdog sees the process alive
    for sig in (signal.SIGTERM, signal.SIGINT):  # from the start: a signal also ends the wait for credentials
        loop.add_signal_handler(sig, lambda: (stopping.set(), stop.set()))
    if stop.is_set():  # signalled before the handlers above existed
        stopping.set()
    # The endpoint serves HTTPS with the node's certificate, issued with its credentials: wait for them (a first
    # start against the embedded cloud issues them).
    await asyncio.to_thread(wait_for_access, config, stop)
    if stop.is_set():
        log.info("stopping")
        return
    tls = _endpoint_tls(config)
    runner = await server.start(server.create_app(runtime), config.node_host, config.node_port, tls)
    # The node's credentials are renewed with the endpoint's TLS: the new certificate is served at once.
    keep_credentials = credentials.keeper(credentials_dir(config), config.node_name, tls)

    def with_credentials(api: ApiClient) -> Mapping[str, Loop]:
        return {**loops(api), "node-credentials": keep_credentials(api)}

    bridge = threading.Thread(target=run_bridge, args=(config, stop, with_credentials), name="bridge", daemon=True)
    bridge.start()
    await stopping.wait()
    log.info("stopping")
    stop.set()
    await runner.cleanup()
    bridge.join(timeout=JOIN_TIMEOUT_S + 1)
