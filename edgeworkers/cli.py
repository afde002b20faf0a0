"""The `edgeworkers` command: one Typer app, each part's commands defined beside the part."""
from __future__ import annotations

import typer

from edgeworkers.cloud.cli import cloud_app, kubeconfig
from edgeworkers.node.cli import node_app
from edgeworkers.pods.cli import orphans, pod_app, worker

app = typer.Typer(help="An edge-node agent that runs Kubernetes pods on Docker.", no_args_is_help=True)
app.add_typer(pod_app, name="pod", help="Node-local (static) pods: apply, delete, list.")
app.add_typer(cloud_app, name="cloud", help="The Kubernetes-compatible cloud API.")
app.add_typer(node_app, name="node", help="The node's own endpoint (logs) and its registration with the cloud.")
app.command("worker", help="Run the Dramatiq pod workers (processes/threads from config).")(worker)
app.command("orphans", help="Remove containers of pods absent from the desired state.")(orphans)
app.command("kubeconfig", help="Print a kubeconfig for the cloud API.")(kubeconfig)


@app.command("scheduler")
def scheduler() -> None:
    """Run the periodic jobs (PLEG relist, orphan cleanup, ...) on APScheduler; metrics on 127.0.0.1."""
    from scheduler.main import run

    run()
