"""``edgeworkers pod apply/delete/list``: node-local, "static" pods.

apply and delete write the desired state and enqueue the task, as the cloud bridge does; list prints the stored
pods with their last status in kubectl's columns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import dramatiq
import typer
import yaml

from edgeworkers import wiring
from edgeworkers.config import settings
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.store import POD, StoreError
from edgeworkers.pods import desired
from edgeworkers.runtime.errors import RuntimeFault

pod_app = typer.Typer(no_args_is_help=True)


def _services() -> wiring.Services:
    """The command's services: the desired pods and the broker the pods' tasks go to (nothing connects before use)."""
    return wiring.build(settings())


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
def _reachable() -> Iterator[None]:
    """An unreachable Redis or Docker engine becomes one clear error line (exit 1), not a traceback."""
    try:
        yield
    except (StoreError, dramatiq.errors.BrokerConnectionError) as exc:
        _error(f"cannot reach the agent's Redis: {exc}")
    except RuntimeFault as exc:
        _error(str(exc))


@pod_app.command("apply")
def apply(
    filename: str = typer.Option(..., "-f", "--filename", help="Pod manifest (YAML or JSON); '-' reads stdin."),
) -> None:
    """Create or update node-local pods from a manifest."""
    objects = _read(filename)
    services = _services()
    store, send = services.store, services.send
    for obj in objects:
        if obj.get("kind", "Pod") != "Pod":
            _error(f"only pods can be applied here, not {obj.get('kind')}")
        try:
            with _reachable():
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
        with _reachable():
            services = _services()
            key = desired.find_static_pod(services.store, namespace, name, settings().node_name)
            desired.delete_pod(services.store, services.send, key, None if grace_period < 0 else grace_period)
    except APIError as error:
        _fail(error)
    typer.echo(f'pod "{key.split("/", 1)[1]}" deleted')


@pod_app.command("list")
def list_pods(
    namespace: str = typer.Option("default", "-n", "--namespace"),
    output: str = typer.Option("", "-o", "--output", help="'json' prints the pods with their status."),
) -> None:
    """The node's desired pods and their last status, as `kubectl get pods` shows them."""
    services = _services()
    with _reachable():
        pods = services.store.list(POD, namespace)
        statuses = [services.status.get(f"{namespace}/{pod['metadata']['name']}") for pod in pods]
    if output == "json":
        items = [{**pod, "status": status or {}} for pod, status in zip(pods, statuses)]
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        return
    if not pods:
        typer.echo(f"No resources found in {namespace} namespace.", err=True)
        return
    now = utcnow()
    typer.echo(render([pod_row(pod, status, now) for pod, status in zip(pods, statuses)]))


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
