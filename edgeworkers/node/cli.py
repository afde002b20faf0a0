"""`edgeworkers node serve` (Procfile `bridge`): the node's log endpoint, its registration and heartbeat, and the
cloud bridge (pod watcher, uplink, mirror pods, config refresher), each loop in its own supervised thread."""
from __future__ import annotations

import asyncio
import signal
import ssl
import threading
import time
from pathlib import Path
from typing import Annotated

import dramatiq
import structlog
import typer

from edgeworkers import watchdog
from edgeworkers.bridge.run import JOIN_TIMEOUT_S, Loop, run_bridge, wait_for_access
from edgeworkers.config import Settings, settings
from edgeworkers.kubeclient import ApiClient, access_from_settings, credentials_dir
from edgeworkers.node import server
from edgeworkers.node.registration import NodeRegistrar
from edgeworkers.node.status import gather_facts
from edgeworkers.pleg import recorded_health_error
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime.docker import DockerRuntime

log = structlog.get_logger(__name__)
node_app = typer.Typer(no_args_is_help=True)

# A followed log of a quiet container sends nothing for as long as it stays quiet: the engine's read
# timeout must not end it.
LOG_READ_TIMEOUT_S = 24 * 3600.0


@node_app.command("serve")
def serve(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            envvar="EDGEWORKERS_KUBECONFIG",
            help="Kubeconfig of the cloud API. Default: the embedded cloud's credentials in its data dir.",
        ),
    ] = None,
) -> None:
    """Serve the node's kubelet-style endpoint, keep the node registered, and bridge its pods with the cloud."""
    config = settings()
    if kubeconfig is not None:  # a bad kubeconfig stops the command at once, not a thread later
        config = config.model_copy(update={"kubeconfig": kubeconfig})
        try:
            access_from_settings(config)
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot use kubeconfig {kubeconfig}: {exc}", param_hint="--kubeconfig") from exc
    asyncio.run(_serve(config))


def _endpoint_tls(config: Settings) -> ssl.SSLContext | None:
    """The endpoint's TLS from the certificate beside the node's kubeconfig; None (plain HTTP, where every request
    answers 401 for want of the cloud's client certificate) when there is none."""
    directory = credentials_dir(config)
    if not (directory / "node.crt").exists():
        log.warning("no node certificate beside the kubeconfig: the node endpoint refuses every request",
                    directory=str(directory))
        return None
    return server.tls_context(directory)


async def _serve(config: Settings, broker: dramatiq.Broker | None = None, stop: threading.Event | None = None) -> None:
    """The endpoint and the bridge's threads (enqueueing on ``broker``, else on one of their own) until SIGTERM or
    SIGINT, or until ``stop`` is set (a caller's own signal handlers may set it before this loop has its own)."""
    runtime = DockerRuntime(config.node_name, config.docker_host, config.sandbox_image, LOG_READ_TIMEOUT_S)
    stop = stop or threading.Event()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    watchdog.beat_on(loop, "bridge")  # the supervisor's watchdog: this event loop turns
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
    runner = await server.start(server.create_app(runtime), config.node_host, config.node_port, _endpoint_tls(config))

    pleg_redis = redis_client(config, socket_timeout=5, socket_connect_timeout=5)

    def pleg_error() -> str:  # the scheduler's PLEG health, from the relist time it records in Redis
        return recorded_health_error(pleg_redis, time.time(), config.pleg_relist_threshold_s)

    def heartbeat(api: ApiClient) -> Loop:
        return NodeRegistrar(api, lambda: gather_facts(config, runtime.version, pleg_error),
                             interval_s=config.node_status_update_frequency_s).run

    bridge = threading.Thread(
        target=run_bridge, args=(config, stop, {"node-heartbeat": heartbeat}, broker), name="bridge", daemon=True
    )
    bridge.start()
    await stopping.wait()
    log.info("stopping")
    stop.set()
    await runner.cleanup()
    bridge.join(timeout=JOIN_TIMEOUT_S + 1)
