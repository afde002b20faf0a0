"""A local HTTP server for client tests: each GET answered by a handler, every request recorded."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[BaseHTTPRequestHandler, str, dict[str, list[str]]], None]


class Server:
    """A local HTTP server answering each GET with ``handler(request, path, query)``; records requests."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.release = threading.Event()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                outer.requests.append((url.path, query, self.headers.get("Authorization")))
                handler(self, url.path, query)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def servers() -> Iterator[Callable[[Handler], Server]]:
    """Start servers with the yielded function; all are stopped at the end."""
    started: list[Server] = []

    def start(handler: Handler) -> Server:
        started.append(Server(handler))
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.close()


def reply(request: BaseHTTPRequestHandler, code: int, body: dict) -> None:
    data = json.dumps(body).encode()
    request.send_response(code)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def stream(request: BaseHTTPRequestHandler, lines: list[bytes]) -> None:
    request.send_response(200)
    request.send_header("Content-Type", "application/json")
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()
    for line in lines:
        request.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        request.wfile.flush()


def end_stream(request: BaseHTTPRequestHandler) -> None:
    request.wfile.write(b"0\r\n\r\n")


def event(kind: str, obj: dict) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"
