"""The HTTP probe as kubelet's: no proxy, 10 KiB of body at most, the timeout over the whole request."""
from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from edgeworkers.prober.handlers import run_http


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append(dict(self.headers))
        if self.path == "/drip":  # headers at once, then a byte every 0.3 s
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
            return
        status, body = (500, b"broken") if self.path == "/fail" else (200, b"y" * 1_000_000)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the prober stopped reading at 10 KiB
            pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_success_and_a_failure_and_kubelets_own_headers(server) -> None:
    port = server.server_address[1]
    assert run_http("127.0.0.1", port, "/", "HTTP", {"X-Probe": "1"}, 2) == (True, "")
    assert run_http("127.0.0.1", port, "/fail", "HTTP", {}, 2) == (False, "HTTP probe failed with statuscode: 500")
    assert server.requests[0]["User-Agent"] == "kube-probe/1.32" and server.requests[0]["X-Probe"] == "1"


def test_a_body_dripping_past_the_timeout_fails_at_the_timeout_in_total(server) -> None:
    started = time.monotonic()
    ok, message = run_http("127.0.0.1", server.server_address[1], "/drip", "HTTP", {}, 1.0)
    assert not ok and "context deadline exceeded" in message
    assert time.monotonic() - started < 1.6  # not a timeout per read (each read comes within 0.3 s)


def test_the_environments_proxy_is_never_used(server, monkeypatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing answers there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert run_http("127.0.0.1", server.server_address[1], "/", "HTTP", {}, 2) == (True, "")
