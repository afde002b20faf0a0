"""``edgeworkers pod apply/delete/list`` (node-local, "static" pods), ``edgeworkers worker`` and ``orphans``.

apply and delete write the desired state and enqueue the task, as the cloud bridge does; list prints the stored
pods with their last status in kubectl's columns.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import redis
import typer
import yaml

from edgeworkers.config import settings
from edgeworkers.constants import QUEUE_POD_ADD, QUEUE_POD_DELETE, QUEUE_POD_SYNC, QUEUE_POD_UPDATE
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods import desired

pod_app = typer.Typer(no_args_is_help=True)


def _store() -> MetaStore:
    return MetaStore(redis.Redis.from_url(settings().redis_url))


def _send() -> desired.Send:
    from edgeworkers.actors import enqueue  # the broker is built on import: only commands that enqueue pay

    return enqueue


def _fail(error: APIError) -> NoReturn:
    text = f"The {error}" if error.reason == "Invalid" else f"Error from server ({error.reason}): {error}"
    typer.echo(text, err=True)
    raise typer.Exit(1)


def read_manifests(text: str) -> list[dict[str, Any]]:
    """The objects in a YAML or JSON text: several ``---`` documents, and ``kind: List`` expanded."""
    objects: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise typer.BadParameter("a manifest must be a YAML or JSON object")
        objects.extend((doc.get("items") or []) if doc.get("kind") == "List" else [doc])
    return objects


@pod_app.command("apply")
def apply(
    filename: str = typer.Option(..., "-f", "--filename", help="Pod manifest (YAML or JSON); '-' reads stdin."),
) -> None:
    """Create or update node-local pods from a manifest."""
    text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    store, send = _store(), _send()
    for obj in read_manifests(text):
        if obj.get("kind", "Pod") != "Pod":
            typer.echo(f"error: only pods can be applied here, not {obj.get('kind')}", err=True)
            raise typer.Exit(1)
        try:
            message = desired.apply_pod(store, send, obj)
        except APIError as error:
            _fail(error)
        verb = "created" if message.route.operation == "insert" else "configured"
        typer.echo(f"pod/{message.content['metadata']['name']} {verb}")


@pod_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The pod's name."),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    grace_period: int = typer.Option(-1, "--grace-period", help="Seconds to stop; -1: the pod's own."),
) -> None:
    """Delete a node-local pod: its containers are stopped with the grace period, then removed."""
    try:
        desired.delete_pod(_store(), _send(), f"{namespace}/{name}", None if grace_period < 0 else grace_period)
    except APIError as error:
        _fail(error)
    typer.echo(f'pod "{name}" deleted')


@pod_app.command("list")
def list_pods(
    namespace: str = typer.Option("default", "-n", "--namespace"),
    output: str = typer.Option("", "-o", "--output", help="'json' prints the pods with their status."),
) -> None:
    """The node's desired pods and their last status, as `kubectl get pods` shows them."""
    store = _store()
    pods = store.list(POD, namespace)
    statuses = [store.get_pod_status(f"{namespace}/{pod['metadata']['name']}") for pod in pods]
    if output == "json":
        items = [{**pod, "status": status or {}} for pod, status in zip(pods, statuses)]
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        return
    if not pods:
        typer.echo(f"No resources found in {namespace} namespace.", err=True)
        return
    now = utcnow()
    typer.echo(render([pod_row(pod, status, now) for pod, status in zip(pods, statuses)]))


def worker(
    processes: int | None = typer.Option(None, "--processes", "-p", help="Worker processes (default: config)."),
    threads: int | None = typer.Option(None, "--threads", "-t", help="Threads per process (default: config)."),
) -> None:
    """Replace this process with Dramatiq's worker CLI on the pod queues."""
    config = settings()
    argv = [
        sys.executable, "-m", "dramatiq", "edgeworkers.actors",
        "--processes", str(processes or config.worker_processes),
        "--threads", str(threads or config.worker_threads),
        "--queues", QUEUE_POD_ADD, QUEUE_POD_UPDATE, QUEUE_POD_DELETE, QUEUE_POD_SYNC,
    ]  # fmt: skip
    os.execvp(argv[0], argv)


def orphans() -> None:
    """Remove the containers of pods that are not in the desired state (the scheduler does this every minute)."""
    from edgeworkers import actors

    for key in actors.remove_orphans(actors.agent()):
        typer.echo(f"removed the containers of pod {key}")


# --- kubectl's pod columns -----------------------------------------------------------------------------

COLUMNS = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: ``45s``, ``2m30s``, ``3h``, ``2d4h``, ``3y``."""
    if seconds < -1:
        return "<invalid>"
    secs = int(max(seconds, 0))
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return f"{minutes}m{secs % 60}s" if secs % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _terminated_reason(terminated: dict[str, Any], prefix: str = "") -> str:
    if terminated.get("reason"):
        return prefix + terminated["reason"]
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def display_status(pod: dict[str, Any], status: dict[str, Any]) -> str:
    """The STATUS column: the phase, refined by init and container states, as kubectl shows it."""
    reason = status.get("reason") or status.get("phase") or "Pending"
    init_statuses = status.get("initContainerStatuses") or []
    initializing = False
    for index, container in enumerate(init_statuses):
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        initializing = True
        if terminated:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len((pod.get('spec') or {}).get('initContainers') or [])}"
        break
    if not initializing:
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                reason = _terminated_reason(state["terminated"])
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def pod_row(pod: dict[str, Any], status: dict[str, Any] | None, now: datetime) -> tuple[str, ...]:
    """One row of ``COLUMNS`` for ``pod`` and its last stored status (None: not synced yet)."""
    status = status or {"phase": "Pending"}
    containers = (pod.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    age = human_duration((now - _parse_time(created)).total_seconds()) if created else "<unknown>"
    return (
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        display_status(pod, status),
        str(restarts),
        age,
    )


def render(rows: list[tuple[str, ...]]) -> str:
    """Columns padded as kubectl pads them (three spaces between columns)."""
    table = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def utcnow() -> datetime:
    return datetime.now(UTC)
