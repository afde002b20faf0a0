"""A ``/bin/sh`` for FakeRuntime's streaming execs, enough for the prober's exec sessions (``execsession``).

``runtime.stream_handler = FakeShell(runtime)`` answers an exec of ``/bin/sh``: it reads the lines a session writes
and runs their statements, ``echo "TEXT $?"`` and ``(exec ARGV... ) </dev/null 2>&1``, the latter answered by the
runtime's ``exec_handler`` (so one handler scripts plain execs and session runs alike). A run still going when its
stream is closed (the session killed) ends there, as a killed shell would: the handler's thread is left to finish.
``available=False``: the image has no ``/bin/sh`` (Docker's error on the stream, exit code 126).
"""
from __future__ import annotations

import select
import shlex
import socket
import threading

from edgeworkers.runtime.fake import FakeRuntime, frame
from edgeworkers.runtime.types import Container, ExecResult

KILLED = 137


class FakeShell:
    def __init__(self, runtime: FakeRuntime, available: bool = True) -> None:
        self._runtime = runtime
        self.available = available
        self.shells = 0  # shells started
        self.runs: list[list[str]] = []  # commands run through a shell

    def __call__(self, container: Container, command: list[str], sock: socket.socket, tty: bool) -> int:
        if command != ["/bin/sh"]:
            result = self._runtime.exec_handler(container, command)
            sock.sendall(frame(1, result.output))
            return result.exit_code
        if not self.available:
            sock.sendall(frame(1, b'OCI runtime exec failed: exec: "/bin/sh": stat /bin/sh: no such file or directory'))
            return 126
        self.shells += 1
        status, buffer = 0, b""
        while True:
            data = sock.recv(65536)
            if not data:
                return 0  # end of input: the shell exits
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                for statement in _statements(line.decode()):
                    if statement[0] == "echo":
                        sock.sendall(frame(1, statement[1].replace("$?", str(status)).encode() + b"\n"))
                        continue
                    argv = statement[2 : len(statement) - statement[::-1].index(")") - 1]
                    self.runs.append(argv)
                    result = _run(lambda argv=argv: self._runtime.exec_handler(container, argv), sock)
                    if result is None:
                        return KILLED
                    sock.sendall(frame(1, result.output))
                    status = result.exit_code


def _statements(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    statements: list[list[str]] = [[]]
    for token in lexer:
        if token == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def _run(handler, sock: socket.socket) -> ExecResult | None:
    """The handler's answer; None when the stream is closed first (a session sends nothing while a run is going)."""
    answer: list[ExecResult] = []
    thread = threading.Thread(target=lambda: answer.append(handler()), daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.01)
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # closed already
            return None
        if readable and not answer:
            return None
    return answer[0]
