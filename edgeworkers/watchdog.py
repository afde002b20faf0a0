"""The liveness signal of a long-running process: systemd's sd_notify protocol, sent only while its loops progress.

A process tells its supervisor (systemd with ``Type=notify`` and ``WatchdogSec``, or ``edgeworkers.supervisor`` under
`ops/up`, which speaks the same protocol) that it is ready (``READY=1``) and then, every few seconds, that it is alive
(``WATCHDOG=1``). A process that is merely alive is not enough: kubelet pings systemd's watchdog only while its own
health checks pass (``pkg/kubelet/watchdog``). Here each main loop (the PLEG's relist, the bridge's event loop, the
worker's consumers) calls ``beat(name)`` each time round; the pinging thread sends ``WATCHDOG=1`` only while every
loop that ever beat has beaten within half the watchdog's interval. A hung loop, or a process stopped whole
(SIGSTOP), stops the pings, and the supervisor kills and restarts the process.

Without ``$NOTIFY_SOCKET`` (a process run by hand, or by a supervisor without a watchdog) every call is a no-op
but ``beat``'s one dictionary write.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

# Loop name -> the monotonic time of its last beat.
_beats: dict[str, float] = {}
_started = threading.Event()


def beat(name: str) -> None:
    """The loop ``name`` made progress (a dict write: cheap enough for every iteration of any loop)."""
    _beats[name] = time.monotonic()


def beat_on(loop: asyncio.AbstractEventLoop, name: str, period_s: float = 1.0) -> None:
    """Beat ``name`` every ``period_s`` from ``loop``'s own callbacks: it beats while that event loop turns."""
    beat(name)
    loop.call_later(period_s, beat_on, loop, name, period_s)


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to ``$NOTIFY_SOCKET``, as sd_notify(3) does; whether it was sent."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        log.warning("sd_notify %s to %s failed: %s", state, environ["NOTIFY_SOCKET"], exc)
        return False
    return True


def interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """The watchdog's interval that the supervisor set (``$WATCHDOG_USEC``), None when there is no watchdog."""
    usec = environ.get("WATCHDOG_USEC", "")
    return int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else None


def ready(*loops: str) -> None:
    """Say ``READY=1`` and start pinging the watchdog while every loop beats; ``loops`` count as beating from now
    (so a loop hung before its first beat is noticed too). Call once the process does its job."""
    for name in loops:
        beat(name)
    notify("READY=1")
    interval = interval_s()
    if interval is not None and not _started.is_set():
        _started.set()
        threading.Thread(target=ping_while_fresh, args=(interval,), name="watchdog", daemon=True).start()


def ping_while_fresh(
    interval: float,
    send: Callable[[str], bool] = notify,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    rounds: int | None = None,
) -> None:
    """Every quarter of ``interval``, send ``WATCHDOG=1`` if every loop beat within half of it; else log which
    loops are stale (once, until they beat again). ``rounds`` bounds the loop (tests)."""
    stale_before: list[str] = []
    while rounds is None or rounds > 0:
        now = clock()
        stale = sorted(name for name, last in list(_beats.items()) if now - last > interval / 2)
        if not stale:
            send("WATCHDOG=1")
        elif stale != stale_before:
            log.error("watchdog: no progress for %.0f s in %s: not pinging the supervisor", interval / 2,
                      ", ".join(stale))
        stale_before = stale
        sleep(interval / 4)
        if rounds is not None:
            rounds -= 1
