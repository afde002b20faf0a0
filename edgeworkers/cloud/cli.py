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


def kubeconfig(
    client_certificate: bool = typer.Option(
        False, "--client-certificate", help="An identity as a new client certificate from the cluster CA "
        "(client-certificate-data, client-key-data; valid EDGEWORKERS_CREDENTIAL_LIFETIME_S) instead of the "
        "administrator's token."),
    user: str | None = typer.Option(None, "--user", help="With --client-certificate: its user (the common name). "
                                    "Default: the administrator, edgeworkers:admin."),
    groups: list[str] | None = typer.Option(  # noqa: B008 - typer's way
        None, "--group", help="With --client-certificate: its groups (organizations), repeatable. Default: "
        "system:masters, which may do anything."),
    output: Path | None = typer.Option(  # noqa: B008 - typer's way
        None, "--output", "-o", help="Write it to this file (0600) instead of printing it."),
) -> None:
    """Print a kubeconfig for the cloud API (making its CA and token on first use)."""
    from edgeworkers.cloud.auth import ADMIN_USER, MASTERS, NODE_PREFIX
    from edgeworkers.cloud.tls import client_certificate_kubeconfig_yaml, kubeconfig_yaml
    from edgeworkers.privatefiles import write_private

    config = settings()
    if not client_certificate and (user is not None or groups):
        raise typer.BadParameter("--user and --group name a client certificate's identity: add --client-certificate")
    if client_certificate:
        user = ADMIN_USER if user is None else user
        if not user or user.startswith(NODE_PREFIX):
            raise typer.BadParameter("a person's name: nodes authenticate with their own credentials",
                                     param_hint="--user")
        text = client_certificate_kubeconfig_yaml(config, user, tuple(groups) if groups else (MASTERS,))
    else:
        text = kubeconfig_yaml(config)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_private(output, text.encode())


@cloud_app.command("issue-node-credentials")
def issue_node_credentials(
    node: str = typer.Argument(..., help="The node's name (its identity is system:node:NODE)."),
    output_dir: Path | None = typer.Option(  # noqa: B008 - typer's way
        None, "--output-dir", help="Where to write them. Default: <cloud data dir>/nodes/NODE, where the node's "
        "bridge looks when EDGEWORKERS_KUBECONFIG is unset."),
    address: str | None = typer.Option(
        None, "--address", help="The node's address (its EDGEWORKERS_NODE_HOST), named by its serving certificate "
        "unless it is a loopback one."),
) -> None:
    """Issue NODE a token (its kubeconfig) and its endpoint's certificate, valid EDGEWORKERS_CREDENTIAL_LIFETIME_S
    (the node renews them itself before they expire). Run again to rotate (the old ones stop working at once), or to
    bring back a node whose credentials expired: it takes the new files without a restart, its pods untouched."""
    from edgeworkers.cloud.tls import issue_node_credentials as issue

    try:
        kubeconfig = issue(settings(), node, output_dir, address)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NODE") from exc
    typer.echo(str(kubeconfig))


@cloud_app.command("revoke-node-credentials")
def revoke_node_credentials(node: str = typer.Argument(..., help="The node's name.")) -> None:
    """Revoke NODE's token and serving certificate: its next request answers 401, and the cloud refuses its endpoint
    from the next connection."""
    from edgeworkers.cloud.tls import revoke_node_credentials as revoke

    if not revoke(settings(), node):
        typer.echo(f"node {node} had no credentials", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked the credentials of node {node}")
