"""`edgeworkers cloud serve` and `edgeworkers kubeconfig`.

The server's modules are imported inside the commands: every `edgeworkers` command loads this file,
and the node's commands should not pay for (or depend on) the cloud's.
"""
from __future__ import annotations

import typer

from edgeworkers.config import settings

cloud_app = typer.Typer(no_args_is_help=True)


@cloud_app.command("serve")
def serve() -> None:
    """Serve the Kubernetes-compatible API over HTTPS (host and port from EDGEWORKERS_CLOUD_HOST/PORT)."""
    from edgeworkers.cloud.app import serve as serve_app

    serve_app(settings())


def kubeconfig() -> None:
    """Print a kubeconfig for the cloud API (making its CA and token on first use)."""
    from edgeworkers.cloud.tls import kubeconfig_yaml

    typer.echo(kubeconfig_yaml(settings()), nl=False)
