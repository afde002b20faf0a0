"""`edgeworkers node serve`: the node's log endpoint plus its registration and heartbeat (Procfile `bridge`)."""
from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Annotated

import structlog
import typer

from edgeworkers.config import Settings, settings
from edgeworkers.node import server
from edgeworkers.node.apiclient import ApiClient, ClusterAccess, load_kubeconfig
from edgeworkers.node.registration import NodeRegistrar
from edgeworkers.node.status import gather_facts
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.protocol import Runtime

log = structlog.get_logger(__name__)
node_app = typer.Typer(no_args_is_help=True)

CREDENTIALS_POLL_S = 2.0
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
    """Serve the node's kubelet-style endpoint and keep the node registered with the cloud."""
    access = None
    if kubeconfig is not None:  # a bad kubeconfig stops the command at once, not a thread later
        try:
            access = load_kubeconfig(kubeconfig.read_text())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot use kubeconfig {kubeconfig}: {exc}", param_hint="--kubeconfig") from exc
    asyncio.run(_serve(settings(), access))


async def _serve(config: Settings, access: ClusterAccess | None) -> None:
    runtime = DockerRuntime(config.node_name, config.docker_host, config.sandbox_image, LOG_READ_TIMEOUT_S)
    runner = await server.start(server.create_app(runtime), config.node_host, config.node_port)
    stop = threading.Event()
    heartbeat = threading.Thread(
        target=_heartbeat, args=(config, access, runtime, stop), name="node-heartbeat", daemon=True
    )
    heartbeat.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    stop.set()
    await runner.cleanup()
    heartbeat.join(timeout=5)


def _heartbeat(config: Settings, access: ClusterAccess | None, runtime: Runtime, stop: threading.Event) -> None:
    access = access or _embedded_cloud_access(config, stop)
    if access is None:
        return
    api = ApiClient(access)
    try:
        NodeRegistrar(api, lambda: gather_facts(config, runtime.version)).run(stop)
    finally:
        api.close()


def _embedded_cloud_access(config: Settings, stop: threading.Event) -> ClusterAccess | None:
    """The embedded cloud's address, CA and token, once it has made them (None if stopped first)."""
    ca, token = config.cloud_data_dir / "ca.crt", config.cloud_data_dir / "token"
    if not (ca.exists() and token.exists()):
        log.info("waiting for the cloud's credentials", data_dir=str(config.cloud_data_dir))
    while not (ca.exists() and token.exists()):
        if stop.wait(CREDENTIALS_POLL_S):
            return None
    return ClusterAccess(
        server=f"https://{config.cloud_host}:{config.cloud_port}",
        token=token.read_text().strip(),
        ca_data=ca.read_bytes(),
    )
