"""Builders shared by the pod sync unit tests: pods from plain dicts, and a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from edgeworkers.k8s.pod import Pod, default_pod
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, PodRef

T0 = 1_800_000_000.0
RUNNING, EXITED, CREATED = ContainerState.RUNNING, ContainerState.EXITED, ContainerState.CREATED


def container(name: str, image: str = "busybox", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", **fields}


def make_pod(
    name: str = "web",
    uid: str = "uid-1",
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    restart: str = "Always",
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> Pod:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": labels or {"app": name}},
        "spec": {
            "containers": containers or [container("app", command=["sleep", "3600"])],
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            **spec,
        },
    }
    if init:
        body["spec"]["initContainers"] = init
    return Pod.from_dict(default_pod(body))


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def ctr(
    name: str,
    state: ContainerState = RUNNING,
    restarts: int = 0,
    spec_hash: str = "",
    exit_code: int | None = None,
    uid: str = "uid-1",
    created: float = 0,
    started: float | None = None,
    finished: float | None = None,
    init: bool = False,
) -> Container:
    """A runtime container of pod default/web ("POD" is the sandbox); times are seconds after T0."""
    return Container(
        id=ContainerID("docker", f"{uid}-{name}-{restarts}-{state.value}"),
        pod=PodRef(uid, "default", "web"),
        name=name,
        image="busybox",
        image_id="sha256:1",
        state=state,
        restart_count=restarts,
        spec_hash=spec_hash,
        is_sandbox=name == "POD",
        is_init=init,
        created_at=at(created),
        started_at=at(created if started is None else started) if state != CREATED else None,
        finished_at=at(finished if finished is not None else created + 1) if state == EXITED else None,
        exit_code=exit_code if state == EXITED else None,
        reason=("Completed" if exit_code == 0 else "Error") if state == EXITED else "",
    )
