"""Exec probes through persistent shell sessions: one runtime exec per container, not one per probe run.

A Docker exec costs the engine three calls and a ``runc exec`` (about 35-45 a second on a 2-core node, whatever the
number of threads), too few for 100 exec probes at ``periodSeconds: 1``. So the first exec probe of a container opens
a session: ``/bin/sh`` started by one exec with its stdin attached. Each run then writes one line,

    (exec 'cmd' 'arg' ) </dev/null 2>&1; echo "<marker> <seq> $?"

and reads the command's output up to the marker line, which carries the exit status: one fork in the container. The
command is the child of an exec'd shell, so it runs with the same user, namespaces, cgroup, capabilities, seccomp
profile, environment and working directory as a Docker exec of it would; the subshell keeps a ``cd`` or a variable
from leaking into the next run, and ``</dev/null`` keeps the command from reading the session's next lines. The
marker is random per session and each run has its own sequence number, so neither a command's output nor a late
answer is taken for a run's result. (Output that a command's background child writes after the command ended shows
at the head of a later run's output, as it would in a terminal; only the status after the marker counts.)

- A session serves one run at a time. Each container keeps a few idle sessions (one per probe kind at most, since
  the manager never runs one probe twice at once), so a hanging readiness probe never delays the liveness probe.
- A run not answered within its timeout fails (``ExecTimeout``); its session is discarded, its shell killed with the
  hanging command (``StreamSession.close``), and the next run opens a new one.
- An image without ``/bin/sh`` (the shell's exec ends before answering the handshake, exit code 126 or 127): that
  container's runs use a plain exec each (``Runtime.exec``: killed at its timeout, its output bounded).
- A session that breaks (its container stopped, the shell killed) fails the run and is dropped. ``retain`` closes the
  sessions of containers no longer probed (stopped, restarted, removed): the prober calls it on every tick.
"""
from __future__ import annotations

import logging
import secrets
import shlex
import threading
import time
from dataclasses import dataclass, field

from edgeworkers.prober.handlers import MAX_OUTPUT
from edgeworkers.runtime.errors import ContainerRuntimeError, ExecTimeout
from edgeworkers.runtime.protocol import Runtime, StreamSession, split_frames
from edgeworkers.runtime.types import ContainerID, ExecResult

log = logging.getLogger(__name__)

SHELL = ["/bin/sh"]
NO_SHELL_EXIT_CODES = (126, 127)  # the engine could not start /bin/sh
EXIT_WAIT_S = 0.5  # how long to wait for the engine to record the end of a shell that did not start
IDLE_PER_CONTAINER = 3  # one per probe kind: liveness, readiness, startup


class SessionEnded(ContainerRuntimeError):
    """The session's shell went away (its container stopped, or the command killed it)."""


def command_line(command: list[str], marker: str, seq: int) -> bytes:
    """The line that runs ``command`` once and then reports its exit status after the marker."""
    argv = " ".join(shlex.quote(arg) for arg in command)
    return f'(exec {argv} ) </dev/null 2>&1; echo "{marker} {seq} $?"\n'.encode()


def handshake_line(marker: str) -> bytes:
    return f'echo "{marker} 0 $?"\n'.encode()


@dataclass(eq=False)
class Session:
    """One open shell in one container, used by one run at a time."""

    container: ContainerID
    stream: StreamSession
    marker: str = field(default_factory=lambda: secrets.token_hex(16))
    seq: int = 0
    dropped: bool = False  # its container is no longer probed: close it when the run in flight ends
    _frames: bytearray = field(default_factory=bytearray)  # bytes received, not yet split into frames

    def handshake(self, deadline: float) -> None:
        """Check that the shell answers; SessionEnded when it ended first (no shell in the image)."""
        self._send(handshake_line(self.marker))
        self._answer(0, deadline)

    def run(self, command: list[str], deadline: float) -> ExecResult:
        self.seq += 1
        self._send(command_line(command, self.marker, self.seq))
        return self._answer(self.seq, deadline)

    def close(self) -> None:
        """Kill the shell (and a command it still runs) and close the stream."""
        try:
            self.stream.close()
        except Exception as exc:  # noqa: BLE001 - closing is best effort: the container may be gone
            log.info("closing the probe session in %s: %s", self.container, exc)

    def _send(self, line: bytes) -> None:
        try:
            self.stream.sock.sendall(line)
        except OSError as exc:
            raise SessionEnded(f"the probe session in {self.container} is closed: {exc}") from exc

    def _answer(self, seq: int, deadline: float) -> ExecResult:
        """The output up to the marker line of run ``seq`` (its first MAX_OUTPUT bytes) and the status it carries."""
        token = f"{self.marker} {seq} ".encode()
        output = bytearray()
        pending = bytearray()  # payload not yet known to be output: it may hold the start of the token
        while True:
            at = pending.find(token)
            if at >= 0:
                end = pending.find(b"\n", at)
                if end >= 0:
                    output += pending[: max(0, min(at, MAX_OUTPUT - len(output)))]
                    status = pending[at + len(token) : end]
                    if not status.isdigit():
                        raise SessionEnded(f"the probe session in {self.container} answered {bytes(status)!r}")
                    return ExecResult(int(status), bytes(output))
            else:
                keep = len(pending) - len(token) + 1  # bytes that cannot begin the token: output
                if keep > 0:
                    output += pending[: max(0, min(keep, MAX_OUTPUT - len(output)))]
                    del pending[:keep]
            pending += self._payload(deadline)

    def _payload(self, deadline: float) -> bytes:
        """The next frame's payload (stdout or stderr alike), waiting until ``deadline`` at most."""
        while True:
            for payload in split_frames(self._frames):
                return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExecTimeout(f"the probe session in {self.container} did not answer in time")
            try:
                self.stream.sock.settimeout(remaining)
                chunk = self.stream.sock.recv(65536)
            except TimeoutError as exc:
                raise ExecTimeout(f"the probe session in {self.container} did not answer in time") from exc
            except OSError as exc:
                raise SessionEnded(f"the probe session in {self.container} broke: {exc}") from exc
            if not chunk:
                raise SessionEnded(f"the probe session in {self.container} ended")
            self._frames += chunk


