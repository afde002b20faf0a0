"""``edgeworkers pod apply/delete/list`` (node-local, "static" pods), ``edgeworkers worker`` and ``orphans``.

apply and delete write the desired state and enqueue the task, as the cloud bridge does; list prints the stored
pods with their last status in kubectl's columns.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import dramatiq
import redis
import typer
import yaml

from edgeworkers.broker import make_broker
from edgeworkers.config import settings
from edgeworkers.constants import QUEUE_POD_ADD, QUEUE_POD_DELETE, QUEUE_POD_SYNC, QUEUE_POD_UPDATE
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods import desired
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime.errors import RuntimeFault
from edgeworkers.tasks import sender

pod_app = typer.Typer(no_args_is_help=True)
# The queues every worker consumes (`edgeworkers worker`, `edgeworkers agent`).
QUEUES = (QUEUE_POD_ADD, QUEUE_POD_UPDATE, QUEUE_POD_DELETE, QUEUE_POD_SYNC)


def _store() -> MetaStore:
    """Pods need no key; secrets are never read here."""
    return MetaStore(redis_client(settings()))


def _send() -> desired.Send:
    """Enqueue on the configured broker (built here: only commands that enqueue pay for it)."""
    return sender(make_broker(settings()))


def _fail(error: APIError) -> NoReturn:
    text = f"The {error}" if error.reason == "Invalid" else f"Error from server ({error.reason}): {error}"
    typer.echo(text, err=True)
    raise typer.Exit(1)


class ManifestError(ValueError):
    """A manifest that is not YAML or JSON objects."""


def read_manifests(text: str) -> list[dict[str, Any]]:
    """The objects in a YAML or JSON text: several ``---`` documents, and ``kind: List`` expanded.

    Raises ManifestError, with the parser's line and column, for text that is not YAML or not objects."""
    objects: list[dict[str, Any]] = []
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ManifestError(f"error converting YAML to JSON: yaml: {where}{exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"error converting YAML to JSON: yaml: {exc}") from exc
    for doc in docs:
        if not doc:
            continue
        items = (doc.get("items") or []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        if not all(isinstance(item, dict) for item in items):
            raise ManifestError("a manifest must hold YAML or JSON objects (mappings)")
        objects.extend(items)
    return objects


def _read(filename: str) -> list[dict[str, Any]]:
    """The objects of file ``filename`` ('-': stdin); a clear error (exit 1) when it cannot be read or parsed."""
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except FileNotFoundError:
        _error(f'the path "{filename}" does not exist')
    except (OSError, UnicodeDecodeError) as exc:
        _error(f'cannot read "{filename}": {exc}')
    try:
        return read_manifests(text)
    except ManifestError as exc:
        _error(f'error parsing {"STDIN" if filename == "-" else filename}: {exc}')


def _error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _services() -> Iterator[None]:
    """An unreachable Redis or Docker engine becomes one clear error line (exit 1), not a traceback."""
    try:
        yield
    except (redis.RedisError, dramatiq.errors.BrokerConnectionError) as exc:
        _error(f"cannot reach the agent's Redis: {exc}")
    except RuntimeFault as exc:
        _error(str(exc))


@pod_app.command("apply")
def apply(
    filename: str = typer.Option(..., "-f", "--filename", help="Pod manifest (YAML or JSON); '-' reads stdin."),
) -> None:
    """Create or update node-local pods from a manifest."""
    objects = _read(filename)
    store, send = _store(), _send()
    for obj in objects:
        if obj.get("kind", "Pod") != "Pod":
            _error(f"only pods can be applied here, not {obj.get('kind')}")
        try:
            with _services():
                message = desired.apply_pod(store, send, _named(obj))
        except APIError as error:
            _fail(error)
        verb = "created" if message.route.operation == "insert" else "configured"
        typer.echo(f"pod/{message.content['metadata']['name']} {verb}")


def _named(obj: dict[str, Any]) -> dict[str, Any]:
    """The manifest with the static pod's name on this node (``<name>-<nodeName>``)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return obj  # apply_pod refuses it with the API server's message
    return {**obj, "metadata": {**meta, "name": desired.static_pod_name(meta["name"], settings().node_name)}}


@pod_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The pod's name."),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    grace_period: int = typer.Option(-1, "--grace-period", help="Seconds to stop; -1: the pod's own."),
) -> None:
    """Delete a node-local pod (NAME as listed, or as in its manifest): its containers are stopped with the grace
    period, then removed."""
    try:
        with _services():
            store = _store()
            key = desired.find_static_pod(store, namespace, name, settings().node_name)
            desired.delete_pod(store, _send(), key, None if grace_period < 0 else grace_period)
    except APIError as error:
        _fail(error)
    typer.echo(f'pod "{key.split("/", 1)[1]}" deleted')


@pod_app.command("list")
def list_pods(
    namespace: str = typer.Option("default", "-n", "--namespace"),
    output: str = typer.Option("", "-o", "--output", help="'json' prints the pods with their status."),
) -> None:
    """The node's desired pods and their last status, as `kubectl get pods` shows them."""
    store = _store()
    with _services():
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


def resync_desired(send: desired.Send) -> None:
    """Enqueue a sync of every desired pod, as the workers start (see ``desired.resync_all``)."""
    try:
        keys = desired.resync_all(_store(), send)
        typer.echo(f"enqueued a sync of {len(keys)} desired pod(s)", err=True)
    except (redis.RedisError, dramatiq.errors.BrokerConnectionError) as exc:  # the workers wait for Redis anyway
        typer.echo(f"warning: desired pods not resynced: cannot reach the agent's Redis: {exc}", err=True)


def worker(
    processes: int | None = typer.Option(None, "--processes", "-p", help="Worker processes (default: config)."),
    threads: int | None = typer.Option(None, "--threads", "-t", help="Threads per process (default: config)."),
) -> None:
    """Enqueue a sync of every desired pod, then replace this process with Dramatiq's worker CLI on the pod queues."""
    resync_desired(_send())
    config = settings()
    argv = [
        sys.executable, "-m", "dramatiq", "edgeworkers.actors",
        "--processes", str(processes or config.worker_processes),
        "--threads", str(threads or config.worker_threads),
        "--queues", *QUEUES,
    ]  # fmt: skip
    if config.queue_metrics_port:  # Dramatiq's exposition fork reads these: loopback only (see broker.make_broker)
        os.environ["dramatiq_prom_host"] = "127.0.0.1"
        os.environ["dramatiq_prom_port"] = str(config.queue_metrics_port)
    os.execvp(argv[0], argv)


def orphans() -> None:
    """Remove the containers of pods that are not in the desired state (the scheduler does this every minute)."""
    from edgeworkers.pods.reconcile import build_agent, remove_orphans

    with _services():
        removed = remove_orphans(build_agent(settings(), None))
    for key in removed:
        typer.echo(f"removed the containers of pod {key}")


def node_shutdown(
    grace_period: float = typer.Option(30.0, "--grace-period", help="Seconds each container gets to stop."),
    if_shutting_down: bool = typer.Option(False, "--if-shutting-down",
                                          help="Only while systemd shuts the machine down; else do nothing."),
) -> None:
    """Stop every pod's containers, keeping them and the desired state for the next boot (the systemd unit
    edgeworkers-pods.service runs this when the machine shuts down: see edgeworkers/pods/shutdown.py)."""
    from edgeworkers.pods.shutdown import shutting_down, stop_pods
    from edgeworkers.runtime.docker import DockerRuntime

    if if_shutting_down and not shutting_down():
        typer.echo("the system is not shutting down: the pods keep running")
        return
    config = settings()
    with _services():
        stopped = stop_pods(DockerRuntime(config.node_name, config.docker_host, config.sandbox_image), grace_period)
    typer.echo(f"stopped {len(stopped)} container(s) of {len({c.pod.key for c in stopped})} pod(s)")


# --- kubectl's pod columns -----------------------------------------------------------------------------

COLUMNS = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")


def pod_row(pod: dict[str, Any], status: dict[str, Any] | None, now: datetime) -> tuple[str, ...]:
    """One row of ``COLUMNS`` for ``pod`` and its last stored status (None: not synced yet), by the cloud's
    server-side printer (kubectl's printPod), so that the node and `kubectl get pods` show a pod alike."""
    from edgeworkers.k8s.printers import to_table  # not imported by the workers that import this module

    table = to_table("pods", [{**pod, "status": status or {"phase": "Pending"}}], "", now)
    return tuple(str(cell) for cell in table["rows"][0]["cells"][: len(COLUMNS)])


def render(rows: list[tuple[str, ...]]) -> str:
    """Columns padded as kubectl pads them (three spaces between columns)."""
    table = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def utcnow() -> datetime:
    return datetime.now(UTC)
