"""FakeRuntime's own steering: what unit tests of the pod sync logic rely on."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeworkers.runtime.errors import (
    ContainerCreateError,
    ContainerNotFound,
    ContainerRuntimeError,
    ImageInUse,
    ImageNotPresent,
    RuntimeUnavailable,
)
from edgeworkers.runtime.fake import FakeRuntime, normalize_image
from edgeworkers.runtime.types import (
    ContainerConfig,
    ContainerState,
    ExecResult,
    PodRef,
    SandboxConfig,
)
from tests.unit.clock import Clock

POD = PodRef("uid-1", "default", "web")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def fake(clock: Clock) -> FakeRuntime:
    return FakeRuntime("node-a", clock=clock)


def running_app(fake: FakeRuntime, name: str = "app", **kwargs):
    sandbox = fake.create_sandbox(SandboxConfig(POD))
    app = fake.create_container(sandbox, POD, ContainerConfig(name, "busybox", **kwargs))
    fake.start_container(app)
    return sandbox, app


def test_calls_are_recorded_as_string_tuples(fake: FakeRuntime) -> None:
    _, app = running_app(fake)
    fake.stop_container(app, 30)
    assert fake.calls == [
        ("create_sandbox", "default/web"),
        ("create_container", "default/web", "app"),
        ("start_container", str(app)),
        ("stop_container", str(app), "30"),
    ]
    assert fake.calls_named("stop_container") == [("stop_container", str(app), "30")]


def test_timestamps_come_from_the_clock(fake: FakeRuntime, clock: Clock) -> None:
    _, app = running_app(fake)
    clock.advance(42)
    fake.exit(app, 0)
    container = next(c for c in fake.list_containers(POD.key) if c.id == app)
    assert (container.created_at, container.started_at, container.finished_at) == (T0, T0, T0 + timedelta(seconds=42))


def test_a_clock_of_epoch_seconds_is_accepted() -> None:
    fake = FakeRuntime(clock=lambda: 1_700_000_000.0)
    sandbox = fake.create_sandbox(SandboxConfig(POD))
    assert fake.list_containers()[0].created_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert fake.list_containers()[0].id == sandbox


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [(0, None, "Completed"), (1, None, "Error"), (137, "OOMKilled", "OOMKilled")],
)
def test_exit_sets_code_and_reason(fake: FakeRuntime, code: int, reason: str | None, expected: str) -> None:
    _, app = running_app(fake)
    fake.exit(app, code, reason)
    container = next(c for c in fake.list_containers() if c.id == app)
    assert (container.state, container.exit_code, container.reason) == (ContainerState.EXITED, code, expected)


def test_unavailable_engine_raises_and_still_records(fake: FakeRuntime) -> None:
    fake.unavailable = True
    with pytest.raises(RuntimeUnavailable):
        fake.list_containers()
    assert fake.calls == [("list_containers", "")]


def test_fail_injects_one_error_per_queued_failure(fake: FakeRuntime) -> None:
    sandbox = fake.create_sandbox(SandboxConfig(POD))
    fake.fail("create_container", ContainerCreateError("boom"))
    with pytest.raises(ContainerCreateError, match="boom"):
        fake.create_container(sandbox, POD, ContainerConfig("app", "busybox"))
    assert fake.create_container(sandbox, POD, ContainerConfig("app", "busybox"))


def test_images_present_pull_and_removal(fake: FakeRuntime) -> None:
    assert fake.image_present("busybox") and fake.image_present("busybox:latest")
    assert not fake.image_present("nginx")
    fake.add_to_registry("nginx:1.25")
    fake.pull_image("nginx:1.25")
    assert fake.image_present("nginx:1.25")
    sandbox = fake.create_sandbox(SandboxConfig(POD))
    app = fake.create_container(sandbox, POD, ContainerConfig("app", "nginx:1.25"))
    nginx = next(image for image in fake.list_images() if image.tags == ["nginx:1.25"])
    with pytest.raises(ImageInUse):
        fake.remove_image(nginx.id)
    fake.remove_container(app)
    fake.remove_image(nginx.id)
    assert not fake.image_present("nginx:1.25")


def test_images_given_replace_the_defaults() -> None:
    fake = FakeRuntime(images=["alpine:3"])
    with pytest.raises(ImageNotPresent):
        fake.create_sandbox(SandboxConfig(POD))
    assert [image.tags for image in fake.list_images()] == [["alpine:3"]]


def test_exec_is_answered_by_the_handler_and_needs_a_running_container(fake: FakeRuntime) -> None:
    _, app = running_app(fake)
    fake.exec_handler = lambda container, command: ExecResult(7, f"{container.name}:{command[0]}".encode())
    assert fake.exec(app, ["check"], timeout_s=1) == ExecResult(7, b"app:check")
    fake.exit(app, 0)
    with pytest.raises(ContainerRuntimeError):
        fake.exec(app, ["check"], timeout_s=1)


def test_logs_since_and_tail(fake: FakeRuntime, clock: Clock) -> None:
    _, app = running_app(fake)
    fake.write_log(app, b"old\n")
    clock.advance(10)
    fake.write_log(app, b"new\nnewer\n")
    assert b"".join(fake.logs(app, since=T0 + timedelta(seconds=5))) == b"new\nnewer\n"
    assert list(fake.logs(app, tail=0)) == []
    assert list(fake.logs(app, tail=2, timestamps=True)) == [
        b"2026-01-01T00:00:10Z new\n",
        b"2026-01-01T00:00:10Z newer\n",
    ]


def test_config_of_returns_what_created_the_container(fake: FakeRuntime) -> None:
    _, app = running_app(fake, env={"A": "1"})
    assert fake.config_of(app) == ContainerConfig("app", "busybox", env={"A": "1"})
    fake.remove_container(app)
    with pytest.raises(ContainerNotFound):
        fake.config_of(app)


@pytest.mark.parametrize(
    ("ref", "normal"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("registry.k8s.io/busybox", "registry.k8s.io/busybox:latest"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("app@sha256:abc", "app@sha256:abc"),
    ],
)
def test_normalize_image(ref: str, normal: str) -> None:
    assert normalize_image(ref) == normal