class ExecSessions:
    """``exec`` as ``Runtime.exec`` has it, run through per-container shell sessions. Thread-safe."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._idle: dict[str, list[Session]] = {}  # container id -> sessions open and not in use
        self._busy: set[Session] = set()
        self._dropped: list[Session] = []  # of containers no longer probed, to close
        self._plain: set[str] = set()  # containers without /bin/sh: a plain exec per run

    def exec(self, container: ContainerID, command: list[str], timeout_s: float) -> ExecResult:
        """Run ``command`` in the container; ExecTimeout when it is not done within ``timeout_s``."""
        if not command:
            raise ContainerRuntimeError(f"exec in {container}: no command specified")
        deadline = time.monotonic() + timeout_s
        with self._lock:
            plain = container.id in self._plain
            idle = self._idle.get(container.id)
            session = idle.pop() if idle else None
            if session is not None:
                self._busy.add(session)
        if plain:
            return self._runtime.exec(container, command, timeout_s)
        if session is None:
            session = self._open(container, deadline)
            if session is None:
                return self._runtime.exec(container, command, max(0.0, deadline - time.monotonic()))
        try:
            result = session.run(command, deadline)
        except BaseException:
            self._discard(session)
            raise
        self._release(session)
        return result

    def retain(self, container_ids: set[str]) -> bool:
        """Drop the sessions of every container not in ``container_ids`` (those still probed). The idle ones wait for
        ``close_dropped`` (engine calls: for the caller to make off its tick), True if there are some; one in use
        closes when its run ends."""
        with self._lock:
            gone = [ident for ident in self._idle if ident not in container_ids]
            self._dropped += [session for ident in gone for session in self._idle.pop(ident)]
            for session in self._busy:
                if session.container.id not in container_ids:
                    session.dropped = True
            self._plain &= container_ids
            return bool(self._dropped)

    def close_dropped(self) -> None:
        """Close the sessions ``retain`` dropped."""
        with self._lock:
            dropped, self._dropped = self._dropped, []
        for session in dropped:
            session.close()

    def close(self) -> None:
        """Close every session now (a run in flight closes its own when it ends)."""
        self.retain(set())
        self.close_dropped()

    def open_sessions(self) -> int:
        with self._lock:
            return sum(len(idle) for idle in self._idle.values()) + len(self._busy) + len(self._dropped)

    def _open(self, container: ContainerID, deadline: float) -> Session | None:
        """A new session, its handshake answered; None (and the container remembered) when it has no shell."""
        session = Session(container, self._runtime.exec_stream(container, SHELL, stdin=True, tty=False))
        with self._lock:
            self._busy.add(session)
        try:
            session.handshake(deadline)
        except SessionEnded:
            code = session.stream.exit_code(max(EXIT_WAIT_S, deadline - time.monotonic()))
            self._discard(session)
            if code not in NO_SHELL_EXIT_CODES:
                raise
            log.info("container %s has no %s: its exec probes run as plain execs", container, SHELL[0])
            with self._lock:
                self._plain.add(container.id)
            return None
        except BaseException:
            self._discard(session)
            raise
        return session

    def _release(self, session: Session) -> None:
        with self._lock:
            self._busy.discard(session)
            keep = not session.dropped and len(self._idle.get(session.container.id, ())) < IDLE_PER_CONTAINER
            if keep:
                self._idle.setdefault(session.container.id, []).append(session)
        if not keep:
            session.close()

    def _discard(self, session: Session) -> None:
        """Drop a session, killing its shell and the command it may still run (a timed-out run)."""
        with self._lock:
            self._busy.discard(session)
        session.close()
