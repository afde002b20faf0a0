"""A hung Docker engine for tests: a unix socket that answers ``/version`` and ``/info`` until ``hang`` is set, then
reads each request and never answers (as a dockerd stuck on a lock does)."""
from __future__ import annotations

import json
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path


class Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers ``/version`` and ``/info`` until ``hang`` is set; then reads each request and never answers."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        super().__init__(path, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Engine

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.server.hang.is_set():
            self.server.release.wait(30)
            return
        body = json.dumps({"ApiVersion": "1.41", "Version": "20.10.24", "DockerRootDir": "/"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving_engine(hung: bool = False) -> Iterator[Engine]:
    """An engine on a socket under /tmp (a unix socket's path is short), hung from the start when ``hung``."""
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        server = Engine(str(Path(directory) / "docker.sock"))
        if hung:
            server.hang.set()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.release.set()
            server.shutdown()
            server.server_close()
