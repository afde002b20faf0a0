"""The liveness signal: sd_notify datagrams, and WATCHDOG=1 only while every loop beats (a fake clock)."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeworkers import watchdog


@pytest.fixture(autouse=True)
def no_beats() -> Iterator[None]:
    watchdog._beats.clear()
    yield
    watchdog._beats.clear()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(2)
    yield sock
    sock.close()


def test_notify_sends_the_state_to_the_notify_socket(listener: socket.socket) -> None:
    assert watchdog.notify("READY=1", {"NOTIFY_SOCKET": listener.getsockname()})
    assert listener.recv(100) == b"READY=1"


def test_notify_reaches_an_abstract_socket() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0edgeworkers-watchdog-test")
        sock.settimeout(2)
        assert watchdog.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@edgeworkers-watchdog-test"})
        assert sock.recv(100) == b"WATCHDOG=1"


def test_notify_without_a_supervisor_does_nothing_and_a_gone_socket_is_logged(tmp_path: Path,
                                                                                caplog: pytest.LogCaptureFixture) -> None:
    assert not watchdog.notify("READY=1", {})
    assert not watchdog.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert "sd_notify READY=1" in caplog.text


@pytest.mark.parametrize(("usec", "expected"), [("30000000", 30.0), ("500000", 0.5), ("", None), ("0", None),
                                                ("x", None)])
def test_the_interval_comes_from_watchdog_usec(usec: str, expected: float | None) -> None:
    assert watchdog.interval_s({"WATCHDOG_USEC": usec}) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pings_only_while_every_loop_beat_within_half_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock, sent = Clock(), []

    def ping(rounds: int) -> list[str]:
        sent.clear()
        watchdog.ping_while_fresh(10.0, lambda state: sent.append(state) or True, clock, clock.sleep, rounds)
        return sent

    watchdog._beats.update({"pleg": clock.now, "bridge": clock.now})
    assert ping(2) == ["WATCHDOG=1", "WATCHDOG=1"]  # 0 and 2.5 s after the beats

    watchdog._beats["bridge"] = clock.now  # 5 s: the bridge beats, the PLEG does not any more
    assert ping(3) == ["WATCHDOG=1"]  # 5 s fresh; 7.5 and 10 s: the PLEG is 7.5 and 10 s old
    assert "no progress for 5 s in pleg" in caplog.text
    assert caplog.text.count("no progress") == 1  # said once, not every round

    watchdog._beats["pleg"] = watchdog._beats["bridge"] = clock.now
    assert ping(1) == ["WATCHDOG=1"]  # both beat again: pings again


def test_ready_says_ready_and_counts_its_loops_as_beating(listener: socket.socket,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.getsockname())
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)  # no pinging thread in this test

    watchdog.ready("pleg", "bridge")

    assert listener.recv(100) == b"READY=1"
    assert set(watchdog._beats) == {"pleg", "bridge"}


def test_beat_on_beats_while_the_event_loop_turns() -> None:
    async def turn() -> None:
        watchdog.beat_on(asyncio.get_running_loop(), "bridge", period_s=0.01)
        first = watchdog._beats["bridge"]
        await asyncio.sleep(0.05)
        assert watchdog._beats["bridge"] > first

    asyncio.run(turn())
