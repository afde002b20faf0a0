"""Termination messages (pods.termination): the per-instance file under the pod's directory, read after the exit,
or the log's tail with FallbackToLogsOnError; the status shows them in state and lastState."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.pods.termination import (
    MAX_LOG_BYTES,
    MAX_MESSAGE_BYTES,
    BadMessagePath,
    message_file,
    prepare,
    termination_message,
)
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import Container, PodRef
from edgeworkers.volumes.errors import UnsafePath
from tests.unit.clock import Clock
from tests.unit.pods.podkit import EXITED, T0, container, ctr, make_pod

REF = PodRef("uid-1", "default", "web")


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(node_name="n1", clock=Clock(T0))


def syncer_for(runtime: FakeRuntime, data_dir: Path) -> PodSyncer:
    return PodSyncer(runtime, MemoryBackoffStore(), Settings(node_name="n1", data_dir=data_dir), Clock(T0))


def spec(**fields):
    return make_pod(containers=[container("app", **fields)]).spec.containers[0]


def test_each_instance_gets_an_empty_world_writable_file_mounted_at_the_path_and_old_ones_go(tmp_path: Path) -> None:
    for restart in range(4):
        mount = prepare(tmp_path, REF, spec(), restart)
    assert mount is not None and mount.container_path == "/dev/termination-log" and not mount.read_only
    path = Path(mount.host_path)
    assert path == tmp_path / "pods" / "uid-1" / "containers" / "app" / "3"
    assert path.read_bytes() == b"" and stat.S_IMODE(path.stat().st_mode) == 0o666
    assert sorted(p.name for p in path.parent.iterdir()) == ["2", "3"]  # the last two instances' only
    custom = prepare(tmp_path, REF, spec(terminationMessagePath="/tmp/done"), 4)
    assert custom is not None and custom.container_path == "/tmp/done"


@pytest.mark.parametrize("path", ["relative/log", "/dev/a:b"])
def test_a_path_that_cannot_be_a_mount_target_is_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(BadMessagePath):
        prepare(tmp_path, REF, spec(terminationMessagePath=path), 0)


def test_paths_from_labels_stay_in_the_pods_directory(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        message_file(tmp_path, PodRef("..", "default", "web"), "app", 0)
    with pytest.raises(UnsafePath):
        message_file(tmp_path, REF, "../../etc", 0)


def exited(code: int, restarts: int = 0) -> Container:
    return ctr("app", state=EXITED, exit_code=code, restarts=restarts)


def no_logs(*_args, **_kwargs):
    raise AssertionError("the logs are not read")


def test_the_message_is_the_files_last_4096_bytes(tmp_path: Path) -> None:
    path = Path(prepare(tmp_path, REF, spec(), 0).host_path)
    path.write_bytes(b"x" * 10 + b"y" * MAX_MESSAGE_BYTES)
    assert termination_message(tmp_path, exited(1), spec(), no_logs) == "y" * MAX_MESSAGE_BYTES


def test_fallback_to_logs_on_error_takes_the_logs_tail_only_for_a_failure_with_an_empty_file(tmp_path: Path) -> None:
    fallback = spec(terminationMessagePolicy="FallbackToLogsOnError")
    prepare(tmp_path, REF, fallback, 0)
    asked = []

    def logs(_container, tail):
        asked.append(tail)
        return iter([b"a" * 3000, b"\nlast line\n"])

    message = termination_message(tmp_path, exited(2), fallback, logs)
    assert asked == [80] and len(message.encode()) == MAX_LOG_BYTES and message.endswith("last line\n")
    assert termination_message(tmp_path, exited(0), fallback, no_logs) == ""  # succeeded: no fallback
    assert termination_message(tmp_path, exited(2), spec(), no_logs) == ""  # File policy: the file only
    Path(message_file(tmp_path, REF, "app", 0)).write_text("written")
    assert termination_message(tmp_path, exited(2), fallback, no_logs) == "written"
    assert termination_message(tmp_path, exited(2, restarts=7), fallback, logs).endswith("last line\n")  # no file


def test_the_status_shows_the_message_in_state_then_last_state_also_after_a_worker_restart(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    pod = make_pod(containers=[container("app", command=["sh", "-c", "echo done > /dev/termination-log"])])
    syncer_for(runtime, tmp_path).sync(pod.key, pod)
    (app,) = [c for c in runtime.list_containers() if c.name == "app"]
    (mount,) = [m for m in runtime.config_of(app.id).mounts if m.container_path == "/dev/termination-log"]
    Path(mount.host_path).write_text("done\n")  # what the container wrote
    runtime.exit(app.id, 0)
    status = syncer_for(runtime, tmp_path).sync(pod.key, pod).status  # a new syncer: nothing in memory
    (app_status,) = status["containerStatuses"]
    assert app_status["lastState"]["terminated"]["message"] == "done\n"
    assert app_status["restartCount"] == 1 and "running" in app_status["state"]


def test_a_failed_container_with_fallback_shows_its_logs_tail(runtime: FakeRuntime, tmp_path: Path) -> None:
    pod = make_pod(containers=[container("app", terminationMessagePolicy="FallbackToLogsOnError")], restart="Never")
    syncer = syncer_for(runtime, tmp_path)
    syncer.sync(pod.key, pod)
    (app,) = [c for c in runtime.list_containers() if c.name == "app"]
    runtime.write_log(app.id, b"starting\nfatal: no config\n")
    runtime.exit(app.id, 1)
    (status,) = syncer.sync(pod.key, pod).status["containerStatuses"]
    assert status["state"]["terminated"]["message"] == "starting\nfatal: no config\n"
    assert status["state"]["terminated"]["reason"] == "Error"
