"""The `edgeworkers` command: one Typer app, each part's commands defined beside the part.

A part's module is imported only when one of its commands runs (or the help lists them): an edge process never
loads the cloud's code (aiohttp's server, cryptography, the API server), nor the bridge's or the scheduler's when it
does not run them.
"""
from __future__ import annotations

import importlib
import sys

from edgeworkers.process import long_running, protect_from_oom, trim_for_long_run

if long_running(sys.argv[1:]):  # before typer and structlog are imported: see trim_for_long_run
    trim_for_long_run()
    protect_from_oom()  # kubelet's -999: the kernel's OOM killer takes the node's pods before the agent

import typer  # noqa: E402
from typer.core import TyperCommand, TyperGroup  # noqa: E402

# Commands by name: (module, attribute: a Typer sub-app or a command function, help).
COMMANDS = {
    "pod": ("edgeworkers.podcommand", "pod_app", "Node-local (static) pods: apply, delete, list."),
    "cloud": ("edgeworkers.cloud.cli", "cloud_app", "The Kubernetes-compatible cloud API."),
    "node": ("edgeworkers.agent", "node_app", "The node's own endpoint (logs) and its registration with the cloud."),
    "worker": ("edgeworkers.agent", "worker", "Run the Dramatiq pod workers (processes/threads from config)."),
    "agent": ("edgeworkers.agent", "agent", "Run the whole edge in one process: bridge, scheduler's jobs, worker."),
    "orphans": ("edgeworkers.agent", "orphans", "Remove containers of pods absent from the desired state."),
    "kubeconfig": ("edgeworkers.cloud.cli", "kubeconfig", "Print a kubeconfig for the cloud API."),
    "node-shutdown": ("edgeworkers.agent", "node_shutdown",
                      "Stop every pod's containers as the machine shuts down (started again on the next boot)."),
}


class LazyGroup(TyperGroup):
    """The top-level group: ``COMMANDS`` are imported when named."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute, help_text = COMMANDS[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            target.info.help = help_text
            command: TyperCommand | TyperGroup = typer.main.get_group(target)
        else:  # a command function: a Typer app of one command is that command
            single = typer.Typer(add_completion=False)
            single.command(cmd_name, help=help_text)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(cls=LazyGroup, no_args_is_help=True)


@app.callback()
def main() -> None:
    """An edge-node agent that runs Kubernetes pods on Docker."""


@app.command("scheduler")
def scheduler() -> None:
    """Run the periodic jobs (PLEG relist, orphan cleanup, ...) on APScheduler; metrics on 127.0.0.1."""
    from edgeworkers.agent import scheduler as run_scheduler

    run_scheduler()
