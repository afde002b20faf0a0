"""Lifecycle hooks through the whole loop with the real Docker and kubectl, after Kubernetes' node conformance test
(test/e2e/common/node/lifecycle_hook.go): the hooks call a handler the test runs (here an HTTP server on 127.0.0.1,
reached from host-network pods), which notes each call and whether the hooked container was still running then."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from edgeworkers.runtime import labels
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for

# A container that ends at once on SIGTERM: a stop waits for the preStop, not for the grace period.
SERVE = "trap 'exit 0' TERM; sleep 3600 & wait"


class Handler:
    """The hooks' target: ``/echo?msg=X&pod=P`` notes (X, whether pod P's app container ran at that moment)."""

    def __init__(self, cluster: Cluster) -> None:
        self.calls: list[tuple[str, bool]] = []
        outer = self

        class _Request(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                query = parse_qs(urlsplit(self.path).query)
                pod = query.get("pod", [""])[0]
                running = any(c.labels.get(labels.CONTAINER_NAME) == "app" and c.status == "running"
                              for c in cluster.containers(pod))  # fmt: skip
                outer.calls.append((query.get("msg", [""])[0], running))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Request)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, msg: str, pod: str) -> str:
        return f"http://127.0.0.1:{self.port}/echo?msg={msg}&pod={pod}"

    def called(self, msg: str) -> list[bool]:
        return [running for seen, running in self.calls if seen == msg]


@pytest.fixture
def handler(cluster: Cluster) -> Iterator[Handler]:
    """The handler, and a worker that admits host-network pods (the hooked pods reach 127.0.0.1 through it)."""
    cluster.extra_env.update({"EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK": "true"})
    cluster.restart_worker()
    served = Handler(cluster)
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


def hooked(name: str, lifecycle: dict[str, Any], command: str = SERVE, **spec: Any) -> dict[str, Any]:
    pod = busybox_pod(name, command, hostNetwork=True, grace=10, **spec)
    pod["spec"]["containers"][0]["lifecycle"] = lifecycle
    return pod


def events_of(cluster: Cluster, pod: str) -> str:
    return cluster.kubectl("get", "events", "--field-selector", f"involvedObject.name={pod}").stdout


def test_pre_stop_exec_and_http_hooks_run_before_the_container_stops(cluster: Cluster, handler: Handler) -> None:
    cluster.apply(
        hooked("prestop-exec", {"preStop": {"exec": {"command": ["wget", "-q", "-O-",
                                                                 handler.url("prestop-exec", "prestop-exec")]}}}),
        hooked("prestop-http", {"preStop": {"httpGet": {"path": "/echo?msg=prestop-http&pod=prestop-http",
                                                        "port": handler.port}}}),
    )  # fmt: skip
    cluster.wait_running("prestop-exec", "prestop-http")
    assert handler.calls == []
    cluster.kubectl("delete", "pod", "prestop-exec", "prestop-http", "--wait=true", "--timeout=60s")
    assert handler.called("prestop-exec") == [True]  # seen while the container still ran
    assert handler.called("prestop-http") == [True]
    cluster.wait_gone("prestop-exec")
    cluster.wait_gone("prestop-http")


def test_post_start_http_hook_runs_once_the_container_started(cluster: Cluster, handler: Handler) -> None:
    cluster.apply(hooked("poststart-http", {"postStart": {"httpGet": {
        "path": "/echo?msg=poststart&pod=poststart-http", "port": handler.port}}}))  # fmt: skip
    pod = cluster.wait_running("poststart-http")["poststart-http"]
    assert handler.called("poststart") == [True]
    (status,) = pod["status"]["containerStatuses"]
    assert status["started"] is True and status["restartCount"] == 0


def test_a_failing_post_start_kills_the_container_which_restarts_with_its_event(
    cluster: Cluster, handler: Handler
) -> None:
    cluster.apply(hooked("poststart-fail", {
        "postStart": {"exec": {"command": ["sh", "-c", "echo no config; exit 1"]}},
        "preStop": {"exec": {"command": ["wget", "-q", "-O-", handler.url("killed", "poststart-fail")]}},
    }))  # fmt: skip

    def restarted(pod: dict[str, Any]) -> bool:
        statuses = pod["status"].get("containerStatuses") or []
        return bool(statuses) and statuses[0]["restartCount"] >= 1 and "terminated" in statuses[0]["lastState"]

    pod = cluster.wait_pod("poststart-fail", restarted, 60, "the container restarted after its postStart failed")
    (status,) = pod["status"]["containerStatuses"]
    assert status["lastState"]["terminated"]["exitCode"] == 0  # killed: SERVE's trap exits 0 on the SIGTERM
    waiting = status["state"].get("waiting") or {}
    if waiting.get("reason") == "PostStartHookError":  # between a kill and the next start (then CrashLoopBackOff)
        assert 'Exec lifecycle hook ([sh -c echo no config; exit 1]) for Container "app"' in waiting["message"]
        assert 'message: "no config\\n"' in waiting["message"]
    assert handler.called("killed")[:1] == [True]  # the kill ran the preStop, as kubelet's killContainer
    wait_for(lambda: "FailedPostStartHook" in events_of(cluster, "poststart-fail"), 30,
             "the FailedPostStartHook event at the cloud")  # fmt: skip
    events = events_of(cluster, "poststart-fail")
    assert "PostStartHook failed" in events and "no config" not in events  # the output stays out of events
