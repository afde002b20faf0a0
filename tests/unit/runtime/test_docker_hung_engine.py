"""A hung engine (it accepts connections, never answers): the status calls the node's heartbeat makes give up within
``status_timeout_s``, every other call keeps its long timeout. The engine is a unix socket served by the test."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.node.status import gather_facts
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.errors import RuntimeUnavailable
from tests.hung_engine import Engine, serving_engine

STATUS_TIMEOUT_S = 0.5


@pytest.fixture
def engine() -> Iterator[Engine]:
    with serving_engine() as server:
        yield server


def runtime_of(engine: Engine) -> DockerRuntime:
    return DockerRuntime("node", f"unix://{engine.server_address}", timeout_s=60, status_timeout_s=STATUS_TIMEOUT_S)


def timed(call) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test looks at it
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_the_engines_status_gives_up_within_the_status_timeout_once_it_hangs(engine: Engine) -> None:
    runtime = runtime_of(engine)
    assert runtime.version() == "docker://20.10.24"
    engine.hang.set()

    for call in (runtime.version, runtime.data_root):
        elapsed, error = timed(call)
        assert isinstance(error, RuntimeUnavailable), error
        assert elapsed < STATUS_TIMEOUT_S + 1.5


def test_an_engine_hung_before_the_first_call_fails_it_within_the_status_timeout(engine: Engine) -> None:
    engine.hang.set()  # the client's own API version question hangs too
    elapsed, error = timed(runtime_of(engine).version)
    assert isinstance(error, RuntimeUnavailable), error
    assert elapsed < STATUS_TIMEOUT_S + 1.5


def test_other_calls_keep_their_long_timeout(engine: Engine) -> None:
    runtime = runtime_of(engine)
    runtime.version()
    engine.hang.set()
    outcome: list[BaseException | None] = []
    listing = threading.Thread(target=lambda: outcome.append(timed(runtime.list_containers)[1]), daemon=True)
    listing.start()
    listing.join(STATUS_TIMEOUT_S * 4)
    assert listing.is_alive(), f"the list gave up at the status timeout: {outcome}"
    engine.release.set()  # the engine drops the request: the list fails now, not after a minute
    listing.join(10)
    assert not listing.is_alive()


def test_the_node_facts_of_a_hung_engine_name_it_and_ask_it_once(engine: Engine, tmp_path: Path) -> None:
    runtime = runtime_of(engine)
    runtime.version()
    engine.hang.set()
    asked_root = []

    def data_root() -> str:
        asked_root.append(True)
        return runtime.data_root()

    started = time.monotonic()
    facts = gather_facts(Settings(node_name="node", data_dir=tmp_path), runtime.version, image_root=data_root)
    assert time.monotonic() - started < STATUS_TIMEOUT_S + 1.5
    assert "Docker engine unavailable" in facts.runtime_error
    assert facts.container_runtime_version == ""
    assert not asked_root  # not asked again for its data root: one status timeout per heartbeat
