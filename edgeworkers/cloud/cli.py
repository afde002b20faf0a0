"""`edgeworkers cloud serve`, `issue-node-credentials`, `revoke-node-credentials`, and `edgeworkers kubeconfig`.

The server's modules are imported inside the commands: every `edgeworkers` command loads this file,
and the node's commands should not pay for (or depend on) the cloud's.
"""
from __future__ import annotations

from pathlib import Path

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


@cloud_app.command("issue-node-credentials")
def issue_node_credentials(
    node: str = typer.Argument(..., help="The node's name (its identity is system:node:NODE)."),
    output_dir: Path | None = typer.Option(  # noqa: B008 - typer's way
        None, "--output-dir", help="Where to write them. Default: <cloud data dir>/nodes/NODE, where the node's "
        "bridge looks when EDGEWORKERS_KUBECONFIG is unset."),
) -> None:
    """Issue NODE a token (its kubeconfig) and its endpoint's certificate. Run again to rotate: the old token
    stops working at once."""
    from edgeworkers.cloud.tls import issue_node_credentials as issue

    try:
        kubeconfig = issue(settings(), node, output_dir)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NODE") from exc
    typer.echo(str(kubeconfig))


@cloud_app.command("revoke-node-credentials")
def revoke_node_credentials(node: str = typer.Argument(..., help="The node's name.")) -> None:
    """Revoke NODE's token: its next request answers 401."""
    from edgeworkers.cloud.tls import revoke_node_credentials as revoke

    if not revoke(settings(), node):
        typer.echo(f"node {node} had no credentials", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked the credentials of node {node}")
